"""The spec writer's text: its terms as spec source, laid out as a person writes it (fmt keeps
the writer's line breaks), and without the `as` names lowering gives the rows anyway."""
from __future__ import annotations

import dataclasses

from ..fmt import WIDTH
from ..layers import layer_class
from ..layers.arguments import ALIASES
from ..lowering import lower
from ..parser import parse
from .terms import (NO_DEFAULT, Branches, Call, Expression, Group, Repeat, Seq, Use, as_names,
                    groups_in, mapped_inside)

_SHORT = {long: short for short, long in ALIASES.items()}  # kernel -> k


def spec_text(header: list[str], definitions, body: Seq) -> str:
    """The spec with its line breaks where a person puts them (fmt keeps the writer's): a
    definition filled up to the width, broken after an activation or a pooling where it can
    be; the network's groups and branches each on a line of their own, the layers between them
    filled the same way."""
    lines = list(header)
    for name, parameters, seq in definitions:
        signature = f"({', '.join(parameters)})" if parameters else ""
        head = f"def {name}{signature} = ["
        lines.append(head + _laid_out(seq, len(head), len(head) + 3, alone=False) + "]")
    lines.append(_laid_out(body, 0, len("  -> "), alone=True))
    return "\n".join(lines) + "\n"


def _laid_out(seq: Seq, first: int, later: int, alone: bool) -> str:
    """The chain's steps in lines of at most WIDTH columns, the first starting at column
    `first`, the others at `later` after their `-> `."""
    lines: list[list[tuple[str, bool]]] = [[]]
    for step in seq.steps:
        text = _step(step)
        natural = ends_a_unit(step)
        own = alone and (isinstance(step, (Branches, Group)) or text.startswith("[")
                         or bool(getattr(step, "name", None)))  # a module's, on its own line
        line = lines[-1]
        start = later if len(lines) > 1 else first
        if own and start + len(text) > WIDTH and isinstance(step, Group) and \
                text.startswith("["):  # its own steps in lines, aligned after its '['
            column = start if not line else later
            text = _named("[" + _laid_out(step.body, column + 1, column + 4, alone=False)
                          + "]", step.name)
        if own or (line and line[-1][1] is None):
            lines.append([(text, None if own else natural)]) if line else line.append(
                (text, None if own else natural))
            continue
        if line and start + len(" -> ".join(t for t, _ in line + [(text, natural)])) + 1 > WIDTH:
            cut = max((i for i, (_, n) in enumerate(line[:-1]) if n), default=None)
            if cut is None:
                lines.append([(text, natural)])
            else:
                lines[-1], rest = line[:cut + 1], line[cut + 1:]
                lines.append(rest + [(text, natural)])
            continue
        line.append((text, natural))
    return f"\n{' ' * (later - 3)}-> ".join(" -> ".join(t for t, _ in line)
                                             for line in lines if line)


def without_needless_names(header: list[str], definitions, body: Seq, read: frozenset):
    """The spec without the `as` names of calls that lowering gives the rows anyway (`as
    cnblock1` on the first of eighteen CNBlock calls); groups keep their modules' names. The
    names that no merge reads are dropped together, and those that renamed a row are brought
    back, one at a time, until every row has its name again."""
    def rows(names: frozenset) -> list[str]:
        dropped = [(n, p, _unnamed(seq, names)) for n, p, seq in definitions]
        return [node.name for node in lower(parse(spec_text(header, dropped,
                                                           _unnamed(body, names))))]

    wanted = rows(frozenset())
    names = frozenset(name for _, _, seq in definitions for name in as_names(seq)) | \
        frozenset(as_names(body))
    names -= read | set(_group_names(body)) | {n for _, _, seq in definitions
                                               for n in _group_names(seq)}
    while names:
        found = rows(names)
        if found == wanted:
            break
        index = next(i for i, (a, b) in enumerate(zip(wanted, found)) if a != b)
        parts = [a for a, b in zip(wanted[index].split("."), found[index].split(".")) if a != b]
        culprit = next((part for part in parts if part in names), None)
        if culprit is None:  # not a name we dropped: keep them all
            return definitions, body
        names -= {culprit}
    return ([(n, p, _unnamed(seq, names)) for n, p, seq in definitions],
            _unnamed(body, names))


def _group_names(term) -> list[str]:
    """The names of groups, which are their modules' (layer1): kept, for repeats to keep."""
    return [g.name for g in groups_in(term) if g.name]


def _unnamed(term, names: frozenset):
    """The term without the `as` names in `names`."""
    if isinstance(term, Seq):
        return Seq(tuple(_unnamed(step, names) for step in term.steps))
    if isinstance(term, Repeat):
        return dataclasses.replace(term, body=_unnamed(term.body, names))
    if getattr(term, "name", None) in names:
        term = dataclasses.replace(term, name=None)
    return mapped_inside(term, lambda seq: _unnamed(seq, names))


def _chain(seq: Seq) -> str:
    return " -> ".join(_step(step) for step in seq.steps)


def _step(term) -> str:
    if isinstance(term, Call):
        return _named(_call(term), term.name)
    if isinstance(term, Use):
        arguments = ", ".join(_use_arguments(term))
        return _named(f"{term.definition}({arguments})" if arguments else term.definition,
                      term.name)
    if isinstance(term, Group):
        only = term.body.steps[0] if len(term.body.steps) == 1 else None
        if isinstance(only, Repeat):  # `Block*3 as layer1`: the copies form one scope still
            return _named(_step(only), term.name)
        if isinstance(only, (Call, Use)) and not only.name:  # its rows' names stay apart
            # [Block(64)] as block1 is Block(64) as block1; [Conv(8, 1)] is Conv(8, 1)
            return _step(dataclasses.replace(only, name=term.name) if term.name else only)
        return _named(f"[{_chain(term.body)}]", term.name)
    if isinstance(term, Branches):
        operator = layer_class(term.merge)._operator
        branches = term.branches
        if operator == "*" and len(branches) == 2 and not branches[1].steps:
            branches = branches[::-1]  # Identity * [gate]: the same product, exactly
        operands = [_operand(b) for b in branches]
        if operator == "*":  # a `*` before anything but `[` repeats
            operands[1:] = [o if o.startswith("[") else f"[{o}]" for o in operands[1:]]
        text = f" {operator} ".join(operands)
        return f"[{text}] as {term.name}" if term.name else text
    if isinstance(term, Repeat):
        index = f" for {term.index}" if term.index else ""
        return f"{_step(term.body)}*{term.count}{index}"
    raise AssertionError(term)


def _use_arguments(use: Use) -> list[str]:
    """By position, until one is left at its default; by keyword after that."""
    parts, keywords = [], False
    defaults = use.defaults or (NO_DEFAULT,) * len(use.values)
    for label, value, default in zip(use.labels, use.values, defaults):
        if default is not NO_DEFAULT and not isinstance(value, Expression) and \
                same_value(value, default):
            keywords = True
            continue
        parts.append(f"{label}={literal_text(value)}" if keywords else literal_text(value))
    return parts


def _operand(seq: Seq) -> str:
    if not seq.steps:
        return "Identity"
    if len(seq.steps) == 1 and not isinstance(seq.steps[0], Branches):
        return _step(seq.steps[0])
    return f"[{_chain(seq)}]"


def _named(text: str, name: str | None) -> str:
    return f"{text} as {name}" if name else text


def _call(call: Call) -> str:
    """A layer call as a person writes it: required arguments by position, the others by their
    short keyword where they differ from the default; a layer whose arguments are all optional
    takes its first by position (Dropout(0.2))."""
    cls = layer_class(call.layer)
    fields = dataclasses.fields(cls)
    positional = [f for f in fields if not f.kw_only]
    required = any(f.default is dataclasses.MISSING for f in fields)
    parts = []
    for f, value in zip(fields, call.values):
        if f.default is dataclasses.MISSING:
            parts.append(literal_text(value))
        elif isinstance(value, Expression) or not same_value(value, f.default):
            if not required and positional and f is positional[0]:
                parts.append(literal_text(value))
            else:
                short = _SHORT.get(f.name)
                keyword = short if short and short not in {g.name for g in fields} else f.name
                parts.append(f"{keyword}={literal_text(value)}")
    return f"{call.layer}({', '.join(parts)})" if parts else call.layer


def same_value(value, default) -> bool:
    return type(value) is type(default) and value == default


def literal_text(value) -> str:
    if isinstance(value, Expression):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, tuple):
        inner = ", ".join(literal_text(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


def ends_a_unit(step) -> bool:
    """An activation or a pooling: where a person ends a line, or a repeated unit."""
    return isinstance(step, Call) and layer_class(step.layer).kind in ("activation", "pool")
