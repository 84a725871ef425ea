"""Layers for residual branches: a learnable per-channel scale to multiply a branch by
(`LayerScale(1e-6) * [block]`), and stochastic depth, which drops a branch while training."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .arguments import Probability
from .base import Facts, Kept, Layer, register
from .importing import shortest_float32
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
    torch_modules = ("LayerScale",)  # archdsl's own, as an exported file defines it

    init: float = 1e-6

    @classmethod
    def from_torch_module(cls, module, shape: Shape) -> dict:
        return cls.from_torch_parameter(module.scale)

    @classmethod
    def from_torch_parameter(cls, scale) -> dict:
        """The layer for a scale parameter (torchvision ConvNeXt's layer_scale): `init` is its
        value where all are equal, as a fresh one is, else their mean; none where the
        parameter has no values (the meta device). Its shape must be C×1×…."""
        if scale.dim() < 2 or any(n != 1 for n in scale.shape[1:]):
            raise ValueError(f"a scale of shape {'×'.join(map(str, scale.shape))} is not one "
                             f"per channel (C×1×1)")
        if scale.is_meta:
            return {}
        values = scale.detach().float()
        value = values.flatten()[0] if bool((values == values.flatten()[0]).all()) else \
            values.mean()
        return {"init": shortest_float32(float(value))}

    def output_shape(self, shape: Shape) -> Shape:
        return (shape[0], *(1 for _ in shape[1:]))

    def parameter_shapes(self, shape: Shape) -> dict[str, Shape]:
        return {"scale": self.output_shape(shape)}

    def explain(self, facts: Facts) -> dict:
        data = super().explain(facts)
        data["shape"] = [f"a learnable scale per channel of the {format_shape(facts.inputs[0])} "
                         f"input: {format_shape(facts.output)}, initially {self.init}"]
        return data

    def output_storage(self, facts: Facts) -> str:
        return "parameter"  # the scale expanded to the batch: no activation of its own

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
    elementwise = True  # per example
    torch_modules = ("StochasticDepth",)  # torchvision.ops'
    torch_functions = {"torchvision.ops.stochastic_depth.stochastic_depth": (
        "p", "mode", "training")}

    p: Probability
    mode: Literal["row", "batch"] = "row"

    def inference_storage(self, facts: Facts) -> str:
        return "input"  # in eval mode, torchvision's stochastic_depth returns the input itself

    def kept(self, facts: Facts) -> tuple[Kept, ...]:
        # The product's other factor: the noise, one value per example (row) or per batch.
        if self.p == 0:
            return ()
        return (Kept("noise", tuple(1 for _ in facts.inputs[0]), per_example=self.mode == "row",
                     typed=True),)

    def output_storage(self, facts: Facts) -> str:
        return "input" if self.p == 0 else "new"  # p=0 returns the input itself

    def torch_call(self, facts: Facts) -> TorchCall:
        return TorchCall.of("torchvision.ops:StochasticDepth", ("p", self.given("p")),
                            ("mode", self.given("mode")), positional=2)
