"""Convolution: the shape rule ⌊(W + 2P − D(F−1) − 1)/S⌋ + 1, next to its weights."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ArgumentError, ShapeError
from .base import (Layer, Padding, PositiveInt, Shape, Size, format_shape, format_size, per_axis,
                   register, spatial_input, window_output)


@register
@dataclass(frozen=True)
class Conv(Layer):
    """Convolution over 1, 2 or 3 spatial axes, chosen by the input's rank (Conv1d/2d/3d)."""

    out: PositiveInt
    kernel: Size
    stride: Size = 1
    padding: Padding = 0
    dilation: Size = 1
    groups: PositiveInt = 1
    bias: bool = True

    def check(self) -> None:
        if self.out % self.groups:
            raise ArgumentError(f"Conv: out channels {self.out} are not divisible by groups "
                                f"{self.groups}", argument="groups")
        strides = self.stride if isinstance(self.stride, tuple) else (self.stride,)
        if self.padding == "same" and any(s != 1 for s in strides):
            raise ArgumentError("Conv: padding='same' needs stride 1 (PyTorch refuses it "
                                "otherwise)", argument="padding")

    def _geometry(self, shape: Shape):
        channels, spatial = spatial_input(self, shape)
        if channels % self.groups:
            raise ShapeError(f"Conv: input channels {channels} are not divisible by groups "
                             f"{self.groups}")
        axes = len(spatial)
        kernel = per_axis(self.kernel, axes, "kernel")
        stride = per_axis(self.stride, axes, "stride")
        dilation = per_axis(self.dilation, axes, "dilation")
        padding = (0,) * axes if self.padding in ("same", "valid") else \
            per_axis(self.padding, axes, "padding")
        return channels, spatial, kernel, stride, padding, dilation

    def output_shape(self, shape: Shape) -> Shape:
        channels, spatial, kernel, stride, padding, dilation = self._geometry(shape)
        if self.padding == "same":
            return (self.out, *spatial)
        sizes = tuple(window_output(*args) for args in zip(spatial, kernel, stride, padding,
                                                           dilation))
        if min(sizes) < 1:
            extent = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
            padded = tuple(n + 2 * p for n, p in zip(spatial, padding))
            raise ShapeError(f"Conv: output would be {format_shape(sizes)}: the kernel spans "
                             f"{format_shape(extent)} but the padded input is "
                             f"{format_shape(padded)}",
                             hint="use padding, a smaller kernel or dilation, or a larger input")
        return (self.out, *sizes)

    def parameter_shapes(self, shape: Shape) -> dict[str, Shape]:
        channels, _, kernel, *_ = self._geometry(shape)
        weights = {"weight": (self.out, channels // self.groups, *kernel)}
        return {**weights, "bias": (self.out,)} if self.bias else weights

    def macs(self, shape: Shape, out: Shape) -> int:
        channels, _, kernel, *_ = self._geometry(shape)
        return math.prod(out) * (channels // self.groups) * math.prod(kernel)

    def receptive_field(self, shape: Shape):
        _, _, kernel, stride, _, dilation = self._geometry(shape)
        return tuple((d * (k - 1) + 1, s) for k, s, d in zip(kernel, stride, dilation))

    def describe(self, shape: Shape) -> str:
        channels, spatial, kernel, stride, padding, dilation = self._geometry(shape)
        pad = repr(self.padding) if isinstance(self.padding, str) else format_size(padding)
        text = (f"Conv{len(spatial)}d({channels}→{self.out}, k={format_size(kernel)}, "
                f"s={format_size(stride)}, p={pad}")
        if set(dilation) != {1}:
            text += f", d={format_size(dilation)}"
        if self.groups != 1:
            text += f", g={self.groups}"
        return text + (")" if self.bias else ", bias=false)")

    def build(self, shape: Shape):
        from torch import nn
        channels, spatial, kernel, stride, padding, dilation = self._geometry(shape)
        conv = getattr(nn, f"Conv{len(spatial)}d")
        pad = self.padding if isinstance(self.padding, str) else padding
        return conv(channels, self.out, kernel, stride, pad, dilation, self.groups, self.bias)
