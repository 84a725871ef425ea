"""Pooling: sliding windows with no weights, and adaptive pooling to a fixed size."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Union

from ..errors import ShapeError
from .arguments import Min, Size
from .base import Facts, Kept, Layer, register, WindowFacts
from .geometry import (axis_names, format_output, format_shape, format_size, format_unless,
                       per_axis, Shape, spatial_input, Window, window_output)
from .torch_call import TorchCall

PoolPadding = Annotated[Union[int, tuple[int, ...]], Min(0),
                        "a non-negative integer or a tuple such as (0, 1)"]

MEANS = {"Tensor.mean": ("dim", "keepdim", "dtype"), "torch.mean": ("dim", "keepdim", "dtype")}


def _spatial_mean(settings: dict, shape: Shape) -> bool:
    """Whether a mean is over every spatial axis and no other, of an input of `shape` (batch
    axis excluded), in its natural type."""
    dims = settings.get("dim")
    if settings.get("dtype") is not None or dims is None or len(shape) < 2:
        return False
    dims = dims if isinstance(dims, (list, tuple)) else (dims,)
    rank = len(shape) + 1
    if not all(isinstance(d, int) and -rank <= d < rank for d in dims):
        return False
    return sorted(d % rank for d in dims) == list(range(2, rank))


class _WindowPool(Layer):
    """Shared by MaxPool and AvgPool: same window arithmetic, different torch class."""

    kind = "pool"
    torch_keywords = {"kernel_size": "kernel"}

    def autocast_policy(self, facts: Facts) -> str:
        # autocast's CPU list runs the 3-d pools (max_pool3d, avg_pool3d, adaptive_avg_pool3d)
        # in float32
        return "float32" if len(facts.inputs[0]) == 4 else "follow"

    @classmethod
    def from_torch_module(cls, module, shape: Shape) -> dict:
        return cls._default_stride(super().from_torch_module(module, shape))

    @classmethod
    def from_torch_call(cls, function: str, settings: dict, shape: Shape) -> dict:
        return cls._default_stride(super().from_torch_call(function, settings, shape))

    @staticmethod
    def _default_stride(values: dict) -> dict:
        """PyTorch keeps the kernel as the stride it defaults to; archdsl leaves it out."""
        if values.get("stride") in (values.get("kernel"), ()):
            values.pop("stride")
        return values

    def resolve(self, shape: Shape) -> WindowFacts:
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
        sizes = tuple(window_output(n, k, s, p, d, self.ceil_mode)
                      for n, k, s, p, d in zip(spatial, kernel, stride, padding, dilation))
        if min(sizes) < 1:
            raise ShapeError(f"{self.dsl_name}: output would be {format_output(sizes)}: the "
                             f"window {format_size(kernel)} is larger than the input "
                             f"{format_shape(spatial)}",
                             hint="pool less often, use padding, or a larger input")
        return self.described(WindowFacts(
            inputs=(shape,), output=(channels, *sizes), description="",
            window=tuple((d * (k - 1) + 1, s) for k, s, d in zip(kernel, stride, dilation)),
            kernel=kernel, stride=stride, padding=padding, dilation=dilation))

    def explain(self, facts: WindowFacts) -> dict:
        data = super().explain(facts)
        spatial = facts.inputs[0][1:]
        data["shape"] = [Window(n, k, s, p, d, self.ceil_mode).formula(axis)
                         for axis, n, k, s, p, d in zip(axis_names(len(spatial)), spatial,
                                                        facts.kernel, facts.stride,
                                                        facts.padding, facts.dilation)]
        return data

    def describe(self, facts: WindowFacts) -> str:
        text = (f"{self.dsl_name}{len(facts.kernel)}d(k={format_size(facts.kernel)}, "
                f"s={format_size(facts.stride)}")
        text += format_unless("p", facts.padding, 0) + format_unless("d", facts.dilation, 1)
        return text + (", ceil_mode=true)" if self.ceil_mode else ")")

    def _torch_call(self, facts: WindowFacts, *more: tuple[str, object], **defaults) -> TorchCall:
        return TorchCall.of(f"torch.nn:{self.dsl_name}{len(facts.kernel)}d",
                            ("kernel_size", self.given("kernel")), ("stride", self.given("stride")),
                            ("padding", self.given("padding")), *more,
                            positional=1, stride=None, padding=0, **defaults)


@register
@dataclass(frozen=True)
class MaxPool(_WindowPool):
    """Max over each window; stride defaults to the kernel size."""

    torch_modules = ("MaxPool1d", "MaxPool2d", "MaxPool3d")
    torch_functions = {f"torch.nn.functional.max_pool{n}d": (
        "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
        for n in (1, 2, 3)}
    torch_fixed = {"return_indices": False}

    kernel: Size
    stride: Size | None = None
    padding: PoolPadding = 0
    dilation: Size = 1
    ceil_mode: bool = False

    def kept(self, facts: WindowFacts) -> tuple[Kept, ...]:
        # the input (for its shape and the gradient's layout) and where each maximum was
        return (Kept("input", facts.inputs[0]), Kept("indices", facts.output, itemsize=8))

    def torch_call(self, facts: WindowFacts) -> TorchCall:
        return self._torch_call(facts, ("dilation", self.given("dilation")),
                                ("ceil_mode", self.given("ceil_mode")), dilation=1,
                                ceil_mode=False)


@register
@dataclass(frozen=True)
class AvgPool(_WindowPool):
    """Mean over each window; stride defaults to the kernel size."""

    torch_modules = ("AvgPool1d", "AvgPool2d", "AvgPool3d")
    torch_functions = {"torch.nn.functional.avg_pool1d": (
        "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
        **{f"torch.nn.functional.avg_pool{n}d": (
            "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
            "divisor_override") for n in (2, 3)}}
    torch_fixed = {"divisor_override": None}

    kernel: Size
    stride: Size | None = None
    padding: PoolPadding = 0
    ceil_mode: bool = False
    count_include_pad: bool = True
    keeps = "input"

    def torch_call(self, facts: WindowFacts) -> TorchCall:
        return self._torch_call(facts, ("ceil_mode", self.given("ceil_mode")),
                                ("count_include_pad", self.given("count_include_pad")),
                                ceil_mode=False, count_include_pad=True)


@register
@dataclass(frozen=True)
class AdaptiveAvgPool(Layer):
    """Average-pool to a fixed output size, whatever the input size."""

    kind = "pool"
    mixes_positions = True
    torch_keywords = {"output_size": "size"}
    torch_modules = ("AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d")
    torch_functions = {**{f"torch.nn.functional.adaptive_avg_pool{n}d": ("output_size",)
                          for n in (1, 2, 3)}, **MEANS}

    size: Size

    def autocast_policy(self, facts: Facts) -> str:
        # autocast's CPU list runs the 3-d pools (max_pool3d, avg_pool3d, adaptive_avg_pool3d)
        # in float32
        return "float32" if len(facts.inputs[0]) == 4 else "follow"

    @classmethod
    def from_torch_call(cls, function: str, settings: dict, shape: Shape) -> dict | None:
        if function not in MEANS:
            return super().from_torch_call(function, settings, shape)
        # x.mean((2, 3), keepdim=True): to 1×1
        return {"size": 1} if settings.get("keepdim") and _spatial_mean(settings, shape) \
            else None

    def output_shape(self, shape: Shape) -> Shape:
        channels, spatial = spatial_input(self, shape)
        return (channels, *per_axis(self.size, len(spatial), "size"))

    def explain(self, facts: Facts) -> dict:
        data = super().explain(facts)
        shape, = facts.inputs
        data["shape"] = [f"averages each of the {shape[0]} channels from "
                         f"{format_shape(shape[1:])} to the fixed size "
                         f"{format_shape(facts.output[1:])}"]
        return data

    def kept(self, facts: Facts) -> tuple[Kept, ...]:
        # To 1×…×1 torch takes the mean, whose backward needs no tensor; otherwise the input.
        return () if all(size == 1 for size in facts.output[1:]) else \
            (Kept("input", facts.inputs[0]),)

    def describe(self, facts: Facts) -> str:
        return f"AdaptiveAvgPool{len(facts.output) - 1}d({format_size(facts.output[1:])})"

    def torch_call(self, facts: Facts) -> TorchCall:
        return TorchCall.of(f"torch.nn:AdaptiveAvgPool{len(facts.output) - 1}d",
                            ("output_size", self.given("size")), positional=1)


@register
@dataclass(frozen=True)
class GlobalAvgPool(Layer):
    """Mean over all spatial positions: C×H×W -> C."""

    kind = "pool"
    mixes_positions = True
    torch_functions = MEANS  # x.mean((2, 3)), as ShuffleNet and MNASNet pool

    @classmethod
    def from_torch_call(cls, function: str, settings: dict, shape: Shape) -> dict | None:
        return {} if not settings.get("keepdim") and _spatial_mean(settings, shape) else None

    def output_shape(self, shape: Shape) -> Shape:
        channels, _ = spatial_input(self, shape)
        return (channels,)

    def explain(self, facts: Facts) -> dict:
        data = super().explain(facts)
        shape, = facts.inputs
        data["shape"] = [f"averages each of the {shape[0]} channels over its "
                         f"{format_shape(shape[1:])} positions: {format_shape(shape)} → "
                         f"{shape[0]}"]
        return data

    def describe(self, facts: Facts) -> str:
        shape, = facts.inputs
        return f"GlobalAvgPool({format_shape(shape)}→{shape[0]})"

    def torch_call(self, facts: Facts) -> TorchCall:
        pool = TorchCall.of(f"torch.nn:AdaptiveAvgPool{len(facts.inputs[0]) - 1}d",
                            ("output_size", 1), positional=1)
        return TorchCall.of("torch.nn:Sequential", ("", pool), ("", TorchCall.of("torch.nn:Flatten")),
                            positional=2)
