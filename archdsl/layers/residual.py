"""Layers for residual branches: a learnable per-channel scale to multiply a branch by
(`LayerScale(1e-6) * [block]`), and stochastic depth, which drops a branch while training."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .arguments import Probability
from .base import Facts, Layer, register
from .geometry import format_shape, Shape
from .torch_call import Inferred, TorchCall


@register
@dataclass(frozen=True)
class LayerScale(Layer):
    """A learnable scale per channel, initially `init`: its output is the scale itself, C×1×1
    (C×1 for a C×L input), read from the input's channel count alone, so it is used as a factor:
    `LayerScale(1e-6) * [block]` is torchvision ConvNeXt's `layer_scale * block(x)`."""

    kind = "scale"  # its window is the identity: in a product, the other factor sets the field
    factor = True

    init: float = 1e-6

    def output_shape(self, shape: Shape) -> Shape:
        return (shape[0], *(1 for _ in shape[1:]))

    def parameter_shapes(self, shape: Shape) -> dict[str, Shape]:
        return {"scale": self.output_shape(shape)}

    def explain(self, facts: Facts) -> dict:
        data = super().explain(facts)
        data["shape"] = [f"a learnable scale per channel of the {format_shape(facts.inputs[0])} "
                         f"input: {format_shape(facts.output)}, initially {self.init}"]
        return data

    def describe(self, facts: Facts) -> str:
        return f"LayerScale({self.settings(format_shape(facts.output))})"

    def torch_call(self, facts: Facts) -> TorchCall:
        channels, *ones = facts.output
        return TorchCall.of("archdsl.layers.modules:LayerScale",
                            ("shape", (Inferred(channels), *ones)), ("init", self.given("init")),
                            positional=2)


@register
@dataclass(frozen=True)
class StochasticDepth(Layer):
    """torchvision.ops.StochasticDepth: while training, zero the whole input with probability p,
    per example (mode='row') or for the batch (mode='batch'), and scale the rest by 1/(1−p);
    the identity at evaluation."""

    kind = "regularization"

    p: Probability
    mode: Literal["row", "batch"] = "row"

    def torch_call(self, facts: Facts) -> TorchCall:
        return TorchCall.of("torchvision.ops:StochasticDepth", ("p", self.given("p")),
                            ("mode", self.given("mode")), positional=2)
