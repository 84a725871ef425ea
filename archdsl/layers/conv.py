"""Convolution, ⌊(W + 2P − D(F−1) − 1)/S⌋ + 1, and transposed convolution,
(W − 1)S − 2P + D(F−1) + OP + 1: each shape rule next to its weights."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Union

from ..errors import ArgumentError, ShapeError
from .arguments import Min, Padding, PositiveInt, Size
from .base import Facts, Kept, Layer, register, WindowFacts
from .torch_call import Inferred, TorchCall
from .geometry import (axis_names, format_output, format_shape, format_size, format_unless, numel,
                       per_axis, product, Shape, spatial_input, Window, window_output)

NonNegativeSize = Annotated[Union[int, tuple[int, ...]], Min(0),
                            "a non-negative integer or a tuple such as (0, 1)"]


class _Convolution(Layer):
    """Shared by Conv and ConvTranspose: the same arguments, read per spatial axis."""

    kind = "conv"
    autocast = "lower"
    torch_inferred = "input channels"
    torch_keywords = {"in_channels": None, "out_channels": "out", "kernel_size": "kernel"}
    torch_fixed = {"padding_mode": "zeros"}

    def check(self) -> None:
        if self.out % self.groups:
            raise ArgumentError(f"{self.dsl_name}: out channels {self.out} are not divisible by "
                                f"groups {self.groups}", argument="groups")

    def resolve(self, shape: Shape) -> WindowFacts:
        channels, spatial = spatial_input(self, shape)
        if channels % self.groups:
            raise ShapeError(f"{self.dsl_name}: input channels {channels} are not divisible by "
                             f"groups {self.groups}")
        axes = len(spatial)
        kernel = per_axis(self.kernel, axes, "kernel")
        stride = per_axis(self.stride, axes, "stride")
        dilation = per_axis(self.dilation, axes, "dilation")
        padding = (0,) * axes if self.padding in ("same", "valid") else \
            per_axis(self.padding, axes, "padding")
        output_padding = per_axis(getattr(self, "output_padding", 0), axes, "output_padding")
        output, weight, macs, window = self._arithmetic(shape, kernel, stride, padding, dilation,
                                                        output_padding)
        return self.described(WindowFacts(
            inputs=(shape,), output=output, macs=macs, window=window, description="",
            **self.tensors({"weight": weight, "bias": (self.out,)} if self.bias else
                           {"weight": weight}),
            kernel=kernel, stride=stride, padding=padding, dilation=dilation,
            output_padding=output_padding))

    def kept(self, facts: Facts) -> tuple[Kept, ...]:
        # The input for the weight's gradient, the weight for the input's; whichever needs none,
        # torch keeps both.
        return (Kept("input", facts.inputs[0]),
                Kept("weight", dict(facts.parameters)["weight"], per_example=False,
                     parameter=True))

    def _arithmetic(self, shape: Shape, kernel, stride, padding, dilation, output_padding):
        """(output shape, weight shape, MACs, window) from the geometry, one value per axis."""
        raise NotImplementedError

    def _explain(self, facts: WindowFacts, rows: int, per_row: int, macs_factor: Shape) -> dict:
        """Params `rows × (per_row/g · kernel) + bias` and MACs `factor × (per_row/g · kernel)`:
        the weight's shape as a product; the totals are the facts'."""
        data = Layer.explain(self, facts)
        kernel = facts.kernel
        window = f"({per_row}·{product(kernel)})" if self.groups == 1 else \
            f"({per_row}/{self.groups} · {product(kernel)})"
        data["params"] = (f"{rows} × {window}" + (f" + {self.out}" if self.bias else "")
                          + f" = {facts.params:,}")
        data["macs"] = f"{product(macs_factor)} × {window} = {facts.macs:,}"
        return data

    def describe(self, facts: WindowFacts) -> str:
        channels, spatial = facts.inputs[0][0], facts.inputs[0][1:]
        pad = repr(self.padding) if isinstance(self.padding, str) else format_size(facts.padding)
        text = (f"{self.dsl_name}{len(spatial)}d({channels}→{self.out}, "
                f"k={format_size(facts.kernel)}, s={format_size(facts.stride)}, p={pad}")
        text += format_unless("op", facts.output_padding, 0) + format_unless("d", facts.dilation, 1)
        if self.groups != 1:
            text += f", g={self.groups}"
        return text + (")" if self.bias else ", bias=false)")



@register
@dataclass(frozen=True)
class Conv(_Convolution):
    """Convolution over 1, 2 or 3 spatial axes, chosen by the input's rank (Conv1d/2d/3d)."""

    torch_modules = ("Conv1d", "Conv2d", "Conv3d")

    out: PositiveInt
    kernel: Size
    stride: Size = 1
    padding: Padding = 0
    dilation: Size = 1
    groups: PositiveInt = 1
    bias: bool = True

    def check(self) -> None:
        super().check()
        strides = self.stride if isinstance(self.stride, tuple) else (self.stride,)
        if self.padding == "same" and any(s != 1 for s in strides):
            raise ArgumentError("Conv: padding='same' needs stride 1 (PyTorch refuses it "
                                "otherwise)", argument="padding")

    def _arithmetic(self, shape: Shape, kernel, stride, padding, dilation, output_padding):
        channels, spatial = shape[0], shape[1:]
        if self.padding == "same":
            sizes = spatial
        else:
            sizes = tuple(window_output(*args) for args in zip(spatial, kernel, stride, padding,
                                                               dilation))
        if min(sizes) < 1:
            extent = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
            padded = tuple(n + 2 * p for n, p in zip(spatial, padding))
            raise ShapeError(f"Conv: output would be {format_output(sizes)}: the kernel spans "
                             f"{format_shape(extent)} but the padded input is "
                             f"{format_shape(padded)}",
                             hint="use padding, a smaller kernel or dilation, or a larger input")
        out = (self.out, *sizes)
        return (out, (self.out, channels // self.groups, *kernel),
                math.prod(out) * (channels // self.groups) * math.prod(kernel),
                tuple((d * (k - 1) + 1, s) for k, s, d in zip(kernel, stride, dilation)))

    def explain(self, facts: WindowFacts) -> dict:
        channels, spatial = facts.inputs[0][0], facts.inputs[0][1:]
        # weight out × in/g × kernel; each output element sums in/g × kernel products
        data = self._explain(facts, self.out, channels, facts.output)
        if self.padding == "same":
            data["shape"] = [f"{axis}_out = {axis} = {n} (padding='same' keeps the size)"
                             for axis, n in zip(axis_names(len(spatial)), spatial)]
        else:
            data["shape"] = [Window(*args).formula(axis) for axis, *args in zip(
                axis_names(len(spatial)), spatial, facts.kernel, facts.stride, facts.padding,
                facts.dilation)]
        return data

    def torch_call(self, facts: WindowFacts) -> TorchCall:
        channels, spatial = facts.inputs[0][0], facts.inputs[0][1:]
        return TorchCall.of(
            f"torch.nn:Conv{len(spatial)}d", ("in_channels", Inferred(channels)),
            ("out_channels", self.given("out")), ("kernel_size", self.given("kernel")),
            ("stride", self.given("stride")), ("padding", self.given("padding")),
            ("dilation", self.given("dilation")), ("groups", self.given("groups")),
            ("bias", self.given("bias")),
            positional=3, stride=1, padding=0, dilation=1, groups=1, bias=True)


@register
@dataclass(frozen=True)
class ConvTranspose(_Convolution):
    """Transposed convolution over 1, 2 or 3 spatial axes (ConvTranspose1d/2d/3d): each input
    element spreads a kernel-sized window onto an output S times as large, less 2P, plus OP."""

    torch_modules = ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")

    out: PositiveInt
    kernel: Size
    stride: Size = 1
    padding: NonNegativeSize = 0
    output_padding: NonNegativeSize = 0
    groups: PositiveInt = 1
    bias: bool = True
    dilation: Size = 1

    def check(self) -> None:
        super().check()
        values = (self.output_padding, self.stride, self.dilation)
        lengths = {len(v) for v in values if isinstance(v, tuple)}
        if len(lengths) > 1:
            return  # per_axis names the mismatch once the input's rank is known
        axes = lengths.pop() if lengths else 1
        for op, s, d in zip(*(per_axis(v, axes, "") for v in values)):
            # PyTorch's rule, per axis: smaller than the stride or than the dilation.
            if op >= s and op >= d:
                raise ArgumentError(f"ConvTranspose: output_padding {op} must be smaller than "
                                    f"the stride {s} or the dilation {d} (PyTorch refuses it "
                                    "otherwise)", argument="output_padding")

    @staticmethod
    def _axes(facts: WindowFacts):
        """Per spatial axis: (size, kernel, stride, padding, dilation, output_padding)."""
        return tuple(zip(facts.inputs[0][1:], facts.kernel, facts.stride, facts.padding,
                         facts.dilation, facts.output_padding))

    def _arithmetic(self, shape: Shape, kernel, stride, padding, dilation, output_padding):
        spread = tuple(self._spread(*axis) for axis in zip(shape[1:], kernel, stride, dilation,
                                                             output_padding))
        sizes = tuple(n - 2 * p for n, p in zip(spread, padding))
        if min(sizes) < 1:
            trimmed = tuple(2 * p for p in padding)
            raise ShapeError(f"ConvTranspose: output would be {format_output(sizes)}: padding "
                             f"{format_size(padding)} trims {format_size(trimmed)} from the "
                             f"{format_shape(spread)} the kernel spreads the input over",
                             hint="use less padding, a larger kernel or stride, or a larger input")
        # torchvision/fvcore: each input element is multiplied into out/groups kernel windows.
        # An output sees a varying number of inputs (stride-phase dependent): not one window.
        return ((self.out, *sizes), (shape[0], self.out // self.groups, *kernel),
                numel(shape) * (self.out // self.groups) * math.prod(kernel), None)

    @staticmethod
    def _spread(n: int, k: int, s: int, d: int, op: int) -> int:
        """(W − 1)·S + D(F−1) + OP + 1: the output before the padding is trimmed."""
        return (n - 1) * s + d * (k - 1) + op + 1

    def explain(self, facts: WindowFacts) -> dict:
        shape, out = facts.inputs[0], facts.output
        # weight in × out/g × kernel; each input element spreads into out/g × kernel products
        data = self._explain(facts, shape[0], self.out, shape)
        data["shape"] = [
            f"{axis}_out = ({n} − 1)·{s} − 2·{p} + {d}·({k}−1) + {op} + 1 = {size}"
            for axis, (n, k, s, p, d, op), size
            in zip(axis_names(len(out) - 1), self._axes(facts), out[1:])]
        return data

    def torch_call(self, facts: WindowFacts) -> TorchCall:
        channels, spatial = facts.inputs[0][0], facts.inputs[0][1:]
        return TorchCall.of(
            f"torch.nn:ConvTranspose{len(spatial)}d", ("in_channels", Inferred(channels)),
            ("out_channels", self.given("out")), ("kernel_size", self.given("kernel")),
            ("stride", self.given("stride")), ("padding", self.given("padding")),
            ("output_padding", self.given("output_padding")), ("groups", self.given("groups")),
            ("bias", self.given("bias")), ("dilation", self.given("dilation")),
            positional=3, stride=1, padding=0, output_padding=0, groups=1, bias=True,
            dilation=1)
