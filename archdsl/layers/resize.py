"""Resizing without weights: Upsample multiplies each spatial size by an integer scale."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import ShapeError
from .arguments import Size
from .base import Facts, Layer, register
from .geometry import axis_names, format_shape, format_size, per_axis, Shape, spatial_input
from .torch_call import TorchCall

# The interpolating modes PyTorch implements for one rank only: mode -> spatial axes.
MODE_AXES = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


@dataclass(frozen=True, kw_only=True)
class UpsampleFacts(Facts):
    scale: tuple[int, ...]  # per spatial axis


@register
@dataclass(frozen=True)
class Upsample(Layer):
    """Upsample by `scale` per spatial axis (nn.Upsample); 'nearest' fits any rank."""

    kind = "resize"
    torch_keywords = {"scale_factor": "scale"}
    torch_modules = ("Upsample",)
    torch_functions = {"torch.nn.functional.interpolate": (
        "size", "scale_factor", "mode", "align_corners", "recompute_scale_factor", "antialias")}
    # align_corners=False is PyTorch's default for the interpolating modes, as None is
    torch_fixed = {"size": None, "recompute_scale_factor": None, "antialias": False}

    scale: Size = 2
    mode: Literal["nearest", "linear", "bilinear", "bicubic", "trilinear"] = "nearest"

    @classmethod
    def from_torch_module(cls, module, shape: Shape) -> dict:
        return cls._aligned(module.align_corners, super().from_torch_module(module, shape))

    @classmethod
    def from_torch_call(cls, function: str, settings: dict, shape: Shape) -> dict:
        settings = dict(settings)
        align_corners = settings.pop("align_corners", None)
        return cls._aligned(align_corners, super().from_torch_call(function, settings, shape))

    @staticmethod
    def _aligned(align_corners, values: dict) -> dict:
        if align_corners:
            raise ValueError("align_corners=True (archdsl's Upsample interpolates as "
                             "align_corners=False does)")
        return values

    def resolve(self, shape: Shape) -> UpsampleFacts:
        _, spatial = spatial_input(self, shape)
        axes = MODE_AXES.get(self.mode, len(spatial))
        if axes != len(spatial):
            fitting = [m for m, n in MODE_AXES.items() if n == len(spatial)]
            raise ShapeError(f"Upsample: mode {self.mode!r} needs {axes} spatial "
                             f"ax{'is' if axes == 1 else 'es'}, but the input "
                             f"{format_shape(shape)} has {len(spatial)}",
                             hint="modes for this input: " + ", ".join(
                                 repr(m) for m in ["nearest", *fitting]))
        scale = per_axis(self.scale, len(spatial), "scale")
        # Interpolation mixes a varying, mode-dependent set of inputs: not one window.
        return self.described(UpsampleFacts(
            inputs=(shape,), output=(shape[0], *(n * s for n, s in zip(spatial, scale))),
            window=None, description="", scale=scale))

    def explain(self, facts: UpsampleFacts) -> dict:
        data = super().explain(facts)
        shape, = facts.inputs
        data["shape"] = [f"{axis}_out = {n}·{s} = {o}" for axis, n, s, o in zip(
            axis_names(len(shape) - 1), shape[1:], facts.scale, facts.output[1:])]
        return data

    def describe(self, facts: UpsampleFacts) -> str:
        return f"Upsample{len(facts.scale)}d(×{format_size(facts.scale)}, {self.mode})"

    def torch_call(self, facts: UpsampleFacts) -> TorchCall:
        # torch 2.x no longer warns without align_corners; its default (False) is what we want.
        return TorchCall.of("torch.nn:Upsample", ("scale_factor", self.given("scale")),
                            ("mode", self.given("mode")), mode="nearest")
