"""Resizing without weights: Upsample multiplies each spatial size by an integer scale."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import ShapeError
from .arguments import Size
from .base import Layer, register
from .geometry import axis_names, format_shape, format_size, per_axis, Shape, spatial_input

# The interpolating modes PyTorch implements for one rank only: mode -> spatial axes.
MODE_AXES = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


@register
@dataclass(frozen=True)
class Upsample(Layer):
    """Upsample by `scale` per spatial axis (nn.Upsample); 'nearest' fits any rank."""

    scale: Size = 2
    mode: Literal["nearest", "linear", "bilinear", "bicubic", "trilinear"] = "nearest"

    def _scale(self, shape: Shape) -> tuple[int, ...]:
        _, spatial = spatial_input(self, shape)
        axes = MODE_AXES.get(self.mode, len(spatial))
        if axes != len(spatial):
            fitting = [m for m, n in MODE_AXES.items() if n == len(spatial)]
            raise ShapeError(f"Upsample: mode {self.mode!r} needs {axes} spatial "
                             f"ax{'is' if axes == 1 else 'es'}, but the input "
                             f"{format_shape(shape)} has {len(spatial)}",
                             hint="modes for this input: " + ", ".join(
                                 repr(m) for m in ["nearest", *fitting]))
        return per_axis(self.scale, len(spatial), "scale")

    def output_shape(self, shape: Shape) -> Shape:
        scale = self._scale(shape)
        return (shape[0], *(n * s for n, s in zip(shape[1:], scale)))

    def receptive_field(self, shape: Shape):
        # Interpolation mixes a varying, mode-dependent set of inputs: not one window.
        return None

    def explain(self, shape: Shape) -> dict:
        data = super().explain(shape)
        out = self.output_shape(shape)
        data["shape"] = [f"{axis}_out = {n}·{s} = {o}" for axis, n, s, o in zip(
            axis_names(len(shape) - 1), shape[1:], self._scale(shape), out[1:])]
        return data

    def describe(self, shape: Shape) -> str:
        return f"Upsample{len(shape) - 1}d(×{format_size(self._scale(shape))}, {self.mode})"

    def build(self, shape: Shape):
        from torch import nn
        # torch 2.x no longer warns without align_corners; its default (False) is what we want.
        return nn.Upsample(scale_factor=self._scale(shape), mode=self.mode)
