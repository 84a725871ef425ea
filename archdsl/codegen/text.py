"""The written source's words: Python names and attribute paths, expressions (the spec's
arithmetic as Python, checked against values), and the layout of lines within LINE columns."""
from __future__ import annotations

import ast
import functools
import keyword
import re
from pathlib import Path

from ..ir import Name, Operation

LINE = 100
# The public attributes of nn.Sequential (nn.Module's and append, extend, insert, pop), from
# dir() in torch 2.x: a submodule of such a name is reached through _modules, and an
# nn.Sequential refuses it.
MODULE_ATTRIBUTES = frozenset("""
    T_destination add_module append apply bfloat16 buffers call_super_init children compile cpu
    cuda double dump_patches eval extend extra_repr float forward get_buffer get_extra_state
    get_parameter get_submodule half insert ipu load_state_dict modules mtia named_buffers
    named_children named_modules named_parameters parameters pop register_backward_hook
    register_buffer register_forward_hook register_forward_pre_hook register_full_backward_hook
    register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter
    register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
    set_submodule share_memory state_dict to to_empty train training type xpu zero_grad
""".split())
RESERVED = {"self", "x", "nn", "torch", "super", "OrderedDict"}



def collect_operations(value, pool: list):
    if isinstance(value, Operation):
        if value not in pool:
            pool.append(value)
        for operand in value.operands:
            collect_operations(operand, pool)
    elif isinstance(value, tuple):
        for v in value:
            collect_operations(v, pool)


def same_value(a, b) -> bool:
    if isinstance(a, tuple) or isinstance(b, tuple):
        return isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) and \
            all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b and type(a) is type(b)
    return type(a) is type(b) and a == b


def names_in(value) -> set[str]:
    if isinstance(value, Name):
        return {str(value)}
    if isinstance(value, Operation):
        return set().union(*(names_in(v) for v in value.operands))
    if isinstance(value, tuple):
        return set().union(*(names_in(v) for v in value)) if value else set()
    return set()


def renamed(value, renames: dict):
    if isinstance(value, Name):
        return Name(renames.get(str(value), str(value)))
    if isinstance(value, Operation):
        return Operation(value.operator, tuple(renamed(v, renames) for v in value.operands),
                         value.span)
    if isinstance(value, tuple):
        return tuple(renamed(v, renames) for v in value)
    return value


PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2, "neg": 3}


def render(value, params: set[str], outer: int = 0, right: bool = False) -> str:
    if isinstance(value, Name):
        return str(value) if str(value) in params else literal(str(value))
    if isinstance(value, Operation):
        level = PRECEDENCE[value.operator]
        if value.operator == "neg":
            text = "-" + render(value.operands[0], params, level)
        else:
            left, right_operand = value.operands
            text = (f"{render(left, params, level)} {value.operator} "
                    f"{render(right_operand, params, level, right=True)}")
        return f"({text})" if level < outer or (right and level == outer) else text
    if isinstance(value, tuple):
        inner = [render(v, params) for v in value]
        return "(" + ", ".join(inner) + ("," if len(inner) == 1 else "") + ")"
    return literal(value)


def literal(value) -> str:
    """A plain value as Python: strings in double quotes, numbers as repr writes them."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def identifier(word: str, capital: bool = False) -> str:
    parts = [p for p in re.split(r"[^0-9A-Za-z_]+", word) if p]
    text = "_".join(parts) or "block"
    if capital:
        text = "".join(p[:1].upper() + p[1:] for p in text.split("_") if p)
    if text[0].isdigit():
        text = "Block" + text if capital else "_" + text
    return text


def python_name(word: str, taken: set[str]) -> str:
    name = identifier(word)
    while keyword.iskeyword(name) or name in taken:
        name += "_"
    return name


def plain_attribute(name: str) -> bool:
    """A name a submodule can have as an attribute (and in an nn.Sequential)."""
    return name.isidentifier() and not keyword.iskeyword(name) and \
        name not in MODULE_ATTRIBUTES


def attribute(owner: str, path: str) -> str:
    text = owner
    for part in path.split("."):
        if plain_attribute(part):
            text += "." + part
        else:
            text += f'._modules["{part}"]'
    return text


def one_line(tree) -> str:
    if isinstance(tree, str):
        return tree
    head, items, tail = tree
    return head + ", ".join(one_line(i) for i in items) + tail


def layout(prefix: str, tree, comment: str, suffix: str = "") -> list[str]:
    """`prefix` + the constructor or expression + `suffix`, with `# comment`, within LINE
    columns: on one line where it fits (the comment above it where only the code does), else
    broken after its first parenthesis, its arguments on one line, else one a line."""
    indent = len(prefix) - len(prefix.lstrip())
    note = f"  # {comment}" if comment else ""
    above = [" " * indent + f"# {comment}"] if comment else []
    if not isinstance(tree, str) and tree[0] == SEQUENTIAL:
        return sequential_lines(prefix, tree, comment, indent, suffix)
    flat = prefix + one_line(tree) + suffix
    if len(flat) + len(note) <= LINE:
        return [flat + note]
    if len(flat) <= LINE:
        return above + [flat]
    inner = " " * (indent + 4)
    if isinstance(tree, str):
        cut = tree.find("(")
        if cut < 0:
            return above + [flat]
        head, rest = tree[:cut + 1], tree[cut + 1:]
        if len(inner + rest + suffix) + len(note) <= LINE:
            return [prefix + head, inner + rest + suffix + note]
        return above + [prefix + head, inner + rest + suffix]
    head, items, tail = tree
    flat_items = [one_line(i) for i in items]
    joined = inner + ", ".join(flat_items) + tail + suffix
    if len(joined) + len(note) <= LINE:
        return [prefix + head, joined + note]
    if len(joined) <= LINE:
        return above + [prefix + head, joined]
    lines = [prefix + head]
    for k, item in enumerate(flat_items):
        lines.append(inner + item + (tail + suffix if k == len(flat_items) - 1 else ","))
    return above + lines


SEQUENTIAL = "nn.Sequential(OrderedDict(["


def sequential_lines(prefix: str, tree, comment: str, indent: int, end: str = "") -> list[str]:
    """An nn.Sequential of an OrderedDict: one entry a line, each with its shape."""
    head, entries, tail = tree
    lines = [prefix + head]
    inner = " " * (indent + 4)
    for entry_head, entry, entry_tail, entry_comment in entries:
        lines += layout(inner + entry_head, entry, entry_comment, entry_tail + ",")
    lines.append(" " * indent + tail + end)
    return lines


MODULES = Path(__file__).parent.parent / "layers" / "modules.py"


@functools.cache
def helper_sources() -> dict[str, str]:
    """The classes of layers/modules.py, the modules PyTorch lacks, by name, as source: what an
    exported file copies (read as text: writing a file imports no torch)."""
    text = MODULES.read_text()
    return {node.name: ast.get_source_segment(text, node) for node in ast.parse(text).body
            if isinstance(node, ast.ClassDef)}
