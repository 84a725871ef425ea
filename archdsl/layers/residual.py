"""Layers for residual branches: a learnable per-channel scale to multiply a branch by
(`LayerScale(1e-6) * [block]`), and stochastic depth, which drops a branch while training."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .arguments import Probability
from .base import Layer, register
from .geometry import format_shape, Shape


@register
@dataclass(frozen=True)
class LayerScale(Layer):
    """A learnable scale per channel, initially `init`: its output is the scale itself, C×1×1
    (C×1 for a C×L input), read from the input's channel count alone, so it is used as a factor:
    `LayerScale(1e-6) * [block]` is torchvision ConvNeXt's `layer_scale * block(x)`."""

    init: float = 1e-6

    def output_shape(self, shape: Shape) -> Shape:
        return (shape[0], *(1 for _ in shape[1:]))

    def parameter_shapes(self, shape: Shape) -> dict[str, Shape]:
        return {"scale": self.output_shape(shape)}

    def receptive_field(self, shape: Shape):
        return None  # the output sees no position of the input

    def explain(self, shape: Shape) -> dict:
        data = super().explain(shape)
        data["shape"] = [f"a learnable scale per channel of the {format_shape(shape)} input: "
                         f"{format_shape(self.output_shape(shape))}, initially {self.init}"]
        return data

    def describe(self, shape: Shape) -> str:
        return f"LayerScale({self.settings(format_shape(self.output_shape(shape)))})"

    def build(self, shape: Shape):
        from .modules import LayerScale as Scale
        return Scale(self.output_shape(shape), self.init)


@register
@dataclass(frozen=True)
class StochasticDepth(Layer):
    """torchvision.ops.StochasticDepth: while training, zero the whole input with probability p,
    per example (mode='row') or for the batch (mode='batch'), and scale the rest by 1/(1−p);
    the identity at evaluation."""

    p: Probability
    mode: Literal["row", "batch"] = "row"

    def build(self, shape: Shape):
        from torchvision.ops import StochasticDepth
        return StochasticDepth(self.p, self.mode)
