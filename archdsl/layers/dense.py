"""Layers on flat features, and the reshaping and dropout around them."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import ShapeError
from .arguments import PositiveInt, Probability
from .base import Facts, Kept, Layer, register
from .geometry import format_shape, product, Shape
from .torch_call import Inferred, TorchCall


@register
@dataclass(frozen=True)
class Flatten(Layer):
    """C×H×W -> C·H·W."""

    kind = "shape"
    mixes_positions = True
    torch_modules = ("Flatten",)
    torch_fixed = {"start_dim": 1, "end_dim": -1}

    def output_shape(self, shape: Shape) -> Shape:
        return (math.prod(shape),)

    def explain(self, facts: Facts) -> dict:
        data = super().explain(facts)
        shape, = facts.inputs
        if len(shape) > 1:
            data["shape"] = [f"flattens {format_shape(shape)} into {facts.output[0]}"]
        return data

    def describe(self, facts: Facts) -> str:
        return f"Flatten({format_shape(facts.inputs[0])}→{facts.output[0]})"

    def output_storage(self, facts: Facts) -> str:
        return "input"  # a view: the input is contiguous

    def torch_call(self, facts: Facts) -> TorchCall:
        return TorchCall.of("torch.nn:Flatten")


@register
@dataclass(frozen=True)
class Linear(Layer):
    """Fully connected: every output feature sees every input feature. With pointwise=true, on
    the channels of a C×H×W map at each position (ConvNeXt's Permute -> Linear -> Permute)."""

    kind = "linear"
    autocast = "lower"
    torch_inferred = "input features"
    torch_keywords = {"in_features": None, "out_features": "out"}
    # nn.Linear on a C×H×W map reads the last axis: the channels after a permute
    torch_modules = ("Linear", "PointwiseLinear")
    torch_last_axis = ("Linear",)

    out: PositiveInt
    bias: bool = True
    pointwise: bool = field(default=False, kw_only=True)  # Linear keeps its 2 positions

    @classmethod
    def from_torch_module(cls, module, shape: Shape) -> dict:
        return {**super().from_torch_module(module, shape), "pointwise": len(shape) > 1}

    def resolve(self, shape: Shape) -> Facts:
        if len(shape) != 1 and not self.pointwise:
            raise ShapeError(f"Linear needs a flat input, got {format_shape(shape)}",
                             hint="insert Flatten before Linear, or give pointwise=true to "
                                  "apply it to the channels at every position")
        features, *positions = shape
        weights = {"weight": (self.out, features)}
        # Pointwise, each output position reads its own input position only.
        return self.described(Facts(
            inputs=(shape,), output=(self.out, *positions),
            macs=math.prod(positions) * features * self.out,
            window=tuple((1, 1) for _ in positions) if positions else None, description="",
            **self.tensors({**weights, "bias": (self.out,)} if self.bias else weights)))

    def explain(self, facts: Facts) -> dict:
        data = super().explain(facts)
        (features, *positions), = facts.inputs
        macs = f"{features} × {self.out} = {facts.macs:,}"
        data["shape"] = [f"{features} features → {self.out}"]
        if positions:  # the positions' product: 7·7 × 96 × 384
            data["shape"] = [f"{features} channels → {self.out} at each of the "
                             f"{format_shape(positions)} positions"]
            macs = f"{product(positions)} × {macs}"
        data["macs"] = macs
        data["params"] = (f"{self.out} × {features}" + (f" + {self.out}" if self.bias else "")
                          + f" = {facts.params:,}")
        return data

    def kept(self, facts: Facts) -> tuple[Kept, ...]:
        # The input serves the weight's gradient only, the weight the input's: frozen, torch
        # keeps no input, and on the network's input no weight. Convolutions keep both always.
        shape, = facts.inputs
        weight = Kept("weight", dict(facts.parameters)["weight"], per_example=False,
                      parameter=True, when=("input",))
        if self.frozen:
            return (weight,)
        # Pointwise, the channels-last view of the input, reshaped to rows of channels.
        return (Kept("input", shape, copied_above_batch_1=math.prod(shape[1:]) > 1), weight)

    def describe(self, facts: Facts) -> str:
        shape, = facts.inputs
        text = f"Linear({shape[0]}→{self.out}"
        text += ", pointwise" if len(shape) > 1 else ""
        return text + (")" if self.bias else ", bias=false)")

    def torch_call(self, facts: Facts) -> TorchCall:
        shape, = facts.inputs
        linear = "archdsl.layers.modules:PointwiseLinear" if len(shape) > 1 else "torch.nn:Linear"
        return TorchCall.of(linear, ("in_features", Inferred(shape[0])),
                            ("out_features", self.given("out")), ("bias", self.given("bias")),
                            positional=2, bias=True)


@register
@dataclass(frozen=True)
class Dropout(Layer):
    """Zero each element with probability p while training."""

    kind = "regularization"
    elementwise = True
    torch_modules = ("Dropout",)
    torch_functions = {"torch.nn.functional.dropout": ("p", "training", "inplace")}

    p: Probability = 0.5

    def kept(self, facts: Facts) -> tuple[Kept, ...]:
        if self.p == 0:
            return ()
        if self.p == 1:  # the input times a zero scalar
            return (Kept("zero", (), per_example=False, typed=True),)
        # The CPU's dropout keeps a mask of the input's type (already divided by 1 − p); CUDA's
        # fused native_dropout keeps a bool one, 1 byte an element. Predicted for the CPU.
        return (Kept("mask", facts.inputs[0], typed=True),)

    def output_storage(self, facts: Facts) -> str:
        return "input" if self.p == 0 else "new"  # p=0 returns the input itself

    def inference_storage(self, facts: Facts) -> str:
        return "input"  # in eval mode, torch returns the input itself

    def torch_call(self, facts: Facts) -> TorchCall:
        return TorchCall.of("torch.nn:Dropout", ("p", self.given("p")), positional=1, p=0.5)
