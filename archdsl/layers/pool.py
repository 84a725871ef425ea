"""Pooling: sliding windows with no weights, and adaptive pooling to a fixed size."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Union

from ..errors import ShapeError
from .arguments import Min, Size
from .base import Layer, register
from .geometry import (axis_names, format_output, format_shape, format_size, per_axis, Shape,
                       spatial_input, Window, window_output)

PoolPadding = Annotated[Union[int, tuple[int, ...]], Min(0),
                        "a non-negative integer or a tuple such as (0, 1)"]


class _WindowPool(Layer):
    """Shared by MaxPool and AvgPool: same window arithmetic, different torch class."""

    torch_keywords = {"kernel_size": "kernel"}

    def _geometry(self, shape: Shape):
        channels, spatial = spatial_input(self, shape)
        axes = len(spatial)
        kernel = per_axis(self.kernel, axes, "kernel")
        stride = per_axis(self.kernel if self.stride is None else self.stride, axes, "stride")
        padding = per_axis(self.padding, axes, "padding")
        dilation = per_axis(getattr(self, "dilation", 1), axes, "dilation")
        for k, p in zip(kernel, padding):
            # PyTorch's kernels check p <= k // 2 on the kernel size itself, whatever the dilation.
            if p > k // 2:
                raise ShapeError(f"{self.dsl_name}: padding {p} is more than half the kernel "
                                 f"size {k} (PyTorch refuses it)")
        return channels, spatial, kernel, stride, padding, dilation

    def output_shape(self, shape: Shape) -> Shape:
        channels, spatial, kernel, stride, padding, dilation = self._geometry(shape)
        sizes = tuple(window_output(n, k, s, p, d, self.ceil_mode)
                      for n, k, s, p, d in zip(spatial, kernel, stride, padding, dilation))
        if min(sizes) < 1:
            raise ShapeError(f"{self.dsl_name}: output would be {format_output(sizes)}: the "
                             f"window {format_size(kernel)} is larger than the input "
                             f"{format_shape(spatial)}",
                             hint="pool less often, use padding, or a larger input")
        return (channels, *sizes)

    def receptive_field(self, shape: Shape):
        _, _, kernel, stride, _, dilation = self._geometry(shape)
        return tuple((d * (k - 1) + 1, s) for k, s, d in zip(kernel, stride, dilation))

    def explain(self, shape: Shape) -> dict:
        data = super().explain(shape)
        _, spatial, kernel, stride, padding, dilation = self._geometry(shape)
        data["shape"] = [Window(n, k, s, p, d, self.ceil_mode).formula(axis)
                         for axis, n, k, s, p, d in zip(axis_names(len(spatial)), spatial, kernel,
                                                        stride, padding, dilation)]
        return data

    def describe(self, shape: Shape) -> str:
        _, spatial, kernel, stride, padding, dilation = self._geometry(shape)
        text = f"{self.dsl_name}{len(spatial)}d(k={format_size(kernel)}, s={format_size(stride)}"
        if set(padding) != {0}:
            text += f", p={format_size(padding)}"
        if set(dilation) != {1}:
            text += f", d={format_size(dilation)}"
        return text + (", ceil_mode=true)" if self.ceil_mode else ")")

    def _torch_arguments(self, shape: Shape) -> dict:
        _, spatial, kernel, stride, padding, _ = self._geometry(shape)
        return dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=self.ceil_mode)


@register
@dataclass(frozen=True)
class MaxPool(_WindowPool):
    """Max over each window; stride defaults to the kernel size."""

    kernel: Size
    stride: Size | None = None
    padding: PoolPadding = 0
    dilation: Size = 1
    ceil_mode: bool = False

    def build(self, shape: Shape):
        from torch import nn
        pool = getattr(nn, f"MaxPool{len(shape) - 1}d")
        return pool(dilation=self.dilation, **self._torch_arguments(shape))


@register
@dataclass(frozen=True)
class AvgPool(_WindowPool):
    """Mean over each window; stride defaults to the kernel size."""

    kernel: Size
    stride: Size | None = None
    padding: PoolPadding = 0
    ceil_mode: bool = False
    count_include_pad: bool = True

    def build(self, shape: Shape):
        from torch import nn
        pool = getattr(nn, f"AvgPool{len(shape) - 1}d")
        return pool(count_include_pad=self.count_include_pad, **self._torch_arguments(shape))


@register
@dataclass(frozen=True)
class AdaptiveAvgPool(Layer):
    """Average-pool to a fixed output size, whatever the input size."""

    size: Size

    def output_shape(self, shape: Shape) -> Shape:
        channels, spatial = spatial_input(self, shape)
        return (channels, *per_axis(self.size, len(spatial), "size"))

    def receptive_field(self, shape: Shape):
        return None

    def explain(self, shape: Shape) -> dict:
        data = super().explain(shape)
        channels, spatial = spatial_input(self, shape)
        data["shape"] = [f"averages each of the {channels} channels from {format_shape(spatial)} "
                         f"to the fixed size {format_shape(self.output_shape(shape)[1:])}"]
        return data

    def describe(self, shape: Shape) -> str:
        _, spatial = spatial_input(self, shape)
        return f"AdaptiveAvgPool{len(spatial)}d({format_size(self.output_shape(shape)[1:])})"

    def build(self, shape: Shape):
        from torch import nn
        pool = getattr(nn, f"AdaptiveAvgPool{len(shape) - 1}d")
        return pool(self.output_shape(shape)[1:])


@register
@dataclass(frozen=True)
class GlobalAvgPool(Layer):
    """Mean over all spatial positions: C×H×W -> C."""

    def output_shape(self, shape: Shape) -> Shape:
        channels, _ = spatial_input(self, shape)
        return (channels,)

    def receptive_field(self, shape: Shape):
        return None

    def explain(self, shape: Shape) -> dict:
        data = super().explain(shape)
        channels, spatial = spatial_input(self, shape)
        data["shape"] = [f"averages each of the {channels} channels over its "
                         f"{format_shape(spatial)} positions: {format_shape(shape)} → {channels}"]
        return data

    def describe(self, shape: Shape) -> str:
        return f"GlobalAvgPool({format_shape(shape)}→{shape[0]})"

    def build(self, shape: Shape):
        from torch import nn
        pool = getattr(nn, f"AdaptiveAvgPool{len(shape) - 1}d")
        return nn.Sequential(pool(1), nn.Flatten(1))
