"""Layers with several inputs: the branches of `[a] + [b]`, `[a] | [b]` and `[a] * [b]`, or the
previous result and earlier results named with `as` (`Concat(enc4, crop=true)`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar, Optional, Union

from ..errors import ShapeError
from .base import Facts, Kept, Layer, register
from .geometry import format_shape, Shape

Reference = Annotated[Union[str, tuple[str, ...]], "the name of an earlier result, given with "
                                                   "'as', or a tuple of such names"]


class _Merge(Layer):
    kind = "merge"
    # Merging a prefix of the inputs first gives the same tensor, cat(x, a, b) =
    # cat(cat(x, a), b): the importer writes DenseNet's torch.cat(features) as nested branches.
    merges_by_prefix: ClassVar[bool] = False

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

    def explain(self, facts: Facts) -> dict:
        data = super().explain(facts)
        data["shape"] = [f"adds {len(facts.inputs)} inputs of shape {format_shape(facts.output)} "
                         f"element by element: shape unchanged"]
        return data

    def describe(self, facts: Facts) -> str:
        return f"Add({' + '.join(format_shape(s) for s in facts.inputs)})"

    def build(self, facts: Facts):
        from .modules import Sum
        return Sum()

    def python_expression(self, facts: Facts, inputs: list[str]) -> str:
        return " + ".join(inputs)


@dataclass(frozen=True, kw_only=True)
class ConcatFacts(Facts):
    offsets: tuple[tuple[int, ...], ...]  # per input, where its center crop starts on each axis


@register
@dataclass(frozen=True)
class Concat(_Merge):
    """Concatenate inputs along channels; crop=true center-crops later inputs to the first's
    spatial size, as U-Net crops its skip connections."""

    merges_by_prefix = True

    skip: Optional[Reference] = None
    crop: bool = False
    _operator = "|"

    def resolve(self, *shapes: Shape) -> ConcatFacts:
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
        return self.described(ConcatFacts(
            inputs=shapes, output=(sum(s[0] for s in shapes), *first[1:]), description="",
            window=tuple((1, 1) for _ in first[1:]), offsets=tuple(offsets)))

    def explain(self, facts: ConcatFacts) -> dict:
        data = super().explain(facts)
        out = facts.output
        lines = [f"concatenates channels: {' + '.join(str(s[0]) for s in facts.inputs)} = "
                 f"{out[0]}" + (f", each {format_shape(out[1:])}" if len(out) > 1 else "")]
        for shape, offset in zip(facts.inputs, facts.offsets):
            if shape[1:] != out[1:]:
                lines.append(f"center-crops {format_shape(shape)} to "
                             f"{format_shape((shape[0], *out[1:]))} from offset "
                             f"{format_shape(offset)}")
        data["shape"] = lines
        return data

    def describe(self, facts: ConcatFacts) -> str:
        crop = ", crop" if self.crop else ""
        return (f"Concat({' + '.join(format_shape(s) for s in facts.inputs)}→{facts.output[0]}"
                f"{crop})")

    def build(self, facts: ConcatFacts):
        from .modules import ChannelConcat
        return ChannelConcat(self._windows(facts))

    def _windows(self, facts: ConcatFacts) -> list:
        """Per input, None, or the slices of its center crop on each spatial axis."""
        size = facts.output[1:]
        return [None if not any(o) and s[1:] == size else
                tuple(slice(a, a + n) for a, n in zip(o, size))
                for o, s in zip(facts.offsets, facts.inputs)]

    def python_expression(self, facts: ConcatFacts, inputs: list[str]) -> str:
        cropped = [x if window is None else
                   f"{x}[..., {', '.join(f'{w.start}:{w.stop}' for w in window)}]"
                   for x, window in zip(inputs, self._windows(facts))]
        return f"torch.cat([{', '.join(cropped)}], dim=1)"


@register
@dataclass(frozen=True)
class Multiply(_Merge):
    """Element-wise product of inputs of one rank, broadcasting axes of size 1: the gate of
    squeeze-and-excitation (C×H×W times C×1×1), or a learnable scale (LayerScale)."""

    multiplies = True

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

    def explain(self, facts: Facts) -> dict:
        data = super().explain(facts)
        out = facts.output
        broadcast = [format_shape(s) for s in facts.inputs if s != out]
        data["shape"] = [f"multiplies {len(facts.inputs)} inputs element by element"
                         + (f", broadcasting {' and '.join(broadcast)} to {format_shape(out)}"
                            if broadcast else f" of shape {format_shape(out)}")]
        return data

    def kept(self, facts: Facts) -> tuple[Kept, ...]:
        """Inputs multiplied in order: each product keeps its factors, each for the other's
        gradient, and so only where the other requires grad; past the first, the running product
        so far is a factor of its own."""
        names = ["input"] + [f"input{i}" for i in range(1, len(facts.inputs))]
        kept = [Kept("input", facts.inputs[0], when=("input1",))]
        product = facts.inputs[0]
        for index in range(1, len(facts.inputs)):
            if index > 1:
                kept.append(Kept(f"product{index - 1}", product, when=(names[index],),
                                 typed=True))
            kept.append(Kept(names[index], facts.inputs[index], when=tuple(names[:index])))
            product = tuple(map(max, product, facts.inputs[index]))
        return tuple(kept)

    def describe(self, facts: Facts) -> str:
        return f"Multiply({' * '.join(format_shape(s) for s in facts.inputs)})"

    def build(self, facts: Facts):
        from .modules import Product
        return Product()

    def python_expression(self, facts: Facts, inputs: list[str]) -> str:
        return " * ".join(inputs)
