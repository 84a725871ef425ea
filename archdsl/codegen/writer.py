"""The file: imports, the helper modules PyTorch lacks (copied from layers/modules.py), each
class with its __init__ and forward, every line with its output shape."""
from __future__ import annotations

import re
from pathlib import Path

from ..analysis import Analysis
from .classes import Classes, WrittenClass, class_references
from .text import (RESERVED, helper_sources, SEQUENTIAL, attribute, layout, literal, names_in, one_line,
                   python_name, render, same_value)

HELPERS = "archdsl.layers.modules"


def python_source(analysis: Analysis, class_name: str | None = None) -> str:
    """The spec as one Python file that imports only torch (and torchvision's StochasticDepth
    where the spec uses it)."""
    return Writer(analysis, class_name or default_class_name(analysis.name)).source()


def default_class_name(filename: str) -> str:
    """`specs/simple_cnn.spec` -> SimpleCnn."""
    path = Path(filename) if filename and not filename.startswith("<") else Path("network")
    # a run's spec.spec is named after its run directory
    stem = path.parent.name if path.name == "spec.spec" and path.parent.name else path.stem
    words = [w for w in re.split(r"[^0-9A-Za-z]+", stem) if w]
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Network"
    return name if name[0].isalpha() else "Network" + name


# ---------------------------------------------------------------------------------------------
# The scope tree


class Writer(Classes):
    # -- writing -------------------------------------------------------------------------------

    def source(self) -> str:
        root_body = self._describe(self.root)
        top = self._parameterise_root(root_body)
        blocks = []
        written = []
        for classes in self.classes.values():
            written += classes
        ordered = self._order_classes(written)
        class_texts = [self._class_text(k) for k in ordered]
        class_texts.append(self._class_text(top, top=True))
        helpers = self._helpers()
        imports = []
        text = "\n\n\n".join(helpers + class_texts)
        if "OrderedDict(" in text:
            imports.append("from collections import OrderedDict")
            imports.append("")
        if re.search(r"\btorch\.", text):
            imports.append("import torch")
        imports.append("from torch import nn")
        if "torchvision.ops:StochasticDepth" in self.uses:
            imports.append("from torchvision.ops import StochasticDepth")
        docstring = f'"""{self._spec_name()} as PyTorch code, written by archdsl export."""'
        blocks = [docstring + "\n" + "\n".join(imports)] + [text]
        return "\n\n\n".join(blocks) + "\n"

    def _spec_name(self) -> str:
        """The spec's file name; `The spec` for one without a file (standard input)."""
        name = self.analysis.name
        return "The spec" if not name or name.startswith("<") else Path(name).name

    def _order_classes(self, classes: list[WrittenClass]) -> list[WrittenClass]:
        """Each class after the classes it builds."""
        by_name = {k.name: k for k in classes}
        done, ordered = set(), []

        def visit(klass):
            if klass.name in done:
                return
            done.add(klass.name)
            for dependency in class_references(klass.bodies[0].units):
                if dependency in by_name:
                    visit(by_name[dependency])
            ordered.append(klass)

        for klass in classes:
            visit(klass)
        return ordered

    def _helpers(self) -> list[str]:
        wanted = [c.split(":")[1] for c in sorted(self.uses) if c.startswith(HELPERS + ":")]
        if not wanted:
            return []
        return [helper_sources()[name] for name in wanted]

    def _definition_header(self, klass: WrittenClass) -> str | None:
        """`def Body(c, s)` of the spec, for a definition's class."""
        record = klass.bodies[0].tree.record
        if record is None:
            return None
        if record.kind != "definition":
            return None
        definition = self.definitions.get(record.source)
        if definition is None:
            return None
        words = {p.name for p in definition.parameters}
        params = ", ".join(p.name + (f"={render(p.default, words)}" if p.has_default else "")
                           for p in definition.parameters)
        if not params:
            return f"The spec's def {definition.name}."
        # parameters the class does without: the same in all its instances (a repeat count)
        fixed = [f"{k}={literal(v)}" for k, v in klass.bodies[0].env.items()
                 if k not in klass.keys and isinstance(v, (int, float))
                 and all(same_value(b.env.get(k), v) for b in klass.bodies)]
        for_which = f" with {', '.join(fixed)}" if fixed and len(
            self.classes.get(("definition", definition.name), [])) > 1 else ""
        return f"The spec's def {definition.name}({params}){for_which}."

    def _class_text(self, klass: WrittenClass, top: bool = False) -> str:
        body = klass.bodies[0]
        writer = _ClassWriter(self, klass)
        lines = [f"class {klass.name}(nn.Module):"]
        header = self._definition_header(klass)
        if header:
            lines += [f'    """{header}"""', ""]
        if top:
            shape = "×".join(map(str, self.analysis.input))
            lines.append(f'    """{self._spec_name()}: input N×{shape}, output '
                         f'N×{"×".join(map(str, self.analysis.output))}."""')
            lines.append("")
        params = "".join(", " + p + (f"={literal(klass.defaults[p])}" if p in klass.defaults
                                     else "") for p in klass.params)
        lines.append(f"    def __init__(self{params}):")
        lines.append("        super().__init__()")
        lines += writer.init_lines()
        lines.append("")
        externals = ["x"] + [python_name("skip" if len(body.externals) == 2 else f"skip{k}",
                                          set(klass.params) | RESERVED)
                             for k in range(1, len(body.externals))]
        lines.append(f"    def forward(self, {', '.join(externals)}):")
        lines += writer.forward_lines(externals)
        return "\n".join(lines)


class _ClassWriter:
    """Writes one class's __init__ and forward from its first instance and its expressions."""

    def __init__(self, writer: Writer, klass: WrittenClass):
        self.writer, self.klass = writer, klass
        self.body = klass.bodies[0]
        self.slot = 0

    def expression(self) -> str:
        value = self.klass.expressions[self.slot]
        self.slot += 1
        return render(value, set(self.klass.params))

    def shape(self, ref: str) -> str:
        shapes = [b.shapes.get(ref) for b in self.klass.bodies]
        if any(s is None for s in shapes):
            return ""
        first = shapes[0]
        if all(s == first for s in shapes):
            return "×".join(map(str, first))
        inputs = [b.shapes["@0"] for b in self.klass.bodies]
        parts = []
        for axis in range(len(first)):
            values = [s[axis] if axis < len(s) else None for s in shapes]
            if len(set(values)) == 1:
                parts.append(str(values[0]))
            elif axis == 0:
                channels = self.klass.channels.get(ref)
                text = render(channels, set(self.klass.params)) if channels is not None and \
                    names_in(channels) <= set(self.klass.params) else "C"
                text = text.replace(" ", "")
                parts.append(f"({text})" if "+" in text or "-" in text else text)
            else:
                parts.append(_spatial(values, inputs, axis, len(first), self.klass))
        return "×".join(parts)

    def init_lines(self) -> list[str]:
        """A line per module, in the compiled network's order (so its state_dict's order); a
        container just before the first module inside it."""
        lines, made = [], set()
        for name, kind, detail, _ in self.body.units:
            if detail[0] == "expression":
                continue
            for container in self.body.containers:
                if name.startswith(container + ".") and container not in made:
                    made.add(container)
                    lines.append(f"        {attribute('self', container)} = nn.Module()")
            target = attribute("self", name)
            comment = self.shape(name)
            lines += layout(f"        {target} = ", self.module(detail, name, 8), comment)
            if detail[0] == "call" and detail[2]:
                lines.append(f"        {target}.requires_grad_(False)  # frozen")
        return lines

    def module(self, detail, name: str, indent: int):
        """The constructor as a layout tree: (head, [arguments], tail) or text."""
        if detail[0] == "call":
            return self.call(detail[1])
        if detail[0] == "class":
            klass = self.class_named(detail[1])
            arguments = [self.expression() for _ in klass.params]
            while arguments and klass.params[len(arguments) - 1] in klass.defaults and \
                    arguments[-1] == literal(klass.defaults[klass.params[len(arguments) - 1]]):
                arguments.pop()  # as the spec leaves it out
            return (f"{klass.name}(", arguments, ")")
        entries = []
        for inner_name, _, inner_detail, _ in detail[1]:
            entry = self.module(inner_detail, inner_name, indent + 4)
            key = inner_name[len(name) + 1:]
            entries.append((f'("{key}", ', entry, ")", self.shape(inner_name)))
        return (SEQUENTIAL, entries, "]))")

    def class_named(self, name: str) -> WrittenClass:
        for classes in self.writer.classes.values():
            for klass in classes:
                if klass.name == name:
                    return klass
        raise KeyError(name)

    def call(self, signature) -> tuple:
        constructor, positional, defaults, arguments = signature
        module, _, name = constructor.partition(":")
        head = f"nn.{name}(" if module == "torch.nn" else f"{name}("
        defaults = dict(defaults)
        parts, by_position = [], True
        for index, (key, value) in enumerate(arguments):
            text = self.value(value)
            if key in defaults and text == render(defaults[key], set()):
                by_position = False
                continue
            if index < positional and by_position:
                parts.append(text)
            else:
                by_position = False
                parts.append(f"{key}={text}")
        return (head, parts, ")")

    def value(self, signature):
        if signature == "·":
            return self.expression()
        if signature[0] == "call":
            return one_line(self.call(signature[1]))
        inner = [self.value(v) for v in signature[1]]
        return "(" + ", ".join(inner) + ("," if len(inner) == 1 else "") + ")"

    def forward_lines(self, externals: list[str]) -> list[str]:
        """forward's statements, one per unit, in the spec's order. An Identity is its input;
        a branch read only by the merge after it is written into the merge
        (`self.body(x) + self.shortcut(x)`), and a merge read only by the next call into that
        call (`self.relu(...)`). A value goes to `x` where it is read once and `x` holds
        nothing still to be read, else to a variable named after its unit (`enc1`)."""
        units = self.body.units
        readers: dict[str, list[int]] = {}
        for i, (_, _, _, inputs) in enumerate(units):
            for ref in inputs:
                readers.setdefault(ref, []).append(i)
        last = units[-1][0]
        alias = {name: inputs[0] for name, _, detail, inputs in units
                 if detail[0] == "expression" and detail[1] == "{0}"}

        def resolve_alias(ref):
            while ref in alias:
                ref = alias[ref]
            return ref

        inlined = self._inlined(units, readers, alias, last)
        texts: dict[str, str] = {f"@{k}": e for k, e in enumerate(externals)}
        holder = {"x": "@0"}
        # the last statement that reads each value (inlined reads count where they land)
        statement_of = {}
        for i in range(len(units)):
            j = i
            while j in inlined:
                j = inlined[j]
            statement_of[i] = j
        last_read: dict[str, int] = {}
        for i, (unit_name, _, _, inputs) in enumerate(units):
            if unit_name in alias:
                continue
            for ref in inputs:
                ref = resolve_alias(ref)
                last_read[ref] = max(last_read.get(ref, -1), statement_of[i])
        lines = []
        taken = set(externals) | set(self.klass.params) | RESERVED
        for i, (name, kind, detail, inputs) in enumerate(units):
            if name in alias:
                continue
            arguments = [texts[resolve_alias(ref)] for ref in inputs]
            if detail[0] == "expression":
                text = detail[1].format(*arguments)
            else:
                text = f"{attribute('self', name)}({', '.join(arguments)})"
            if i in inlined:
                texts[name] = text
                continue
            comment = self.shape(name)
            if i == len(units) - 1 or resolve_alias(last) == name:
                lines += layout("        return ", text, comment)
                return lines
            current = holder.get("x")
            reads = [k for k in range(len(units)) if statement_of[k] > i
                     and units[k][0] not in alias
                     and name in map(resolve_alias, units[k][3])]
            free = current is None or last_read.get(current, -1) <= i
            if free and len({statement_of[k] for k in reads}) <= 1:
                target = "x"
                holder["x"] = name
            else:
                target = python_name(name.replace(".", "_"), taken)
                taken.add(target)
            texts[name] = target
            lines += layout(f"        {target} = ", text, comment)
        lines.append(f"        return {texts[resolve_alias(last)]}")
        return lines


    @staticmethod
    def _inlined(units, readers, alias, last) -> dict[int, int]:
        """unit -> the unit whose statement its expression is written into."""
        inlined: dict[int, int] = {}
        for m, (name, _, detail, _) in enumerate(units):
            if not _merge(detail):
                continue
            for j in range(m - 1, -1, -1):  # the branches just before the merge
                unit_name = units[j][0]
                if unit_name in alias:
                    continue
                if readers.get(unit_name, []) != [m] or unit_name == last or \
                        _merge(units[j][2]):
                    break
                inlined[j] = m
            if name == last:
                continue
            following = m + 1
            while following < len(units) and units[following][0] in alias:
                following += 1
            # into a layer that follows (an activation: self.relu(a + b)), not into a block
            if readers.get(name, []) == [following] and units[following][1] == "leaf" and \
                    units[following][2][0] != "expression" and len(units[following][3]) == 1:
                inlined[m] = following
        return inlined


def _merge(detail) -> bool:
    """A unit written as an expression over two inputs or more (`a + b`, torch.cat)."""
    return detail[0] == "expression" and "{1}" in detail[1]


def _spatial(values, inputs, axis: int, rank: int, klass) -> str:
    """A spatial size of a class's instances: its input's (H), or that divided or multiplied by
    a constant or a parameter (H/2, H/s); ? where none holds."""
    letters = {1: ["L"], 2: ["H", "W"], 3: ["D", "H", "W"]}.get(rank - 1)
    sizes = [i[axis] if axis < len(i) else None for i in inputs]
    if letters is None or any(s is None for s in sizes) or len(inputs[0]) != rank:
        return "?"
    letter = letters[axis - 1]
    if all(v == s for v, s in zip(values, sizes)):
        return letter
    if all(v and s % v == 0 for v, s in zip(values, sizes)):
        ratios = {s // v for v, s in zip(values, sizes)}
        if len(ratios) == 1:
            return f"{letter}/{ratios.pop()}"
    if all(s and v % s == 0 for v, s in zip(values, sizes)):
        ratios = {v // s for v, s in zip(values, sizes)}
        if len(ratios) == 1:
            return f"{letter}*{ratios.pop()}"
    for param in klass.params:
        factors = [env.get(param) for env in klass.envs]
        if all(isinstance(f, int) and not isinstance(f, bool) and f > 0 for f in factors):
            if all(-(-s // f) == v for v, s, f in zip(values, sizes, factors)):
                return f"{letter}/{param}"
    return "?"


