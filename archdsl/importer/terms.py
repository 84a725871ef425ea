"""The spec writer's terms: a network as nested chains, branches, groups, repeats and calls of
layers or definitions (plain frozen dataclasses), and the walks over them the passes share."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from ..layers import layer_class

RESERVED = {"input", "train", "def", "assert", "for", "as", "true", "false", "none"}
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NO_DEFAULT = object()  # a definition's parameter without a default


@dataclass(frozen=True)
class Expression:
    """A value written as it stands: a definition's parameter, arithmetic over parameters, or
    the name of an earlier result."""

    text: str


@dataclass(frozen=True)
class Call:
    layer: str
    values: tuple  # one per field of the layer, in the class's order
    name: str | None = None  # `as` name
    node: str = field(default="", compare=False)


@dataclass(frozen=True)
class Use:
    """A call of a definition (made in define)."""

    definition: str
    values: tuple  # one per parameter
    labels: tuple = field(compare=False)  # the parameters' names, to name an outer one
    defaults: tuple = field(default=(), compare=False)  # per parameter; NO_DEFAULT where none
    name: str | None = None
    node: str = field(default="", compare=False)


@dataclass(frozen=True)
class Seq:
    steps: tuple


@dataclass(frozen=True)
class Branches:
    branches: tuple  # of Seq; an empty one is Identity
    merge: str  # the merging layer
    name: str | None = None
    node: str = field(default="", compare=False)


@dataclass(frozen=True)
class Group:
    body: Seq
    name: str | None = None
    scope: tuple = field(default=(), compare=False)  # the module's place: ((attr, class), …)


@dataclass(frozen=True)
class Repeat:
    body: object  # Call, Use or Group
    count: int
    index: str | None = None  # `for k`


def node_names(term) -> list[str]:
    """The node names a term computes, in order."""
    if isinstance(term, Call):
        return [term.node]
    if isinstance(term, Seq):
        return [name for step in term.steps for name in node_names(step)]
    if isinstance(term, Branches):
        return [name for b in term.branches for name in node_names(b)] + [term.node]
    if isinstance(term, Group):
        return node_names(term.body)
    raise AssertionError(term)


def mapped_inside(term, function):
    """The term with `function` applied to the chains it holds (a group's, each branch)."""
    if isinstance(term, Group):
        return dataclasses.replace(term, body=function(term.body))
    if isinstance(term, Branches):
        return dataclasses.replace(term, branches=tuple(function(b) for b in term.branches))
    return term


def common_prefix(paths: list[tuple]) -> tuple:
    if not paths:
        return ()
    common = paths[0]
    for path in paths[1:]:
        length = 0
        while length < min(len(common), len(path)) and common[length] == path[length]:
            length += 1
        common = common[:length]
    return common


def output_of(term) -> str | None:
    """The node whose output is the term's."""
    if isinstance(term, Seq):
        return output_of(term.steps[-1]) if term.steps else None
    if isinstance(term, Group):
        return output_of(term.body)
    return term.node


def as_names(term) -> list[str]:
    """Every `as` name in a term."""
    if isinstance(term, Seq):
        return [name for step in term.steps for name in as_names(step)]
    own = [term.name] if getattr(term, "name", None) else []
    if isinstance(term, Group):
        return own + as_names(term.body)
    if isinstance(term, Branches):
        return own + [name for b in term.branches for name in as_names(b)]
    if isinstance(term, Repeat):
        return as_names(term.body)
    return own


def groups_in(term) -> list[Group]:
    if isinstance(term, Seq):
        return [g for step in term.steps for g in groups_in(step)]
    if isinstance(term, Group):
        return [term] + groups_in(term.body)
    if isinstance(term, Branches):
        return [g for b in term.branches for g in groups_in(b)]
    return []


def replaced(term, replacements: dict):
    if id(term) in replacements:
        return replacements[id(term)]
    if isinstance(term, Seq):
        return Seq(tuple(replaced(step, replacements) for step in term.steps))
    return mapped_inside(term, lambda seq: replaced(seq, replacements))


def shape_of(term):
    """The term without its numbers: what instances of one definition share."""
    if isinstance(term, Seq):
        return ("seq", tuple(shape_of(step) for step in term.steps))
    if isinstance(term, Call):
        return ("call", term.layer, term.name)
    if isinstance(term, Use):
        return ("use", term.definition, term.name)
    if isinstance(term, Group):
        return ("group", term.name, shape_of(term.body))
    if isinstance(term, Branches):
        return ("branches", term.merge, term.name, tuple(shape_of(b) for b in term.branches))
    if isinstance(term, Repeat):
        return ("repeat", term.count, shape_of(term.body))
    raise AssertionError(term)


def values_of(term) -> list[tuple[str, object]]:
    """The term's numbers (and other values) in order, each with the argument it is given as."""
    if isinstance(term, Seq):
        return [v for step in term.steps for v in values_of(step)]
    if isinstance(term, Call):
        return [(f.name, v) for f, v in zip(dataclasses.fields(layer_class(term.layer)),
                                            term.values)]
    if isinstance(term, Use):
        return list(zip(term.labels, term.values))
    if isinstance(term, Group):
        return values_of(term.body)
    if isinstance(term, Branches):
        return [v for b in term.branches for v in values_of(b)]
    if isinstance(term, Repeat):
        return values_of(term.body)
    raise AssertionError(term)


def filled_in(term, values):
    """The term with its values taken in order from the iterator `values`."""
    if isinstance(term, Seq):
        return Seq(tuple(filled_in(step, values) for step in term.steps))
    if isinstance(term, (Call, Use)):
        return dataclasses.replace(term, values=tuple(next(values) for _ in term.values))
    if isinstance(term, (Group, Repeat)):
        return dataclasses.replace(term, body=filled_in(term.body, values))
    if isinstance(term, Branches):
        return dataclasses.replace(term, branches=tuple(filled_in(b, values)
                                                        for b in term.branches))
    raise AssertionError(term)


def parts(term) -> list:
    """The terms directly inside a term: a chain's steps, a group's or a repeat's body, the
    branches."""
    if isinstance(term, Seq):
        return list(term.steps)
    if isinstance(term, (Group, Repeat)):
        return [term.body]
    if isinstance(term, Branches):
        return list(term.branches)
    return []


def uses_in(term) -> list[Use]:
    return [term] if isinstance(term, Use) else [u for p in parts(term) for u in uses_in(p)]


def read_names(term) -> list[str]:
    """The names merges read (Concat(enc4)), and definitions' calls pass on (Up(512, enc4))."""
    if isinstance(term, (Call, Use)):
        return [word for v in term.values if isinstance(v, Expression)
                for word in WORD.findall(v.text)]
    return [name for p in parts(term) for name in read_names(p)]


def is_merge(layer: str) -> bool:
    return layer_class(layer).kind == "merge"
