"""`archdsl sweep`: one spec analysed at several input sizes, as plain data.

For each input shape: the output shape, parameters, MACs and activation memory, or, where the
size is invalid, the row that breaks and the error's message. Then the smallest valid input
with every spatial axis of one size N (a square H = W for images) and the spec's channels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .analysis import analyze
from .errors import ArchDSLError
from .ir import INPUT, MAX_ELEMENTS, Spec, parse_shape
from .layers import format_shape
from .lowering import lower

SCHEMA = "archdsl.sweep/1"
MAX_SIZES = 1000  # shapes in one sweep
MAX_SEARCH = 4096  # the smallest-size search looks at most this far up


@dataclass(frozen=True)
class SweepPoint:
    input: tuple[int, ...]
    output: tuple[int, ...] | None
    params: int | None
    macs: int | None
    activation_bytes: int | None
    layer: str | None = None  # where invalid: the row that breaks
    error: str | None = None  # ... and why
    line: int | None = None  # ... and where in the spec
    column: int | None = None

    @property
    def valid(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        data = {"input": list(self.input), "valid": self.valid}
        if self.valid:
            data.update(output=list(self.output), params=self.params, macs=self.macs,
                        activation_bytes=self.activation_bytes)
        else:
            data.update(layer=self.layer, error=self.error, line=self.line, column=self.column)
        return data


@dataclass(frozen=True)
class Sweep:
    name: str
    points: tuple[SweepPoint, ...]
    smallest: tuple[int, ...] | None  # the smallest valid input of equal spatial sizes
    searched: tuple[int, int] | None  # the range of sizes searched; None for a flat input
    batch: int

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "name": self.name, "batch": self.batch,
                "sizes": [p.to_dict() for p in self.points],
                "smallest_valid": None if self.smallest is None else list(self.smallest),
                "searched": None if self.searched is None else list(self.searched)}

    def __repr__(self) -> str:
        valid = sum(p.valid for p in self.points)
        smallest = "" if self.smallest is None else \
            f", smallest valid {format_shape(self.smallest)}"
        return f"<Sweep {self.name}: {valid} of {len(self.points)} sizes valid{smallest}>"

    def _repr_html_(self) -> str:
        from .report import render_sweep
        return render_sweep(self, "html")


def parse_shapes(text: str) -> list[tuple[int, ...]]:
    """`1x28x28,1x32x32` -> [(1, 28, 28), (1, 32, 32)]. Raises ValueError."""
    shapes = []
    for part in text.split(","):
        try:
            shapes.append(parse_shape(part))
        except ArchDSLError as error:
            raise ValueError(error.message) from None
    _check_count(len(shapes))
    return shapes


def parse_sizes(text: str) -> list[int]:
    """`28:224:32` -> 28, 60, …, 220 (start:stop:step, stop included when reached);
    `28,32,64` and `28:32` (step 1) too. Raises ValueError."""
    sizes: list[int] = []
    for part in text.split(","):
        pieces = part.strip().split(":")
        try:
            numbers = [int(p) for p in pieces]
        except ValueError:
            raise ValueError(f"sizes look like 28, 28:224 or 28:224:32, got {part.strip()!r}") \
                from None
        if len(numbers) > 3 or any(n < 1 for n in numbers):
            raise ValueError(f"sizes look like 28, 28:224 or 28:224:32 with positive numbers, "
                             f"got {part.strip()!r}")
        start, stop, step = {1: lambda: (numbers[0], numbers[0], 1),
                             2: lambda: (*numbers, 1), 3: lambda: tuple(numbers)}[len(numbers)]()
        if stop < start:
            raise ValueError(f"{part.strip()!r}: the range ends before it starts")
        _check_count(len(sizes) + (stop - start) // step + 1)
        sizes += range(start, stop + 1, step)
    return sizes


def _check_count(count: int) -> None:
    if count > MAX_SIZES:
        raise ValueError(f"at most {MAX_SIZES} sizes in one sweep, got {count}")


def square(template: tuple[int, ...], size: int) -> tuple[int, ...]:
    """The template's channels with every spatial axis `size`: (3, 224, 224), 32 -> (3, 32, 32)."""
    return (template[0], *(size for _ in template[1:]))


def sweep(spec: Spec, shapes: list[tuple[int, ...]] | None = None,
          sizes: list[int] | None = None, batch: int = 1) -> Sweep:
    """Analyse `spec` at each shape, or at each size N with the spec's channels and every
    spatial axis N. Spec errors that do not depend on the size (a bad call, an unknown name)
    raise, as in analyze."""
    nodes = lower(spec)  # errors of the text raise here, once
    template = spec.input.shape if spec.input is not None else (shapes[0] if shapes else None)
    if sizes is not None:
        if template is None:
            raise ValueError("the spec declares no input shape: give --input shapes, or add "
                             "an input line for --size to take the channels from")
        if len(template) < 2:
            raise ValueError(f"--size sets the spatial axes, but the input "
                             f"{'x'.join(map(str, template))} has none: give --input shapes")
        shapes = [square(template, n) for n in sizes]
    points = tuple(_point(spec, nodes, shape, batch) for shape in shapes or ())
    smallest, searched = None, None
    if template is not None and len(template) >= 2:
        top = max([max(template[1:])] + [max(p.input[1:]) for p in points if len(p.input) > 1])
        searched = (1, min(max(top, 1), MAX_SEARCH))
        smallest = smallest_valid(spec, nodes, template, searched[1])
    return Sweep(spec.filename, points, smallest, searched, batch)


def smallest_valid(spec: Spec, nodes, template: tuple[int, ...], limit: int):
    """The smallest N in 1..limit for which the input of the template's channels and every
    spatial axis N is valid. Every N is tried from 1 up, since validity need not be monotonic
    (`[MaxPool(2) -> Upsample(2)] + Identity` takes even sizes only); the shape rules alone
    decide a candidate quickly, and the full analysis confirms it."""
    for n in range(1, limit + 1):
        shape = square(template, n)
        if math.prod(shape) > MAX_ELEMENTS:
            return None
        if _breaking_node(nodes, shape) is None:
            try:
                analyze(spec, shape)
            except ArchDSLError:
                continue
            return shape
    return None


def _point(spec: Spec, nodes, shape: tuple[int, ...], batch: int) -> SweepPoint:
    try:
        analysis = analyze(spec, shape, batch)
    except ArchDSLError as error:
        node = _breaking_node(nodes, shape)
        if node is None:  # raised outside the shape rules: the first node at the error's span
            node = next((n for n in nodes if n.span == error.span), None)
        span = error.span
        return SweepPoint(shape, None, None, None, None, node.name if node else None,
                          error.message, span.line if span else None,
                          span.column if span else None)
    totals = analysis.totals
    return SweepPoint(shape, analysis.output, totals.params, totals.macs,
                      totals.activation_bytes)


def _breaking_node(nodes, shape: tuple[int, ...]):
    """The first node whose shape rule refuses what reaches it, or None."""
    shapes = {INPUT: shape}
    for node in nodes:
        try:
            shapes[node.name] = node.layer.resolve(*(shapes[i] for i in node.inputs)).output
        except ArchDSLError:
            return node
    return None
