"""An ImportedGraph written as the spec a person would write (`write_spec`).

Passes over plain data (the terms of terms.py), the first three here:
1. `_Decomposition`: the flat graph as a series-parallel chain. A merge's inputs fork from
   their nearest common dominator (`[a] + [b]`, an empty branch being `Identity`); a merge
   that reads the current value and earlier results that dominate it, far away (U-Net's long
   skips), reads them by `as` name instead (`Concat(enc4, crop=true)`). Concatenations with a
   common prefix are associative (DenseNet's torch.cat(features)): cat(x, a, b) =
   cat(cat(x, a), b).
2. `_Grouping`: consecutive steps that hold all of one submodule's layers become a group named
   after it (`[...] as layer1`; Sequential's numbered children stay unnamed, to be repeated).
3. `_name_skips`: each result read by name gets its `as` name.
4. definitions.py: `def`s for the instances of one module class, with parameters; rates that
   grow with the block's index; `X*N` repeats.
5. layout.py: the text, laid out as a person writes it, without needless `as` names.

Nothing is reordered: the spec lowers its layers in the module's call order, so that a compiled
spec's state_dict lists the module's tensors in the same order (load_state_dict_by_order)."""
from __future__ import annotations

import dataclasses
import re
from collections import Counter
from importlib import metadata

from ..errors import ArchDSLError
from ..fmt import format_spec
from ..ir import Argument
from ..layers import layer_class
from ..layers.arguments import bind_arguments
from .definitions import define, progressions, shared_branches, with_repeats
from .graph import INPUT, ImportedGraph, ImportedNode
from .layout import spec_text, without_needless_names
from .terms import (RESERVED, WORD, Branches, Call, Expression, Group, Seq, as_names,
                    common_prefix, is_merge, mapped_inside, node_names, output_of, read_names)


def write_spec(graph: ImportedGraph) -> str:
    """The spec text of an imported graph, in `archdsl fmt`'s layout."""
    nodes, output = _normalized(graph.nodes)
    decomposition = _Decomposition(nodes)
    body, references = decomposition.run(output)
    body = _Grouping(nodes, decomposition.dominator).seq(body, ())
    body = _name_skips(body, references, nodes)
    read = frozenset(read_names(body))
    definitions, body = define(shared_branches(body))
    header = [_header(graph), "input " + "x".join(str(size) for size in graph.input)]
    definitions, body = without_needless_names(header, definitions, body, read)
    definitions = [(name, parameters, with_repeats(seq, read))
                   for name, parameters, seq in definitions]
    body = with_repeats(progressions(body), read)
    return format_spec(spec_text(header, definitions, body), "<imported>")


def _header(graph: ImportedGraph) -> str:
    words = f"# imported from {graph.origin} by archdsl import"
    if graph.origin.startswith("torchvision"):
        try:
            words += f" (torchvision {metadata.version('torchvision')})"
        except metadata.PackageNotFoundError:
            pass
    return words


def _normalized(imported: tuple[ImportedNode, ...]) -> tuple[dict[str, ImportedNode], str]:
    """The nodes by name, without merges of one input (torch.cat([x])), and each concatenation
    whose inputs start with an earlier one's reading that one instead; and the output's name."""
    if not imported:
        raise ArchDSLError("the module has no layers to import")
    renamed: dict[str, str] = {}
    concatenations: list[tuple[tuple[str, ...], ImportedNode]] = []  # (inputs as traced, node)
    nodes: dict[str, ImportedNode] = {}
    for node in imported:
        inputs = tuple(renamed.get(i, i) for i in node.inputs)
        if is_merge(node.layer) and len(inputs) == 1:
            renamed[node.name] = inputs[0]
            continue
        if is_merge(node.layer) and layer_class(node.layer).merges_by_prefix and \
                not node.arguments:
            traced = inputs
            prefix = max((earlier for earlier in concatenations
                          if len(earlier[0]) < len(inputs) and inputs[:len(earlier[0])]
                          == earlier[0]), key=lambda earlier: len(earlier[0]), default=None)
            concatenations.append((traced, node))
            if prefix is not None:
                inputs = (prefix[1].name, *inputs[len(prefix[0]):])
        nodes[node.name] = dataclasses.replace(node, inputs=inputs)
    output = imported[-1].name
    return nodes, renamed.get(output, output)


class _Decomposition:
    """The graph as nested chains and branches, from the dominator tree (rooted at the input)."""

    def __init__(self, nodes: dict[str, ImportedNode]):
        self.nodes = nodes
        self.dominator: dict[str, str | None] = {INPUT: None}
        self.depth = {INPUT: 0}
        for node in nodes.values():
            unknown = [i for i in node.inputs if i not in self.depth]
            if unknown:
                raise ArchDSLError(f"{node.source} reads {unknown[0]!r}, which no earlier layer "
                                   f"computes")
            nearest = node.inputs[0]
            for other in node.inputs[1:]:
                nearest = self.common(nearest, other)
            self.dominator[node.name] = nearest
            self.depth[node.name] = self.depth[nearest] + 1
        self.memo: dict[tuple[str, str], tuple] = {}
        self.references: dict[str, tuple[str, ...]] = {}  # merge -> the results it names

    def common(self, a: str, b: str) -> str:
        while a != b:
            if self.depth[a] < self.depth[b]:
                b = self.dominator[b]
            else:
                a = self.dominator[a]
        return a

    def dominates(self, a: str, b: str) -> bool:
        while self.depth[b] > self.depth[a]:
            b = self.dominator[b]
        return a == b

    def run(self, output: str) -> tuple[Seq, dict[str, tuple[str, ...]]]:
        body = self.chain(INPUT, output)
        emitted = Counter(node_names(body))
        wrong = [node for name, node in self.nodes.items() if emitted[name] != 1]
        if wrong:
            raise ArchDSLError("cannot write the module as one chain of branches: " + ", ".join(
                f"{n.source} ({'read in several places' if emitted[n.name] else 'never used'})"
                for n in wrong[:10]))
        return body, self.references

    def chain(self, start: str, end: str) -> Seq:
        """The steps computing `end` from `start`, which dominates it."""
        key = (start, end)
        if key not in self.memo:
            steps, current = [], end
            while current != start:
                node = self.nodes[current]
                if not is_merge(node.layer):
                    steps.append(self.call(node))
                    current = node.inputs[0]
                elif self.by_name(node):
                    self.references[node.name] = node.inputs[1:]
                    steps.append(self.call(node))
                    current = node.inputs[0]
                else:
                    fork = self.dominator[current]
                    steps.append(Branches(tuple(self.chain(fork, i) for i in node.inputs),
                                           layer_class(node.layer).dsl_name, node=node.name))
                    current = fork
            self.memo[key] = Seq(tuple(reversed(steps)))
        return self.memo[key]

    def call(self, node: ImportedNode) -> Call:
        return Call(node.layer, _field_values(node), node=node.name)

    def by_name(self, merge: ImportedNode) -> bool:
        """Whether the merge reads its later inputs by name (Concat(enc4)) rather than as
        branches: it must where it takes arguments (crop=true), or where branches would compute
        a result twice; it does where the branch to its first input leaves the merge's module
        (a long skip), or, at the top, spans several of its submodules."""
        first, *others = merge.inputs
        fork = self.dominator[merge.name]
        possible = all(o != first and self.dominates(o, merge.name) for o in others)
        # Earlier results that dominate the merge, other than its fork, lie on the first
        # branch: as branches of their own they would be computed twice.
        needed = bool(merge.arguments) or (possible and any(o != fork for o in others))
        if needed and not possible:
            raise ArchDSLError(f"cannot write {merge.source} in a spec: its inputs "
                               f"{', '.join(merge.inputs)} are neither branches of one fork nor "
                               f"the current value and earlier results")
        if not possible or needed:
            return needed
        inside = [self.nodes[name] for name in node_names(self.chain(fork, first))]
        common = common_prefix([n.scope for n in inside])
        if len(common) < len(merge.scope) and merge.scope[:len(common)] == common:
            return True
        return not common and len({n.scope[0] for n in inside if n.scope}) >= 2


def _field_values(node: ImportedNode) -> tuple:
    """The node's arguments as one value per field of its layer, defaults filled in."""
    cls = layer_class(node.layer)
    arguments = tuple(Argument(keyword, value, None) for keyword, value in node.arguments)
    usage = cls.usage()
    try:
        values, _ = bind_arguments(cls, cls.dsl_name, usage, arguments, None)
    except ArchDSLError as error:
        raise ArchDSLError(f"{node.source}: {error.message}") from None
    return tuple(_collapsed(values.get(f.name, f.default)) for f in dataclasses.fields(cls))


def _collapsed(value):
    """(3, 3) -> 3: one size for every spatial axis is written once."""
    if type(value) is tuple and value and all(type(v) is int and v == value[0] for v in value):
        return value[0]
    return value


def _scope_counts(nodes) -> Counter:
    """How many layers (merges aside) each module's forward computes, submodules included."""
    counts = Counter()
    for node in nodes:
        if not is_merge(node.layer):
            for length in range(1, len(node.scope) + 1):
                counts[node.scope[:length]] += 1
    return counts


class _Grouping:
    def __init__(self, nodes: dict[str, ImportedNode], dominator: dict[str, str | None]):
        self.counts, self.nodes, self.dominator = _scope_counts(nodes.values()), nodes, dominator

    def seq(self, seq: Seq, path: tuple) -> Seq:
        steps, out, index = list(seq.steps), [], 0
        while index < len(steps):
            child = self.child(steps[index], path)
            end = index + 1
            while child is not None and end < len(steps) and self.child(steps[end], path) == child:
                end += 1
            if child is None:
                out.append(self.inside(steps[index], path))
            else:
                run = Seq(tuple(steps[index:end]))
                inner = self.seq(run, path + (child,))
                if self.layers(run) == self.counts[path + (child,)]:
                    attribute = child[0]
                    word = WORD.fullmatch(attribute) and attribute.lower() not in RESERVED
                    out.append(Group(inner, attribute if word else None, path + (child,)))
                else:  # the module also computes elsewhere: its submodules may still group
                    out.extend(inner.steps)
            index = end
        return Seq(tuple(out))

    def inside(self, step, path: tuple):
        return mapped_inside(step, lambda seq: self.seq(seq, path))

    def members(self, step) -> list[ImportedNode]:
        """The layers that place a step in a module. A merge counts where it runs in a module
        around its branches' that also takes the value they fork from (RegNet's
        `x + self.f(x)`), not elsewhere (DenseNet's concatenation runs in the next layer's
        forward, or in the block's, of the last layer's features); a step that is one merge is
        where it runs."""
        all_nodes = [self.nodes[name] for name in node_names(step)]
        layers = [n for n in all_nodes if not is_merge(n.layer)]
        if not layers:
            return all_nodes
        common = common_prefix([n.scope for n in layers])
        return [n for n in all_nodes if not is_merge(n.layer) or
                (common[:len(n.scope)] == n.scope and not self.within(self.dominator[n.name],
                                                                     n.scope))]

    def within(self, name: str, scope: tuple) -> bool:
        return name != INPUT and self.nodes[name].scope[:len(scope)] == scope

    def child(self, step, path: tuple):
        """The submodule of `path` that computes all of the step, or None."""
        children = {n.scope[len(path)] if len(n.scope) > len(path) else None
                    for n in self.members(step)}
        return children.pop() if len(children) == 1 else None

    def layers(self, seq: Seq) -> int:
        return sum(1 for name in node_names(seq) if not is_merge(self.nodes[name].layer))


def _name_skips(body: Seq, references: dict[str, tuple[str, ...]],
                nodes: dict[str, ImportedNode]) -> Seq:
    """Give each result a merge reads by name an `as` name, on the outermost step ending with
    it (a group's own name where it is unique), and write those names into the merges."""
    producers = {p for read in references.values() for p in read}
    if not producers:
        return body
    counts = Counter(as_names(body))
    taken = set(counts) | RESERVED
    names: dict[str, str] = {}

    def fresh(step) -> str:
        if isinstance(step, Group):
            base = "".join(attribute for attribute, _ in step.scope[-2:])
        else:
            node = nodes[output_of(step)]
            base = node.attribute or node.layer.lower()
        base = re.sub(r"\W", "", base) or "result"
        base = base if not base[0].isdigit() else "x" + base
        name, number = base, 1
        while name in taken or name.lower() in RESERVED:
            number += 1
            name = f"{base}{number}"
        taken.add(name)
        return name

    def named(term):
        if isinstance(term, Seq):
            return Seq(tuple(named(step) for step in term.steps))
        end = output_of(term)
        if end in producers and end not in names:
            names[end] = term.name if term.name and counts[term.name] == 1 else fresh(term)
            term = dataclasses.replace(term, name=names[end])
        return mapped_inside(term, named)

    def reading(term):
        if isinstance(term, Seq):
            return Seq(tuple(reading(step) for step in term.steps))
        if isinstance(term, (Group, Branches)):
            return mapped_inside(term, reading)
        if term.node in references:
            read = [names[p] for p in references[term.node]]
            value = Expression(read[0] if len(read) == 1 else f"({', '.join(read)})")
            index = _reference_field(layer_class(term.layer))
            values = term.values[:index] + (value,) + term.values[index + 1:]
            return dataclasses.replace(term, values=values)
        return term

    return reading(named(body))


def _reference_field(cls) -> int:
    """The index of the merge layer's field naming the results it reads (skip)."""
    for index, f in enumerate(dataclasses.fields(cls)):
        try:
            if cls(**{f.name: "x"}).references() == ("x",):
                return index
        except (TypeError, ValueError):
            continue
    raise AssertionError(f"{cls.dsl_name} reads no named results")
