"""The spec as typed nodes with source spans (the parser builds them; lowering.py expands them)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Union

from .errors import InputShapeError, Span
from .layers import Layer, TorchOrder


class Name(str):
    """A bare word in an argument: a definition's parameter where one is in scope, else the word
    itself (`same`, `nearest`, or the name of a result given with `as`)."""


@dataclass(frozen=True)
class Operation:
    """Arithmetic over a definition's parameters (`c*4`), computed when the definition expands."""

    operator: str  # + - * / // neg
    operands: tuple
    span: Span


Value = Union[int, float, bool, str, tuple, Operation, None]


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
    """`step*N`, or `step*N for k`: N copies, the k-th (from 0) with `k` bound in its arguments."""

    body: Union[Call, Group]
    count: Union[int, Name]
    span: Span
    count_span: Span
    index: str | None = None
    index_span: Span | None = None


@dataclass(frozen=True)
class Named:
    """`step as name`: the step's rows are named `name`, and later steps may refer to its output."""

    body: Union[Call, Group, Repeat]
    name: str
    span: Span
    name_span: Span | None = None


@dataclass(frozen=True)
class Parallel:
    """`[a] + [b]`, `[a] | [b]` or `[a] * [b]`: branches reading the same input, merged by the
    layer `merge`."""

    branches: tuple["Step", ...]
    merge: str  # the registered layer that merges: Add, Concat or Multiply
    span: Span


Step = Union[Call, Group, Repeat, Named, Parallel]


@dataclass(frozen=True)
class Parameter:
    name: str
    default: Value
    has_default: bool
    span: Span


@dataclass(frozen=True)
class Definition:
    """`def Name(params) = [chain]`, or `def Name = [chain]` without parameters: expanded, with its
    arguments bound, wherever it is called."""

    name: str
    parameters: tuple[Parameter, ...]
    body: Group
    span: Span
    name_span: Span


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
class AssertDecl:
    """`assert params < 100k`: a bound on a total of the analysis, checked by `archdsl check`."""

    metric: str
    comparator: str  # < <= > >=
    bound: Decimal  # the number with its suffix applied: 100k -> 100000
    text: str  # the bound as written, e.g. 1.5M
    span: Span
    metric_span: Span


@dataclass(frozen=True)
class Spec:
    """A parsed spec: its body, its declared input, and the text it came from (for error carets)."""

    body: Chain
    input: InputDecl | None
    text: str
    filename: str = "<spec>"
    training: TrainDecl | None = None
    definitions: tuple[Definition, ...] = ()
    assertions: tuple[AssertDecl, ...] = ()


@dataclass(frozen=True)
class Scope:
    """A scope a node was lowered in: a group, a named repeat, or a definition's expansion.
    `env` holds the words bound there (a definition's parameters, repeat indices) with their
    values; the Python export reads it to write a definition as a class with parameters."""

    name: str  # the rows' prefix, without its dot: layer1.down
    kind: str  # "group", "repeat" or "definition"
    source: Union[str, Span]  # the definition's name, else the group's (or repeat's) span
    env: tuple[tuple[str, object], ...]
    call: Span | None = None  # a definition's call


@dataclass(frozen=True)
class Node:
    """One layer of the lowered network; `inputs` names the nodes (or INPUT) it reads, in order."""

    name: str
    layer: Layer
    span: Span
    inputs: tuple[str, ...]
    expanded_from: tuple[Span, ...] = ()  # the definition calls it came from, outermost first
    torch_order: TorchOrder | None = None  # where the call also reads in PyTorch's order
    scopes: tuple[Scope, ...] = ()  # the scopes it was lowered in, outermost first


INPUT = "input"
MAX_ELEMENTS = 10 ** 18  # more is a typo; the cap keeps every count printable


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
