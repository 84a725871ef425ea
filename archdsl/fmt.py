"""`archdsl fmt`: a spec in canonical layout, printed from its parse tree.

The layout: declarations first, in a fixed order (input, train, assertions, definitions; each
kind in the order written), then the network. Line breaks between the steps of a chain (the
network's, or a group's) are the writer's: fmt keeps them, as gofmt does, continuing the network
with `  -> ` and a group aligned after its `[`. Only a line longer than WIDTH columns is broken
further: its steps one per line, and so on inside the groups of a step still too long (see
_layout). Inside a step, canonical spacing: `Conv(16, 3, p=1)`, `[a] + [b]`, `[a] * [b]`,
`c*4 + 1`, `Block*3 for k`, a call or definition without arguments bare (`ReLU`,
`def Head = [...]`).

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
    lines += _network([i for i in items if i.step])
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


def _network(items: list[_Item]) -> list[str]:
    """The network's steps, on the lines the writer gave them; a line too long for WIDTH, or
    holding a step broken over lines, one step per line. Comments stay with their steps."""
    lines: list[str] = []
    for index, run in enumerate(_source_runs(items, lambda i: i.tree)):
        lead = "" if index == 0 else CONTINUATION
        indent = "" if index == 0 else "  "
        flat = " -> ".join(_step(i.tree) for i in run)
        if len(lead + flat) <= WIDTH and not any(_broken(i.tree) for i in run):
            lines += [indent + comment for item in run for comment in item.before]
            lines += _with_trailing([lead + flat], run[-1].trailing)
            continue
        for position, item in enumerate(run):
            lead = CONTINUATION if index or position else ""
            lines += [("  " if lead else "") + comment for comment in item.before]
            layout = _layout(item.tree, len(lead))
            lines += _with_trailing([lead + layout[0], *layout[1:]], item.trailing)
    return lines


def _source_runs(steps: list, tree_of=lambda step: step) -> list[list]:
    """The steps of a chain in runs, one per line of the source: a new run where a step starts
    on a later line than the one before it ends."""
    runs: list[list] = []
    for step in steps:
        if runs and tree_of(step).meta.line <= tree_of(runs[-1][-1]).meta.end_line:
            runs[-1].append(step)
        else:
            runs.append([step])
    return runs


_STEPS = ("call", "group", "repeat", "named", "sum", "concat", "product")


def _broken(tree: Tree) -> bool:
    """Whether the writer broke a chain inside this step over several lines (breaks inside an
    argument list do not count: fmt writes calls on one line)."""
    if tree.data == "call":
        return False
    if tree.data == "group":
        steps = tree.children[0].children
        return len(_source_runs(steps)) > 1 or any(_broken(step) for step in steps)
    return any(_broken(child) for child in tree.children
               if isinstance(child, Tree) and child.data in _STEPS)


def _chain(steps: list, column: int, reserve: int) -> list[str]:
    """A group's steps from `column`, the first line without its indentation, later ones with:
    each source line kept where it fits in WIDTH (with `reserve` columns after the last), else
    one step per line."""
    runs = _source_runs(steps)
    continuation = " " * column + "-> "
    lines: list[str] = []
    for index, run in enumerate(runs):
        lead, at = ("", column) if index == 0 else (continuation, len(continuation))
        last_run = index == len(runs) - 1
        flat = " -> ".join(_step(step) for step in run)
        if at + len(flat) + (reserve if last_run else 0) <= WIDTH and \
                not any(_broken(step) for step in run):
            lines.append(lead + flat)
            continue
        for position, step in enumerate(run):
            if position:
                lead, at = continuation, len(continuation)
            last = last_run and position == len(run) - 1
            layout = _layout(step, at, reserve if last else 0)
            lines += [lead + layout[0], *layout[1:]]
    return lines


def _with_trailing(lines: list[str], comment: str | None) -> list[str]:
    if comment is not None:
        lines[-1] += "  " + comment
    return lines


def _declaration(tree: Tree) -> list[str]:
    kind = tree.data
    if kind == "input_decl":
        return [f"input {tree.children[0]}"]
    if kind == "train_decl":
        return _wrapped("train(", [_arguments([a]) for a in tree.children], ")")
    if kind == "assert_decl":
        metric, comparator, bound = tree.children
        return [f"assert {metric} {comparator} {bound}"]
    name, *parameters, group = tree.children
    signature = f"({', '.join(_parameter(p) for p in parameters)})" if parameters else ""
    head = f"def {name}{signature} = "
    layout = _layout(group, len(head))
    return [head + layout[0], *layout[1:]]


def _wrapped(head: str, parts: list[str], tail: str) -> list[str]:
    """`head` + parts joined by commas + `tail`, filling lines of WIDTH, later lines aligned
    after `head` (a long train(...) block)."""
    lines = [head]
    for index, part in enumerate(parts):
        piece = part + ("," if index < len(parts) - 1 else tail)
        if index and len(lines[-1]) + 1 + len(piece) > WIDTH:
            lines[-1] = lines[-1].rstrip()
            lines.append(" " * len(head))
        lines[-1] += piece + " "
    lines[-1] = lines[-1].rstrip()
    return lines if parts else [head + tail]


def _layout(tree: Tree, column: int, reserve: int = 0) -> list[str]:
    """A step starting at `column`, as lines, leaving `reserve` columns after it (the brackets
    that close around it): on one line where it fits in WIDTH and the writer did not break it,
    else a group's steps on the writer's lines aligned after its '[' (one per line where a line
    is too long), and the same inside each operand of a branch step or the body of a repeat, so
    that no line that can be broken grows past WIDTH; an operand of a branch step that would
    pass WIDTH where it stands, or break there after an operand that broke, starts its own
    line, under the first operand, after its operator (`| [...]`). Later lines carry their own
    indentation."""
    flat = _step(tree)
    if (column + len(flat) + reserve <= WIDTH and not _broken(tree)) or tree.data == "call":
        return [flat]
    if tree.data == "group":
        lines = _chain(tree.children[0].children, column + 1, reserve + 1)
        lines[0] = "[" + lines[0]
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
        lines[-1] += operator if index else ""
        at = column + len(lines[-1]) if len(lines) == 1 else len(lines[-1])
        layout = _layout(operand, at, room)
        if index and (_widest(layout, at) > WIDTH or len(lines) > 1 and len(layout) > 1):
            # too far right, or broken to fit after an operand that broke: a line of its own
            # always, not only where it is narrower: formatting the result again must make
            # the same choice, and the operand's breaks then are those written here
            lines[-1] = lines[-1][:-len(operator)]
            lines.append(own_line)
            layout = _layout(operand, len(own_line), room)
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
