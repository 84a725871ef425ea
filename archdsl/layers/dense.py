"""Layers on flat features, and the reshaping and normalization around them."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated

from ..errors import ShapeError
from .arguments import Min, PositiveInt, Probability
from .base import Layer, register
from .geometry import format_shape, product, Shape

PositiveFloat = Annotated[float, Min(1e-300), "a positive number"]


@register
@dataclass(frozen=True)
class Flatten(Layer):
    """C×H×W -> C·H·W."""

    def output_shape(self, shape: Shape) -> Shape:
        return (math.prod(shape),)

    def receptive_field(self, shape: Shape):
        return None

    def explain(self, shape: Shape) -> dict:
        data = super().explain(shape)
        if len(shape) > 1:
            data["shape"] = [f"flattens {format_shape(shape)} into {math.prod(shape)}"]
        return data

    def describe(self, shape: Shape) -> str:
        return f"Flatten({format_shape(shape)}→{math.prod(shape)})"

    def build(self, shape: Shape):
        from torch import nn
        return nn.Flatten(1)


@register
@dataclass(frozen=True)
class Linear(Layer):
    """Fully connected: every output feature sees every input feature. With pointwise=true, on
    the channels of a C×H×W map at each position (ConvNeXt's Permute -> Linear -> Permute)."""

    torch_inferred = "input features"
    torch_keywords = {"in_features": None, "out_features": "out"}

    out: PositiveInt
    bias: bool = True
    pointwise: bool = field(default=False, kw_only=True)  # Linear keeps its 2 positions

    def _features(self, shape: Shape) -> int:
        if len(shape) != 1 and not self.pointwise:
            raise ShapeError(f"Linear needs a flat input, got {format_shape(shape)}",
                             hint="insert Flatten before Linear, or give pointwise=true to "
                                  "apply it to the channels at every position")
        return shape[0]

    def _positions(self, shape: Shape) -> int:
        return math.prod(shape[1:])

    def output_shape(self, shape: Shape) -> Shape:
        self._features(shape)
        return (self.out, *shape[1:])

    def parameter_shapes(self, shape: Shape) -> dict[str, Shape]:
        weights = {"weight": (self.out, self._features(shape))}
        return {**weights, "bias": (self.out,)} if self.bias else weights

    def macs(self, shape: Shape, out: Shape) -> int:
        return self._positions(shape) * self._features(shape) * self.out

    def receptive_field(self, shape: Shape):
        return super().receptive_field(shape) if len(shape) > 1 else None

    def explain(self, shape: Shape) -> dict:
        data = super().explain(shape)
        features = self._features(shape)
        params = sum(math.prod(s) for s in self.parameter_shapes(shape).values())
        macs = f"{features} × {self.out} = {self.macs(shape, self.output_shape(shape)):,}"
        data["shape"] = [f"{features} features → {self.out}"]
        if len(shape) > 1:  # the positions' product: 7·7 × 96 × 384
            data["shape"] = [f"{features} channels → {self.out} at each of the "
                             f"{format_shape(shape[1:])} positions"]
            macs = f"{product(shape[1:])} × {macs}"
        data["macs"] = macs
        data["params"] = (f"{self.out} × {features}" + (f" + {self.out}" if self.bias else "")
                          + f" = {params:,}")
        return data

    def describe(self, shape: Shape) -> str:
        text = f"Linear({self._features(shape)}→{self.out}"
        text += ", pointwise" if len(shape) > 1 else ""
        return text + (")" if self.bias else ", bias=false)")

    def build(self, shape: Shape):
        from torch import nn
        from .modules import PointwiseLinear
        linear = PointwiseLinear if len(shape) > 1 else nn.Linear
        return linear(self._features(shape), self.out, self.bias)


@register
@dataclass(frozen=True)
class BatchNorm(Layer):
    """Batch normalization over the channel axis; 1d, 2d or 3d by the input's rank."""

    eps: PositiveFloat = 1e-5
    momentum: Probability = 0.1
    affine: bool = True
    track_running_stats: bool = True

    def _torch_name(self, shape: Shape) -> str:
        if len(shape) > 4:
            raise ShapeError(f"BatchNorm takes inputs of at most 3 spatial axes, got "
                             f"{format_shape(shape)}")
        return f"BatchNorm{max(1, len(shape) - 1)}d"

    def parameter_shapes(self, shape: Shape) -> dict[str, Shape]:
        return {"weight": (shape[0],), "bias": (shape[0],)} if self.affine else {}

    def buffer_shapes(self, shape: Shape) -> dict[str, Shape]:
        if not self.track_running_stats:
            return {}
        return {"running_mean": (shape[0],), "running_var": (shape[0],),
                "num_batches_tracked": ()}

    def describe(self, shape: Shape) -> str:
        return f"{self._torch_name(shape)}({shape[0]})"

    def build(self, shape: Shape):
        from torch import nn
        norm = getattr(nn, self._torch_name(shape))
        return norm(shape[0], self.eps, self.momentum, self.affine, self.track_running_stats)


@register
@dataclass(frozen=True)
class Dropout(Layer):
    """Zero each element with probability p while training."""

    p: Probability = 0.5

    def build(self, shape: Shape):
        from torch import nn
        return nn.Dropout(self.p)
