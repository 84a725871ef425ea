"""Layers with several inputs: the branches of `[a] + [b]`, `[a] | [b]` and `[a] * [b]`, or the
previous result and earlier results named with `as` (`Concat(enc4, crop=true)`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Optional, Union

from ..errors import ShapeError
from .base import Layer, register
from .geometry import format_shape, Shape

Reference = Annotated[Union[str, tuple[str, ...]], "the name of an earlier result, given with "
                                                   "'as', or a tuple of such names"]


class _Merge(Layer):
    def references(self) -> tuple[str, ...]:
        if self.skip is None:
            return ()
        return self.skip if isinstance(self.skip, tuple) else (self.skip,)

    def _inputs(self, shapes) -> tuple[Shape, ...]:
        if len(shapes) < 2:
            raise ShapeError(f"{self.dsl_name} needs at least two inputs",
                             hint=f"write branches such as [a] {self._operator} [b], or name a "
                                  f"result with 'as' and pass it: {self.dsl_name}(name)")
        return shapes

    def receptive_field(self, *shapes: Shape):
        return tuple((1, 1) for _ in shapes[0][1:])


@register
@dataclass(frozen=True)
class Add(_Merge):
    """Element-wise sum of inputs of one shape: residual connections."""

    skip: Optional[Reference] = None
    _operator = "+"

    def output_shape(self, *shapes: Shape) -> Shape:
        first, *others = self._inputs(shapes)
        for other in others:
            if other != first:
                raise ShapeError(f"Add: the shapes differ: {format_shape(first)} and "
                                 f"{format_shape(other)}",
                                 hint="a projection shortcut such as [Conv(c, 1, s=2) -> "
                                      "BatchNorm] gives the branches one shape")
        return first

    def explain(self, *shapes: Shape) -> dict:
        data = super().explain(*shapes)
        data["shape"] = [f"adds {len(shapes)} inputs of shape {format_shape(shapes[0])} "
                         f"element by element: shape unchanged"]
        return data

    def describe(self, *shapes: Shape) -> str:
        return f"Add({' + '.join(format_shape(s) for s in shapes)})"

    def build(self, *shapes: Shape):
        from .modules import Sum
        return Sum()


@register
@dataclass(frozen=True)
class Concat(_Merge):
    """Concatenate inputs along channels; crop=true center-crops later inputs to the first's
    spatial size, as U-Net crops its skip connections."""

    skip: Optional[Reference] = None
    crop: bool = False
    _operator = "|"

    def _crops(self, shapes) -> list[tuple[int, ...]]:
        """Per input, the offset of its center crop on each spatial axis."""
        first, *others = self._inputs(shapes)
        offsets = [(0,) * (len(first) - 1)]
        for other in others:
            if len(other) != len(first):
                raise ShapeError(f"Concat: the inputs have different ranks: "
                                 f"{format_shape(first)} and {format_shape(other)}")
            if other[1:] == first[1:]:
                offsets.append((0,) * (len(first) - 1))
            elif self.crop and all(o >= f for o, f in zip(other[1:], first[1:])):
                offsets.append(tuple((o - f) // 2 for o, f in zip(other[1:], first[1:])))
            else:
                raise ShapeError(f"Concat: the sizes differ: {format_shape(first)} and "
                                 f"{format_shape(other)}",
                                 hint="crop=true center-crops later inputs that are larger"
                                 if not self.crop else "only larger inputs can be cropped")
        return offsets

    def output_shape(self, *shapes: Shape) -> Shape:
        self._crops(shapes)
        return (sum(s[0] for s in shapes), *shapes[0][1:])

    def explain(self, *shapes: Shape) -> dict:
        data = super().explain(*shapes)
        out = self.output_shape(*shapes)
        lines = [f"concatenates channels: {' + '.join(str(s[0]) for s in shapes)} = {out[0]}"
                 + (f", each {format_shape(out[1:])}" if len(out) > 1 else "")]
        for shape, offset in zip(shapes, self._crops(shapes)):
            if shape[1:] != out[1:]:
                lines.append(f"center-crops {format_shape(shape)} to "
                             f"{format_shape((shape[0], *out[1:]))} from offset "
                             f"{format_shape(offset)}")
        data["shape"] = lines
        return data

    def describe(self, *shapes: Shape) -> str:
        out = self.output_shape(*shapes)
        crop = ", crop" if self.crop else ""
        return f"Concat({' + '.join(format_shape(s) for s in shapes)}→{out[0]}{crop})"

    def build(self, *shapes: Shape):
        from .modules import ChannelConcat
        size = shapes[0][1:]
        return ChannelConcat([None if not any(o) and s[1:] == size else
                              tuple(slice(a, a + n) for a, n in zip(o, size))
                              for o, s in zip(self._crops(shapes), shapes)])


@register
@dataclass(frozen=True)
class Multiply(_Merge):
    """Element-wise product of inputs of one rank, broadcasting axes of size 1: the gate of
    squeeze-and-excitation (C×H×W times C×1×1), or a learnable scale (LayerScale)."""

    skip: Optional[Reference] = None
    _operator = "*"

    def output_shape(self, *shapes: Shape) -> Shape:
        first, *others = self._inputs(shapes)
        out = first
        for other in others:
            if len(other) != len(out):
                flat = min((out, other), key=len)
                raise ShapeError(f"Multiply: the shapes have different ranks: "
                                 f"{format_shape(out)} and {format_shape(other)}",
                                 hint=f"a gate of shape {format_shape(flat)} is flat; "
                                      f"AdaptiveAvgPool(1) keeps the spatial axes as 1×1, "
                                      f"which broadcast" if len(flat) == 1 else
                                 "both inputs need the same axes; sizes of 1 broadcast")
            if any(a != b and 1 not in (a, b) for a, b in zip(out, other)):
                raise ShapeError(f"Multiply: the shapes do not broadcast: {format_shape(out)} "
                                 f"and {format_shape(other)}",
                                 hint="each axis needs the same size in both, or 1 in one "
                                      "(a gate of shape C×1×1 scales a C×H×W map)")
            out = tuple(max(a, b) for a, b in zip(out, other))
        return out

    def explain(self, *shapes: Shape) -> dict:
        data = super().explain(*shapes)
        out = self.output_shape(*shapes)
        broadcast = [format_shape(s) for s in shapes if s != out]
        data["shape"] = [f"multiplies {len(shapes)} inputs element by element"
                         + (f", broadcasting {' and '.join(broadcast)} to {format_shape(out)}"
                            if broadcast else f" of shape {format_shape(out)}")]
        return data

    def describe(self, *shapes: Shape) -> str:
        return f"Multiply({' * '.join(format_shape(s) for s in shapes)})"

    def build(self, *shapes: Shape):
        from .modules import Product
        return Product()
