"""`archdsl fmt`: a spec in canonical layout, printed from its parse tree.

The layout: declarations first, in a fixed order (input, train, assertions, definitions; each
kind in the order written), then the network, its first step on one line and every further
step on its own line after `  -> `. Inside a step, canonical spacing: `Conv(16, 3, p=1)`,
`[a] + [b]`, `[a] * [b]`, `c*4 + 1`, `Block*3 for k`, a call or definition without arguments
bare (`ReLU`, `def Head = [...]`). A definition stays on one line
when it fits in WIDTH columns; otherwise its steps go one per line, aligned after its `[`, and
so on inside the groups of a step still too long (see _layout).

What is written is kept: numbers, words, strings and keyword aliases (`k=3`, `3e-3`, `'same'`)
appear as in the source; parentheses only where the arithmetic needs them. Comments are kept
too, attached to the top-level item (declaration, definition or step of the network) they
follow on the same line, or else to the item after them; a comment inside a step or definition
that spans several lines moves above it.
"""
from __future__ import annotations

import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from lark import Token, Tree

from .errors import RunError
from .files import replace_file
from .parser import _parser, lone_cr_as_lf, parse

WIDTH = 100
CONTINUATION = "  -> "

# Comments, skipping strings: in text that parses, a '#' outside a string starts a comment.
_COMMENT = re.compile(r"\"[^\"\n]*\"|'[^'\n]*'|#[^\n]*")

# Arithmetic precedence: higher binds tighter.
_LEVEL = {"add": 1, "subtract": 1, "multiply": 2, "floordiv": 2, "divide": 2, "negate": 3}
_OPERATOR = {"add": " + ", "subtract": " - ", "multiply": "*", "floordiv": "//", "divide": "/"}
_DECLARATIONS = ("input_decl", "train_decl", "assert_decl", "definition")


def format_spec(text: str, filename: str = "<spec>") -> str:
    """The canonical form of spec text, ending in one newline. Bad input raises the same
    ArchDSLError as parse(); the result parses to a spec that analyzes identically."""
    parse(text, filename)  # every error, with its position, as check reports it
    text = lone_cr_as_lf(text)
    source = " " + text[1:] if text.startswith("\ufeff") else text
    tree = _parser().parse(source)
    *declarations, chain = tree.children
    steps = list(chain.children)
    items = [_Item(t) for t in declarations] + [_Item(t, step=True) for t in steps]
    trailing_end = _attach_comments(source, items)

    lines: list[str] = []
    ordered = sorted((i for i in items if not i.step),
                     key=lambda i: _DECLARATIONS.index(i.tree.data))
    for item in ordered:
        lines += item.before
        lines += _with_trailing(_declaration(item.tree), item.trailing)
    for index, item in enumerate(i for i in items if i.step):
        indent = "" if index == 0 else "  "
        lines += [indent + comment for comment in item.before]
        lead = "" if index == 0 else CONTINUATION
        layout = _layout(item.tree, len(lead))
        lines += _with_trailing([lead + layout[0], *layout[1:]], item.trailing)
    lines += trailing_end
    return "\n".join(lines) + "\n"


def in_file_style(formatted: str, original: str) -> str:
    """The canonical text in the original's own style: its byte-order mark, if it has one, and
    its Windows line endings where every line ends so. `fmt --check` compares this with the file,
    and `fmt --write` writes it: only the layout is fmt's business."""
    if "\n" in original and original.count("\r\n") == original.count("\n"):
        formatted = formatted.replace("\n", "\r\n")
    return "\ufeff" + formatted if original.startswith("\ufeff") else formatted


def write_atomically(path: Path, text: str) -> None:
    """Replace a file's text through a fresh temporary file and a rename, keeping its
    permissions: an interrupted write never leaves half a spec. A link at `path` is followed, so
    it stays a link; nothing planted beside the spec is written through."""
    target = path.resolve()
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except OSError as error:  # removed, or a dangling link, since it was read
        raise RunError(f"cannot write {path}: {error.strerror or error}") from None
    replace_file(target, lambda handle: handle.write(text.encode("utf-8")), mode)


@dataclass
class _Item:
    tree: Tree
    step: bool = False
    before: list[str] = field(default_factory=list)
    trailing: str | None = None


def _attach_comments(source: str, items: list[_Item]) -> list[str]:
    """Give each comment to an item; return the comments after the last item."""
    end: list[str] = []
    for match in _COMMENT.finditer(source):
        if not match.group().startswith("#"):
            continue
        comment, offset = match.group().rstrip(), match.start()
        line = source.count("\n", 0, offset) + 1
        line_start = source.rfind("\n", 0, offset) + 1
        own_line = not source[line_start:offset].strip()
        inside = next((i for i in items if i.tree.meta.start_pos < offset < i.tree.meta.end_pos),
                      None)
        if inside is not None:
            inside.before.append(comment)
            continue
        if not own_line:
            ended = [i for i in items if i.tree.meta.end_pos <= offset
                     and i.tree.meta.end_line == line]
            if ended:
                last = max(ended, key=lambda i: i.tree.meta.end_pos)
                if last.trailing is None:
                    last.trailing = comment
                    continue
        following = [i for i in items if i.tree.meta.start_pos > offset]
        if following:
            min(following, key=lambda i: i.tree.meta.start_pos).before.append(comment)
        else:
            end.append(comment)
    return end


def _with_trailing(lines: list[str], comment: str | None) -> list[str]:
    if comment is not None:
        lines[-1] += "  " + comment
    return lines


def _declaration(tree: Tree) -> list[str]:
    kind = tree.data
    if kind == "input_decl":
        return [f"input {tree.children[0]}"]
    if kind == "train_decl":
        return [f"train({_arguments(tree.children)})"]
    if kind == "assert_decl":
        metric, comparator, bound = tree.children
        return [f"assert {metric} {comparator} {bound}"]
    name, *parameters, group = tree.children
    signature = f"({', '.join(_parameter(p) for p in parameters)})" if parameters else ""
    head = f"def {name}{signature} = "
    layout = _layout(group, len(head))
    return [head + layout[0], *layout[1:]]


def _layout(tree: Tree, column: int, reserve: int = 0) -> list[str]:
    """A step starting at `column`, as lines, leaving `reserve` columns after it (the brackets
    that close around it): on one line where it fits in WIDTH, else a group's steps one per
    line, aligned after its '[', and the same inside each operand of a branch step or the body
    of a repeat, so that no line that can be broken grows past WIDTH; an operand after one
    that broke, or one that would pass WIDTH where it stands, starts its own line, under the
    first operand, after its operator (`| [...]`). Later lines carry their own indentation."""
    flat = _step(tree)
    if column + len(flat) + reserve <= WIDTH or tree.data == "call":
        return [flat]
    if tree.data == "group":
        inner, lines, steps = column + 1, [], tree.children[0].children
        for index, step in enumerate(steps):
            lead = "[" if index == 0 else " " * inner + "-> "
            last = index == len(steps) - 1
            layout = _layout(step, inner + (3 if index else 0), reserve + 1 if last else 0)
            lines += [lead + layout[0], *layout[1:]]
        lines[-1] += "]"
        return lines
    if tree.data in ("repeat", "named"):
        suffix = flat[len(_step(tree.children[0])):]  # `*3 for k`, ` as name`
        lines = _layout(tree.children[0], column, reserve + len(suffix))
        lines[-1] += suffix
        return lines
    operator = {"sum": " + ", "concat": " | ", "product": " * "}[tree.data]
    lines, operands = [""], tree.children
    for index, operand in enumerate(operands):
        last = index == len(operands) - 1
        room = reserve if last else len(operator) + 1
        own_line = " " * column + operator.lstrip()
        if index and len(lines) > 1:  # after an operand that broke, each starts its own line
            lines.append(own_line)
            layout = _layout(operand, len(own_line), room)
        else:
            lines[-1] += operator if index else ""
            at = column + len(lines[-1]) if len(lines) == 1 else len(lines[-1])
            layout = _layout(operand, at, room)
            if index and _widest(layout, at) > WIDTH:  # too far right: start a line of its own
                below = _layout(operand, len(own_line), room)
                if _widest(below, len(own_line)) < _widest(layout, at):
                    lines[-1] = lines[-1][:-len(operator)]
                    lines.append(own_line)
                    layout = below
        lines[-1] += layout[0]
        lines += layout[1:]
    return lines


def _widest(layout: list[str], column: int) -> int:
    """The widest line of a layout whose first line starts at `column`."""
    return max([column + len(layout[0]), *(len(line) for line in layout[1:])])


def _parameter(tree: Tree) -> str:
    name, *default = tree.children
    return f"{name}={_value(default[0])}" if default else str(name)


def _step(tree: Tree) -> str:
    kind = tree.data
    if kind == "call":
        name, *arguments = tree.children
        return f"{name}({_arguments(arguments)})" if arguments else str(name)
    if kind == "group":
        return "[" + " -> ".join(_step(s) for s in tree.children[0].children) + "]"
    if kind == "repeat":
        body, count, *index = tree.children
        return f"{_step(body)}*{count.children[0]}" + "".join(f" for {i}" for i in index)
    if kind == "named":
        body, name = tree.children
        return f"{_step(body)} as {name}"
    if kind == "sum":
        return " + ".join(_step(t) for t in tree.children)
    if kind == "concat":
        return " | ".join(_step(t) for t in tree.children)
    if kind == "product":
        return " * ".join(_step(t) for t in tree.children)
    raise AssertionError(f"unknown step {kind}")


def _arguments(arguments) -> str:
    parts = []
    for argument in arguments:
        if argument.data == "keyword":
            keyword, value = argument.children
            parts.append(f"{keyword}={_value(value)}")
        else:
            parts.append(_value(argument.children[0]))
    return ", ".join(parts)


def _value(tree) -> str:
    if isinstance(tree, Token):
        return str(tree)
    kind = tree.data
    if kind in ("integer", "real", "symbol", "string"):
        return str(tree.children[0])
    if kind == "tuple":
        return "(" + ", ".join(_value(v) for v in tree.children) + ")"
    if kind == "negate":
        return "-" + _operand(tree.children[1], _LEVEL["negate"], right=False)
    left, right = tree.children[0], tree.children[-1]  # subtract has its MINUS between
    level = _LEVEL[kind]
    return _operand(left, level, right=False) + _OPERATOR[kind] + _operand(right, level,
                                                                           right=True)


def _operand(tree, level: int, right: bool) -> str:
    """An operand, in parentheses where it binds less tightly than its operator (or as tightly,
    on the right: a - (b - c), a*(b//c))."""
    inner = _LEVEL.get(tree.data, 4) if isinstance(tree, Tree) else 4
    text = _value(tree)
    return f"({text})" if inner < level or (right and inner == level) else text
