"""Definitions and repeats: instances of one module class with one structure become a `def`
named after the class, whose varying numbers are its parameters (`c`, `s`, …), shared where
equal and derived where one is another times a constant (`c*4`, `k//2`); a rate that grows with
the block's index is written as arithmetic (`0.1*k/17`); consecutive equal steps, or runs of
them, become `X*N`."""
from __future__ import annotations

import dataclasses
import re
from collections import Counter

from ..layers import layer_class, layer_names
from ..layers.arguments import ALIASES
from .layout import ends_a_unit, literal_text, same_value
from .terms import (NO_DEFAULT, RESERVED, Branches, Call, Expression, Group, Repeat, Seq, Use,
                    as_names, filled_in, groups_in, mapped_inside, replaced, shape_of, uses_in,
                    values_of)

# Module classes that only hold others: no definition is named after them.
CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")
# A definition's parameter is named after the argument it first feeds: Conv(c, k, s=s).
PARAMETER_NAMES = {"out": "c", **{long: short for short, long in ALIASES.items()}}
# Arguments of one kind, where one may be derived from another: c*4 channels, padding k//2.
RELATED = ({"out", "groups"}, {"kernel", "padding"})
_NUMBERED = re.compile(r"([A-Za-z_]+?)([0-9]+)")  # denselayer12


def define(body: Seq) -> tuple[list[tuple[str, list[str], Seq]], Seq]:
    """Definitions for the module classes with several instances of one structure, innermost
    classes first; each instance becomes a call of its definition."""
    definitions: list[tuple[str, list[str], Seq]] = []
    defaults: dict[str, dict[str, object]] = {}  # each definition's parameters' defaults
    taken = set(layer_names())
    depths: dict[str, int] = {}
    for group in groups_in(body):
        cls = group.scope[-1][1]
        if cls not in CONTAINERS:
            depths[cls] = max(depths.get(cls, 0), len(group.scope))
    for cls in sorted(depths, key=lambda c: -depths[c]):  # stable: first seen first on ties
        variants: dict[object, list[Group]] = {}
        for group in groups_in(body):
            if group.scope[-1][1] == cls:
                variants.setdefault(shape_of(group.body), []).append(group)
        repeated = [groups for groups in variants.values() if len(groups) >= 2]
        if not repeated:
            continue
        main = max(repeated, key=len)
        replacements = {}
        for groups in [main] + [g for g in repeated if g is not main]:
            name = _definition_name(cls, groups, main, taken)
            parameters, seq, calls = _parameterized(name, [g.body for g in groups], defaults)
            definitions.append((name, parameters, seq))
            for group, call in zip(groups, calls):
                replacements[id(group)] = dataclasses.replace(call, name=group.name)
        body = replaced(body, replacements)
        definitions = [(n, p, replaced(s, replacements)) for n, p, s in definitions]
    return definitions, body


def shared_branches(body: Seq) -> Seq:
    """A branch of three steps or more that several structures of one module class share (the
    body of ResNet's bottleneck with and without its downsampling shortcut) as a group of its
    own, `<Class>Body`, so that it becomes one definition the others call."""
    by_class: dict[str, list[Group]] = {}
    for group in groups_in(body):
        by_class.setdefault(group.scope[-1][1], []).append(group)
    replacements = {}
    for cls, groups in by_class.items():
        variants = {shape_of(g.body): g for g in groups}
        if cls in CONTAINERS or len(variants) < 2:
            continue
        seen = Counter(shape for g in variants.values() for shape in
                       {shape_of(b) for b in _branches_of(g) if len(b.steps) >= 3})
        shared = {shape for shape, count in seen.items() if count >= 2}
        for group in groups:
            for branch in _branches_of(group):
                if shape_of(branch) in shared:
                    scope = group.scope + (("body", cls.lstrip("_") + "Body"),)
                    replacements[id(branch)] = Seq((Group(branch, None, scope),))
    return replaced(body, replacements)


def _branches_of(group: Group) -> list[Seq]:
    return [b for step in group.body.steps if isinstance(step, Branches) for b in step.branches]


def _parameterized(name: str, bodies: list[Seq], defaults: dict) \
        -> tuple[list[str], Seq, list[Use]]:
    """A definition's parameters (with defaults: `s=1`) and body, and one call per instance:
    the values that differ between instances become parameters; a column equal to an earlier
    one shares its parameter, one that is another times or divided by a constant is written so
    (c*4). The parameters at the end whose argument has a default some instance gives take it
    as theirs; `defaults` gets this definition's."""
    rows = [values_of(body) for body in bodies]
    labels = [label for label, _ in rows[0]]
    feeds = _argument_defaults(bodies[0], defaults)
    columns = [tuple(row[j][1] for row in rows) for j in range(len(labels))]
    parameters: list[str] = []
    known: list[tuple[str, tuple, str]] = []  # (parameter, its column, the argument it feeds)
    given = {}  # parameter -> the default of the argument it first feeds
    expressions = []
    for label, column, default in zip(labels, columns, feeds):
        if len({(type(v), v) for v in column}) == 1:
            expressions.append(column[0])
            continue
        same = next((p for p, c, _ in known if c == column and
                     [type(v) for v in c] == [type(v) for v in column]), None)
        text = same or _derived(label, column, known)
        if text is None:
            text = _parameter_name(label, parameters)
            parameters.append(text)
            known.append((text, column, label))
            given[text] = default
        expressions.append(Expression(text))
    body = filled_in(bodies[0], iter(expressions))
    by_name = {p: c for p, c, _ in known}
    own = [NO_DEFAULT] * len(parameters)
    for index in reversed(range(len(parameters))):
        default = given[parameters[index]]
        if default is NO_DEFAULT or not any(same_value(v, default) for v in by_name[parameters[index]]):
            break
        own[index] = default
    defaults[name] = dict(zip(parameters, own))
    calls = [Use(name, tuple(by_name[p][i] for p in parameters), tuple(parameters), tuple(own))
             for i in range(len(bodies))]
    signature = [p if d is NO_DEFAULT else f"{p}={literal_text(d)}" for p, d in zip(parameters, own)]
    return signature, body, calls


def _argument_defaults(term, defaults: dict) -> list:
    """The default of the argument each of the term's values is given as (NO_DEFAULT: none)."""
    if isinstance(term, Seq):
        return [d for step in term.steps for d in _argument_defaults(step, defaults)]
    if isinstance(term, Call):
        return [NO_DEFAULT if f.default is dataclasses.MISSING else f.default
                for f in dataclasses.fields(layer_class(term.layer))]
    if isinstance(term, Use):
        return [defaults.get(term.definition, {}).get(label, NO_DEFAULT) for label in term.labels]
    if isinstance(term, (Group, Repeat)):
        return _argument_defaults(term.body, defaults)
    return [d for b in term.branches for d in _argument_defaults(b, defaults)]


def _derived(label: str, column: tuple, known) -> str | None:
    """`c*4` or `k//2`: the column as an earlier parameter of a related argument times, or
    divided by, a whole constant, in every instance."""
    if not all(type(v) is int for v in column):
        return None
    label = _argument(label)
    for parameter, other, feeds in known:
        if not any(label in kinds and _argument(feeds) in kinds for kinds in RELATED) or \
                not all(type(v) is int and v > 0 for v in other):
            continue
        for factor in range(2, 65):
            if all(v == o * factor for v, o in zip(column, other)):
                return f"{parameter}*{factor}"
        for divisor in range(2, 65):
            if all(v == o // divisor for v, o in zip(column, other)):
                return f"{parameter}//{divisor}"
    return None


def _argument(label: str) -> str:
    """The layer argument a value is given as: a definition's parameter `c2` stands for `out`."""
    base = label.rstrip("0123456789") or label
    return next((field for field, short in PARAMETER_NAMES.items() if short == base), label)


def _parameter_name(label: str, taken: list[str]) -> str:
    base = PARAMETER_NAMES.get(label, label)
    name, number = base, 1
    while name in taken or name.lower() in RESERVED:
        number += 1
        name = f"{base}{number}"
    return name


def _definition_name(cls: str, groups: list[Group], main: list[Group], taken: set) -> str:
    """The class's name for its commonest structure; the others add the names of the parts
    only they have (BottleneckDownsample), or a number."""
    base = cls.lstrip("_") or "Block"
    base = base[0].upper() + base[1:]
    name = base
    if groups is not main:
        theirs = set(_words(main[0].body))
        extra = [w for w in dict.fromkeys(_words(groups[0].body)) if w not in theirs]
        name = base + "".join(w[0].upper() + w[1:] for w in extra) if extra else base + "2"
    number = 1
    while name in taken:
        number += 1
        name = f"{base}{number}"
    taken.add(name)
    return name


def _words(term) -> list[str]:
    """The names a term's structure shows: its steps' `as` names (a group's: its module's)."""
    return as_names(term)


def progressions(body: Seq) -> Seq:
    """A rate that grows with the block's index, as torchvision's stochastic depth does
    (0.1 × block / 17), written so: `CNBlock(96, 0.1*k/17)*3 for k`, `CNBlock(192, 0.1*3/17)`,
    where every value is that arithmetic to the last bit."""
    uses: dict[str, list[Use]] = {}
    for use in uses_in(body):
        uses.setdefault(use.definition, []).append(use)
    rates: dict[int, tuple[int, float, int, int]] = {}  # id(use) -> (column, r, j, n) for r*j/n
    for calls in uses.values():
        for column in range(len(calls[0].values)):
            values = [u.values[column] for u in calls]
            if not all(type(v) is float for v in values) or len(set(values)) < 2:
                continue
            found = _rate(values)
            if found is not None:
                rate, numerators, denominator = found
                rates.update({id(u): (column, rate, j, denominator)
                              for u, j in zip(calls, numerators)})
                break
    return _counted(body, rates) if rates else body


def _rate(values: list[float]) -> tuple[float, list[int], int] | None:
    """(r, [j…], n) with r*j/n == value for every value, the smallest n, where one exists."""
    largest = max(values)
    for denominator in range(1, 257):
        for top in range(denominator, 0, -1):
            rate = round(largest * denominator / top, 4)
            if rate <= 0 or rate * top / denominator != largest:
                continue
            numerators = [round(v * denominator / rate) for v in values]
            if all(rate * j / denominator == v for j, v in zip(numerators, values)):
                return rate, numerators, denominator
    return None


def _counted(seq: Seq, rates: dict) -> Seq:
    """Runs of calls whose rate's numerator counts up by one, as one repeat `for k`."""
    steps = [mapped_inside(step, lambda inner: _counted(inner, rates)) for step in seq.steps]
    out, index = [], 0
    while index < len(steps):
        step = steps[index]
        if id(step) not in rates:
            out.append(step)
            index += 1
            continue
        column, rate, first, denominator = rates[id(step)]
        end = index + 1
        while end < len(steps) and id(steps[end]) in rates and \
                rates[id(steps[end])] == (column, rate, first + end - index, denominator) and \
                _except(steps[end], column) == _except(step, column):
            end += 1
        count = end - index
        if count == 1:
            numerator = str(first)
        else:
            numerator = f"({first} + k)" if first else "k"
        value = Expression(f"{literal_text(rate)}*{numerator}/{denominator}")
        call = dataclasses.replace(step, values=step.values[:column] + (value,)
                                   + step.values[column + 1:])
        out.append(call if count == 1 else Repeat(call, count, "k"))
        index = end
    return Seq(tuple(out))


def _except(use: Use, column: int) -> tuple:
    return (use.definition, use.name, use.values[:column] + use.values[column + 1:])


def with_repeats(seq: Seq, kept: frozenset = frozenset()) -> Seq:
    """Runs of equal steps (or of equal runs of steps) as `X*N`, innermost first. Steps named
    as a numbered series (denselayer1, denselayer2, …) repeat too, unless a name in `kept` is
    read: their copies are numbered alike."""
    steps = [_repeated_inside(step, kept) for step in seq.steps]
    steps = _unnumbered(steps, kept)
    out, index = [], 0
    while index < len(steps):
        best = _tandem(steps, index)
        # [Conv -> ReLU]*2 rather than [ReLU -> Conv]*2 after a Conv: a unit ends with its
        # activation
        if best is None or best[1] > 1 and ends_a_unit(steps[index]) and \
                _tandem(steps, index + 1) is not None and \
                _tandem(steps, index + 1)[1] == best[1]:
            out.append(steps[index])
            index += 1
            continue
        covered, length, copies = best
        unit = steps[index:index + length]
        body = unit[0] if length == 1 and not isinstance(unit[0], Branches) else \
            Group(Seq(tuple(unit)))
        out.append(Repeat(body, copies))
        index += covered
    return Seq(tuple(out))


def _tandem(steps: list, index: int) -> tuple[int, int, int] | None:
    """The longest run of equal units from `index`: (steps covered, unit length, copies)."""
    best = None
    for length in range(1, (len(steps) - index) // 2 + 1):
        unit = steps[index:index + length]
        copies = 1
        while steps[index + copies * length:index + (copies + 1) * length] == unit:
            copies += 1
        if copies >= 2 and (best is None or copies * length > best[0]) and \
                (length > 1 or _repeatable(unit[0])):
            best = (copies * length, length, copies)
    return best


def _repeatable(step) -> bool:
    return not isinstance(step, Repeat) and getattr(step, "name", None) is None


def _repeated_inside(step, kept: frozenset):
    return mapped_inside(step, lambda seq: with_repeats(seq, kept))


def _unnumbered(steps: list, kept: frozenset) -> list:
    """Steps without their names where consecutive equal steps are named stem1, stem2, …"""
    out, index = list(steps), 0
    while index < len(out):
        match = _NUMBERED.fullmatch(getattr(out[index], "name", None) or "")
        end = index + 1
        if match:
            stem, number = match.group(1), int(match.group(2))
            bare = dataclasses.replace(out[index], name=None)
            while end < len(out) and getattr(out[end], "name", None) == \
                    f"{stem}{number + end - index}" and \
                    dataclasses.replace(out[end], name=None) == bare:
                end += 1
            names = {out[i].name for i in range(index, end)}
            if end - index >= 2 and not names & kept:
                out[index:end] = [bare] * (end - index)
        index = end
    return out
