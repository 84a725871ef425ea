"""The spec as typed nodes with source spans, and its lowering into a network of layer nodes."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Union

from .errors import ArchDSLError, InputShapeError, Span
from .layers import Layer, bind_layer

Value = Union[int, float, bool, str, tuple]


@dataclass(frozen=True)
class Argument:
    keyword: str | None
    value: Value
    span: Span


@dataclass(frozen=True)
class Call:
    name: str
    arguments: tuple[Argument, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Chain:
    steps: tuple["Step", ...]
    span: Span


@dataclass(frozen=True)
class Group:
    body: Chain
    span: Span


@dataclass(frozen=True)
class Repeat:
    body: Union[Call, Group]
    count: int
    span: Span
    count_span: Span


Step = Union[Call, Group, Repeat]


@dataclass(frozen=True)
class InputDecl:
    shape: tuple[int, ...]
    span: Span


@dataclass(frozen=True)
class TrainDecl:
    """`train(epochs=10, lr=3e-3, …)`: settings checked against TrainConfig when training."""

    arguments: tuple[Argument, ...]
    span: Span


@dataclass(frozen=True)
class Spec:
    """A parsed spec: its body, its declared input, and the text it came from (for error carets)."""

    body: Chain
    input: InputDecl | None
    text: str
    filename: str = "<spec>"
    training: TrainDecl | None = None


@dataclass(frozen=True)
class Node:
    """One layer of the lowered network. `inputs` names the nodes it reads, so graphs fit later."""

    name: str
    layer: Layer
    span: Span
    inputs: tuple[str, ...]


INPUT = "input"
MAX_ELEMENTS = 10 ** 18  # more is a typo; the cap keeps every count printable
MAX_LAYERS = 10_000  # repeats that expand beyond this would take minutes, then memory, to lower


def parse_shape(text: str, span: Span | None = None) -> tuple[int, ...]:
    """`1x28x28` -> (1, 28, 28); every size must be positive."""
    parts = text.strip().lower().split("x")
    # ASCII digits only: str.isdigit() also takes '²', which int() refuses.
    if not all(re.fullmatch("[0-9]+", p) for p in parts):
        raise InputShapeError(f"input shape must look like 1x28x28 or 784, got {text!r}", span)
    too_large = InputShapeError(f"input shape is too large: more than {MAX_ELEMENTS:,} "
                                f"elements", span)
    if any(len(p.lstrip("0")) > len(str(MAX_ELEMENTS)) for p in parts):  # int() refuses 4300
        raise too_large
    shape = tuple(int(p) for p in parts)
    if any(size < 1 for size in shape):
        raise InputShapeError(f"input sizes must be positive, got {'x'.join(map(str, shape))}", span)
    elements = 1
    for size in shape:
        elements *= size
        if elements > MAX_ELEMENTS:
            raise too_large
    return shape


def lower(spec: Spec) -> tuple[Node, ...]:
    """Expand repeats and groups into a flat, named sequence of bound layers."""
    count = _layer_count(spec.body)
    if count > MAX_LAYERS:
        raise ArchDSLError(f"the network expands to {count:,} layers; at most {MAX_LAYERS:,} "
                           f"are supported", spec.body.span)
    nodes: list[Node] = []
    _lower_chain(spec.body, "", nodes)
    return tuple(nodes)


def _lower_chain(chain: Chain, prefix: str, nodes: list[Node]) -> None:
    # Each step contributes (base name, expander); a base name used once in a scope stays bare
    # (`flatten`), one used several times is numbered in order (`conv1`, `conv2`).
    parts: list[tuple[str, Step]] = []
    for step in chain.steps:
        if isinstance(step, Repeat):
            if step.count < 1:
                raise ArchDSLError(f"repeat count must be at least 1, got {step.count}",
                                   step.count_span)
            parts.extend((_base_name(step.body), step.body) for _ in range(step.count))
        else:
            parts.append((_base_name(step), step))
    totals = Counter(base for base, _ in parts)
    seen: Counter[str] = Counter()
    for base, step in parts:
        seen[base] += 1
        name = prefix + (base if totals[base] == 1 else f"{base}{seen[base]}")
        if isinstance(step, Group):
            _lower_chain(step.body, name + ".", nodes)
        else:
            previous = nodes[-1].name if nodes else INPUT
            nodes.append(Node(name, bind_layer(step), step.span, (previous,)))


def _layer_count(step: Step | Chain) -> int:
    """How many layers a step lowers to; a repeat that alone expands too far is the error."""
    if isinstance(step, Chain):
        return sum(_layer_count(s) for s in step.steps)
    if isinstance(step, Group):
        return _layer_count(step.body)
    if isinstance(step, Repeat):
        count = step.count * _layer_count(step.body)
        if count > MAX_LAYERS:
            raise ArchDSLError(f"this repeat expands to {count:,} layers; at most "
                               f"{MAX_LAYERS:,} are supported", step.count_span)
        return count
    return 1


def _base_name(step: Step) -> str:
    return "block" if isinstance(step, Group) else step.name.lower()
