"""An ImportedGraph written as the spec a person would write (`write_spec`).

Five passes over plain data, each a function below:
1. `_decompose`: the flat graph as a series-parallel chain. A merge's inputs fork from their
   nearest common dominator (`[a] + [b]`, an empty branch being `Identity`); a merge that reads
   the current value and earlier results that dominate it, far away (U-Net's long skips), reads
   them by `as` name instead (`Concat(enc4, crop=true)`). Concatenations with a common prefix
   are associative (DenseNet's torch.cat(features)): cat(x, a, b) = cat(cat(x, a), b).
2. `_group`: consecutive steps that hold all of one submodule's layers become a group named
   after it (`[...] as layer1`; Sequential's numbered children stay unnamed, to be repeated).
3. `_name_skips`: each result read by name gets its `as` name.
4. `_define`: instances of one module class with one structure become a `def` named after the
   class, whose varying numbers become parameters (`c`, `s`, …), shared where equal and derived
   where one is another times a constant (`c*4`, `k//2`).
5. `_repeat`: consecutive equal steps, or runs of them, become `X*N`.

Nothing is reordered: the spec lowers its layers in the module's call order, so that a compiled
spec's state_dict lists the module's tensors in the same order (load_state_dict_by_order)."""
from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata

from ..errors import ArchDSLError
from ..fmt import WIDTH, format_spec
from ..ir import Argument
from ..layers import layer_class, layer_names
from ..layers.arguments import ALIASES, bind_arguments
from ..lowering import lower
from ..parser import parse
from .graph import INPUT, ImportedGraph, ImportedNode

# Module classes that only hold others: no definition is named after them.
CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")
# A definition's parameter is named after the argument it first feeds: Conv(c, k, s=s).
PARAMETER_NAMES = {"out": "c", **{long: short for short, long in ALIASES.items()}}
# Arguments of one kind, where one may be derived from another: c*4 channels, padding k//2.
RELATED = ({"out", "groups"}, {"kernel", "padding"})
RESERVED = {"input", "train", "def", "assert", "for", "as", "true", "false", "none"}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NONE = object()  # a parameter without a default


@dataclass(frozen=True)
class _Expression:
    """A value written as it stands: a definition's parameter, arithmetic over parameters, or
    the name of an earlier result."""

    text: str


@dataclass(frozen=True)
class _Call:
    layer: str
    values: tuple  # one per field of the layer, in the class's order
    name: str | None = None  # `as` name
    node: str = field(default="", compare=False)


@dataclass(frozen=True)
class _Use:
    """A call of a definition (made in _define)."""

    definition: str
    values: tuple  # one per parameter
    labels: tuple = field(compare=False)  # the parameters' names, to name an outer one
    defaults: tuple = field(default=(), compare=False)  # per parameter; _NONE where none
    name: str | None = None
    node: str = field(default="", compare=False)


@dataclass(frozen=True)
class _Seq:
    steps: tuple


@dataclass(frozen=True)
class _Branches:
    branches: tuple  # of _Seq; an empty one is Identity
    merge: str  # the merging layer
    name: str | None = None
    node: str = field(default="", compare=False)


@dataclass(frozen=True)
class _Group:
    body: _Seq
    name: str | None = None
    scope: tuple = field(default=(), compare=False)  # the module's place: ((attr, class), …)


@dataclass(frozen=True)
class _Repeat:
    body: object  # _Call, _Use or _Group
    count: int
    index: str | None = None  # `for k`


def write_spec(graph: ImportedGraph) -> str:
    """The spec text of an imported graph, in `archdsl fmt`'s layout."""
    nodes, output = _normalized(graph.nodes)
    decomposition = _Decomposition(nodes)
    body, references = decomposition.run(output)
    body = _Grouping(nodes, decomposition.dominator).seq(body, ())
    body = _name_skips(body, references, nodes)
    read = frozenset(_read_names(body))
    definitions, body = _define(_shared_branches(body))
    header = [_header(graph), "input " + "x".join(str(size) for size in graph.input)]
    definitions, body = _without_needless_names(header, definitions, body, read)
    definitions = [(name, parameters, _repeat(seq, read))
                   for name, parameters, seq in definitions]
    body = _repeat(_progressions(body), read)
    return format_spec(_text(header, definitions, body), "<imported>")


def _text(header: list[str], definitions, body: _Seq) -> str:
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


def _laid_out(seq: _Seq, first: int, later: int, alone: bool) -> str:
    """The chain's steps in lines of at most WIDTH columns, the first starting at column
    `first`, the others at `later` after their `-> `."""
    lines: list[list[tuple[str, bool]]] = [[]]
    for step in seq.steps:
        text = _step(step)
        natural = _ends_a_unit(step)
        own = alone and (isinstance(step, (_Branches, _Group)) or text.startswith("[")
                         or bool(getattr(step, "name", None)))  # a module's, on its own line
        line = lines[-1]
        start = later if len(lines) > 1 else first
        if own and start + len(text) > WIDTH and isinstance(step, _Group) and \
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


def _without_needless_names(header: list[str], definitions, body: _Seq, read: frozenset):
    """The spec without the `as` names of calls that lowering gives the rows anyway (`as
    cnblock1` on the first of eighteen CNBlock calls); groups keep their modules' names. The
    names that no merge reads are dropped together, and those that renamed a row are brought
    back, one at a time, until every row has its name again."""
    def rows(names: frozenset) -> list[str]:
        dropped = [(n, p, _unnamed(seq, names)) for n, p, seq in definitions]
        return [node.name for node in lower(parse(_text(header, dropped,
                                                           _unnamed(body, names))))]

    wanted = rows(frozenset())
    names = frozenset(name for _, _, seq in definitions for name in _names(seq)) | \
        frozenset(_names(body))
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
    return [g.name for g in _groups(term) if g.name]


def _unnamed(term, names: frozenset):
    """The term without the `as` names in `names`."""
    if isinstance(term, _Seq):
        return _Seq(tuple(_unnamed(step, names) for step in term.steps))
    if isinstance(term, _Repeat):
        return dataclasses.replace(term, body=_unnamed(term.body, names))
    if getattr(term, "name", None) in names:
        term = dataclasses.replace(term, name=None)
    return _inner(term, lambda seq: _unnamed(seq, names))


def _header(graph: ImportedGraph) -> str:
    words = f"# imported from {graph.origin} by archdsl import"
    if graph.origin.startswith("torchvision"):
        try:
            words += f" (torchvision {metadata.version('torchvision')})"
        except metadata.PackageNotFoundError:
            pass
    return words


# 1. The series-parallel chain ---------------------------------------------------------------

def _is_merge(layer: str) -> bool:
    return layer_class(layer).kind == "merge"


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
        if _is_merge(node.layer) and len(inputs) == 1:
            renamed[node.name] = inputs[0]
            continue
        if layer_class(node.layer).dsl_name == "Concat" and not node.arguments:
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

    def run(self, output: str) -> tuple[_Seq, dict[str, tuple[str, ...]]]:
        body = self.chain(INPUT, output)
        emitted = Counter(_nodes(body))
        wrong = [node for name, node in self.nodes.items() if emitted[name] != 1]
        if wrong:
            raise ArchDSLError("cannot write the module as one chain of branches: " + ", ".join(
                f"{n.source} ({'read in several places' if emitted[n.name] else 'never used'})"
                for n in wrong[:10]))
        return body, self.references

    def chain(self, start: str, end: str) -> _Seq:
        """The steps computing `end` from `start`, which dominates it."""
        key = (start, end)
        if key not in self.memo:
            steps, current = [], end
            while current != start:
                node = self.nodes[current]
                if not _is_merge(node.layer):
                    steps.append(self.call(node))
                    current = node.inputs[0]
                elif self.by_name(node):
                    self.references[node.name] = node.inputs[1:]
                    steps.append(self.call(node))
                    current = node.inputs[0]
                else:
                    fork = self.dominator[current]
                    steps.append(_Branches(tuple(self.chain(fork, i) for i in node.inputs),
                                           layer_class(node.layer).dsl_name, node=node.name))
                    current = fork
            self.memo[key] = _Seq(tuple(reversed(steps)))
        return self.memo[key]

    def call(self, node: ImportedNode) -> _Call:
        return _Call(node.layer, _field_values(node), node=node.name)

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
        inside = [self.nodes[name] for name in _nodes(self.chain(fork, first))]
        common = _common_prefix([n.scope for n in inside])
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


def _nodes(term) -> list[str]:
    """The node names a term computes, in order."""
    if isinstance(term, _Call):
        return [term.node]
    if isinstance(term, _Seq):
        return [name for step in term.steps for name in _nodes(step)]
    if isinstance(term, _Branches):
        return [name for b in term.branches for name in _nodes(b)] + [term.node]
    if isinstance(term, _Group):
        return _nodes(term.body)
    raise AssertionError(term)


def _inner(term, function):
    """The term with `function` applied to the chains it holds (a group's, each branch)."""
    if isinstance(term, _Group):
        return dataclasses.replace(term, body=function(term.body))
    if isinstance(term, _Branches):
        return dataclasses.replace(term, branches=tuple(function(b) for b in term.branches))
    return term


def _common_prefix(paths: list[tuple]) -> tuple:
    if not paths:
        return ()
    common = paths[0]
    for path in paths[1:]:
        length = 0
        while length < min(len(common), len(path)) and common[length] == path[length]:
            length += 1
        common = common[:length]
    return common


# 2. Groups named after modules ----------------------------------------------------------------

def _scope_counts(nodes) -> Counter:
    """How many layers (merges aside) each module's forward computes, submodules included."""
    counts = Counter()
    for node in nodes:
        if not _is_merge(node.layer):
            for length in range(1, len(node.scope) + 1):
                counts[node.scope[:length]] += 1
    return counts


class _Grouping:
    def __init__(self, nodes: dict[str, ImportedNode], dominator: dict[str, str | None]):
        self.counts, self.nodes, self.dominator = _scope_counts(nodes.values()), nodes, dominator

    def seq(self, seq: _Seq, path: tuple) -> _Seq:
        steps, out, index = list(seq.steps), [], 0
        while index < len(steps):
            child = self.child(steps[index], path)
            end = index + 1
            while child is not None and end < len(steps) and self.child(steps[end], path) == child:
                end += 1
            if child is None:
                out.append(self.inside(steps[index], path))
            else:
                run = _Seq(tuple(steps[index:end]))
                inner = self.seq(run, path + (child,))
                if self.layers(run) == self.counts[path + (child,)]:
                    attribute = child[0]
                    word = _WORD.fullmatch(attribute) and attribute.lower() not in RESERVED
                    out.append(_Group(inner, attribute if word else None, path + (child,)))
                else:  # the module also computes elsewhere: its submodules may still group
                    out.extend(inner.steps)
            index = end
        return _Seq(tuple(out))

    def inside(self, step, path: tuple):
        return _inner(step, lambda seq: self.seq(seq, path))

    def members(self, step) -> list[ImportedNode]:
        """The layers that place a step in a module. A merge counts where it runs in a module
        around its branches' that also takes the value they fork from (RegNet's
        `x + self.f(x)`), not elsewhere (DenseNet's concatenation runs in the next layer's
        forward, or in the block's, of the last layer's features); a step that is one merge is
        where it runs."""
        all_nodes = [self.nodes[name] for name in _nodes(step)]
        layers = [n for n in all_nodes if not _is_merge(n.layer)]
        if not layers:
            return all_nodes
        common = _common_prefix([n.scope for n in layers])
        return [n for n in all_nodes if not _is_merge(n.layer) or
                (common[:len(n.scope)] == n.scope and not self.within(self.dominator[n.name],
                                                                     n.scope))]

    def within(self, name: str, scope: tuple) -> bool:
        return name != INPUT and self.nodes[name].scope[:len(scope)] == scope

    def child(self, step, path: tuple):
        """The submodule of `path` that computes all of the step, or None."""
        children = {n.scope[len(path)] if len(n.scope) > len(path) else None
                    for n in self.members(step)}
        return children.pop() if len(children) == 1 else None

    def layers(self, seq: _Seq) -> int:
        return sum(1 for name in _nodes(seq) if not _is_merge(self.nodes[name].layer))


# 3. Names for the results read by name ----------------------------------------------------------

def _name_skips(body: _Seq, references: dict[str, tuple[str, ...]],
                nodes: dict[str, ImportedNode]) -> _Seq:
    """Give each result a merge reads by name an `as` name, on the outermost step ending with
    it (a group's own name where it is unique), and write those names into the merges."""
    producers = {p for read in references.values() for p in read}
    if not producers:
        return body
    counts = Counter(_names(body))
    taken = set(counts) | RESERVED
    names: dict[str, str] = {}

    def fresh(step) -> str:
        if isinstance(step, _Group):
            base = "".join(attribute for attribute, _ in step.scope[-2:])
        else:
            node = nodes[_end(step)]
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
        if isinstance(term, _Seq):
            return _Seq(tuple(named(step) for step in term.steps))
        end = _end(term)
        if end in producers and end not in names:
            names[end] = term.name if term.name and counts[term.name] == 1 else fresh(term)
            term = dataclasses.replace(term, name=names[end])
        return _inner(term, named)

    def reading(term):
        if isinstance(term, _Seq):
            return _Seq(tuple(reading(step) for step in term.steps))
        if isinstance(term, (_Group, _Branches)):
            return _inner(term, reading)
        if term.node in references:
            read = [names[p] for p in references[term.node]]
            value = _Expression(read[0] if len(read) == 1 else f"({', '.join(read)})")
            index = _reference_field(layer_class(term.layer))
            values = term.values[:index] + (value,) + term.values[index + 1:]
            return dataclasses.replace(term, values=values)
        return term

    return reading(named(body))


def _read_names(term) -> list[str]:
    """The names merges read (Concat(enc4))."""
    if isinstance(term, _Seq):
        return [name for step in term.steps for name in _read_names(step)]
    if isinstance(term, _Group):
        return _read_names(term.body)
    if isinstance(term, _Branches):
        return [name for b in term.branches for name in _read_names(b)]
    return [word for v in term.values if isinstance(v, _Expression)
            for word in _WORD.findall(v.text)]


def _end(term) -> str | None:
    """The node whose output is the term's."""
    if isinstance(term, _Seq):
        return _end(term.steps[-1]) if term.steps else None
    if isinstance(term, _Group):
        return _end(term.body)
    return term.node


def _names(term) -> list[str]:
    """Every `as` name in a term."""
    if isinstance(term, _Seq):
        return [name for step in term.steps for name in _names(step)]
    own = [term.name] if getattr(term, "name", None) else []
    if isinstance(term, _Group):
        return own + _names(term.body)
    if isinstance(term, _Branches):
        return own + [name for b in term.branches for name in _names(b)]
    if isinstance(term, _Repeat):
        return _names(term.body)
    return own


def _reference_field(cls) -> int:
    """The index of the merge layer's field naming the results it reads (skip)."""
    for index, f in enumerate(dataclasses.fields(cls)):
        try:
            if cls(**{f.name: "x"}).references() == ("x",):
                return index
        except (TypeError, ValueError):
            continue
    raise AssertionError(f"{cls.dsl_name} reads no named results")


# 4. Definitions -------------------------------------------------------------------------------

def _define(body: _Seq) -> tuple[list[tuple[str, list[str], _Seq]], _Seq]:
    """Definitions for the module classes with several instances of one structure, innermost
    classes first; each instance becomes a call of its definition."""
    definitions: list[tuple[str, list[str], _Seq]] = []
    defaults: dict[str, dict[str, object]] = {}  # each definition's parameters' defaults
    taken = set(layer_names())
    depths: dict[str, int] = {}
    for group in _groups(body):
        cls = group.scope[-1][1]
        if cls not in CONTAINERS:
            depths[cls] = max(depths.get(cls, 0), len(group.scope))
    for cls in sorted(depths, key=lambda c: -depths[c]):  # stable: first seen first on ties
        variants: dict[object, list[_Group]] = {}
        for group in _groups(body):
            if group.scope[-1][1] == cls:
                variants.setdefault(_shape(group.body), []).append(group)
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
        body = _replaced(body, replacements)
        definitions = [(n, p, _replaced(s, replacements)) for n, p, s in definitions]
    return definitions, body


def _shared_branches(body: _Seq) -> _Seq:
    """A branch of three steps or more that several structures of one module class share (the
    body of ResNet's bottleneck with and without its downsampling shortcut) as a group of its
    own, `<Class>Body`, so that it becomes one definition the others call."""
    by_class: dict[str, list[_Group]] = {}
    for group in _groups(body):
        by_class.setdefault(group.scope[-1][1], []).append(group)
    replacements = {}
    for cls, groups in by_class.items():
        variants = {_shape(g.body): g for g in groups}
        if cls in CONTAINERS or len(variants) < 2:
            continue
        seen = Counter(shape for g in variants.values() for shape in
                       {_shape(b) for b in _branches_of(g) if len(b.steps) >= 3})
        shared = {shape for shape, count in seen.items() if count >= 2}
        for group in groups:
            for branch in _branches_of(group):
                if _shape(branch) in shared:
                    scope = group.scope + (("body", cls.lstrip("_") + "Body"),)
                    replacements[id(branch)] = _Seq((_Group(branch, None, scope),))
    return _replaced(body, replacements)


def _branches_of(group: _Group) -> list[_Seq]:
    return [b for step in group.body.steps if isinstance(step, _Branches) for b in step.branches]


def _groups(term) -> list[_Group]:
    if isinstance(term, _Seq):
        return [g for step in term.steps for g in _groups(step)]
    if isinstance(term, _Group):
        return [term] + _groups(term.body)
    if isinstance(term, _Branches):
        return [g for b in term.branches for g in _groups(b)]
    return []


def _replaced(term, replacements: dict):
    if id(term) in replacements:
        return replacements[id(term)]
    if isinstance(term, _Seq):
        return _Seq(tuple(_replaced(step, replacements) for step in term.steps))
    return _inner(term, lambda seq: _replaced(seq, replacements))


def _shape(term):
    """The term without its numbers: what instances of one definition share."""
    if isinstance(term, _Seq):
        return ("seq", tuple(_shape(step) for step in term.steps))
    if isinstance(term, _Call):
        return ("call", term.layer, term.name)
    if isinstance(term, _Use):
        return ("use", term.definition, term.name)
    if isinstance(term, _Group):
        return ("group", term.name, _shape(term.body))
    if isinstance(term, _Branches):
        return ("branches", term.merge, term.name, tuple(_shape(b) for b in term.branches))
    if isinstance(term, _Repeat):
        return ("repeat", term.count, _shape(term.body))
    raise AssertionError(term)


def _values(term) -> list[tuple[str, object]]:
    """The term's numbers (and other values) in order, each with the argument it is given as."""
    if isinstance(term, _Seq):
        return [v for step in term.steps for v in _values(step)]
    if isinstance(term, _Call):
        return [(f.name, v) for f, v in zip(dataclasses.fields(layer_class(term.layer)),
                                            term.values)]
    if isinstance(term, _Use):
        return list(zip(term.labels, term.values))
    if isinstance(term, _Group):
        return _values(term.body)
    if isinstance(term, _Branches):
        return [v for b in term.branches for v in _values(b)]
    if isinstance(term, _Repeat):
        return _values(term.body)
    raise AssertionError(term)


def _filled(term, values):
    """The term with its values taken in order from the iterator `values`."""
    if isinstance(term, _Seq):
        return _Seq(tuple(_filled(step, values) for step in term.steps))
    if isinstance(term, (_Call, _Use)):
        return dataclasses.replace(term, values=tuple(next(values) for _ in term.values))
    if isinstance(term, (_Group, _Repeat)):
        return dataclasses.replace(term, body=_filled(term.body, values))
    if isinstance(term, _Branches):
        return dataclasses.replace(term, branches=tuple(_filled(b, values)
                                                        for b in term.branches))
    raise AssertionError(term)


def _parameterized(name: str, bodies: list[_Seq], defaults: dict) \
        -> tuple[list[str], _Seq, list[_Use]]:
    """A definition's parameters (with defaults: `s=1`) and body, and one call per instance:
    the values that differ between instances become parameters; a column equal to an earlier
    one shares its parameter, one that is another times or divided by a constant is written so
    (c*4). The parameters at the end whose argument has a default some instance gives take it
    as theirs; `defaults` gets this definition's."""
    rows = [_values(body) for body in bodies]
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
        expressions.append(_Expression(text))
    body = _filled(bodies[0], iter(expressions))
    by_name = {p: c for p, c, _ in known}
    own = [_NONE] * len(parameters)
    for index in reversed(range(len(parameters))):
        default = given[parameters[index]]
        if default is _NONE or not any(_same(v, default) for v in by_name[parameters[index]]):
            break
        own[index] = default
    defaults[name] = dict(zip(parameters, own))
    calls = [_Use(name, tuple(by_name[p][i] for p in parameters), tuple(parameters), tuple(own))
             for i in range(len(bodies))]
    signature = [p if d is _NONE else f"{p}={_literal(d)}" for p, d in zip(parameters, own)]
    return signature, body, calls


def _argument_defaults(term, defaults: dict) -> list:
    """The default of the argument each of the term's values is given as (_NONE: none)."""
    if isinstance(term, _Seq):
        return [d for step in term.steps for d in _argument_defaults(step, defaults)]
    if isinstance(term, _Call):
        return [_NONE if f.default is dataclasses.MISSING else f.default
                for f in dataclasses.fields(layer_class(term.layer))]
    if isinstance(term, _Use):
        return [defaults.get(term.definition, {}).get(label, _NONE) for label in term.labels]
    if isinstance(term, (_Group, _Repeat)):
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


def _definition_name(cls: str, groups: list[_Group], main: list[_Group], taken: set) -> str:
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
    return _names(term)


# 5. Repeats -------------------------------------------------------------------------------------

def _progressions(body: _Seq) -> _Seq:
    """A rate that grows with the block's index, as torchvision's stochastic depth does
    (0.1 × block / 17), written so: `CNBlock(96, 0.1*k/17)*3 for k`, `CNBlock(192, 0.1*3/17)`,
    where every value is that arithmetic to the last bit."""
    uses: dict[str, list[_Use]] = {}
    for use in _uses(body):
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


def _uses(term) -> list[_Use]:
    if isinstance(term, _Use):
        return [term]
    if isinstance(term, _Seq):
        return [u for step in term.steps for u in _uses(step)]
    if isinstance(term, _Group):
        return _uses(term.body)
    if isinstance(term, _Branches):
        return [u for b in term.branches for u in _uses(b)]
    return []


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


def _counted(seq: _Seq, rates: dict) -> _Seq:
    """Runs of calls whose rate's numerator counts up by one, as one repeat `for k`."""
    steps = [_inner(step, lambda inner: _counted(inner, rates)) for step in seq.steps]
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
        value = _Expression(f"{_literal(rate)}*{numerator}/{denominator}")
        call = dataclasses.replace(step, values=step.values[:column] + (value,)
                                   + step.values[column + 1:])
        out.append(call if count == 1 else _Repeat(call, count, "k"))
        index = end
    return _Seq(tuple(out))


def _except(use: _Use, column: int) -> tuple:
    return (use.definition, use.name, use.values[:column] + use.values[column + 1:])


# Repeats of equal steps

def _repeat(seq: _Seq, kept: frozenset = frozenset()) -> _Seq:
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
        if best is None or best[1] > 1 and _ends_a_unit(steps[index]) and \
                _tandem(steps, index + 1) is not None and \
                _tandem(steps, index + 1)[1] == best[1]:
            out.append(steps[index])
            index += 1
            continue
        covered, length, copies = best
        unit = steps[index:index + length]
        body = unit[0] if length == 1 and not isinstance(unit[0], _Branches) else \
            _Group(_Seq(tuple(unit)))
        out.append(_Repeat(body, copies))
        index += covered
    return _Seq(tuple(out))


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


def _ends_a_unit(step) -> bool:
    """An activation or a pooling: where a person ends a line, or a repeated unit."""
    return isinstance(step, _Call) and layer_class(step.layer).kind in ("activation", "pool")


def _repeatable(step) -> bool:
    return not isinstance(step, _Repeat) and getattr(step, "name", None) is None


def _repeated_inside(step, kept: frozenset):
    return _inner(step, lambda seq: _repeat(seq, kept))


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


_NUMBERED = re.compile(r"([A-Za-z_]+?)([0-9]+)")


# Text -------------------------------------------------------------------------------------------

def _chain(seq: _Seq) -> str:
    return " -> ".join(_step(step) for step in seq.steps)


def _step(term) -> str:
    if isinstance(term, _Call):
        return _named(_call(term), term.name)
    if isinstance(term, _Use):
        arguments = ", ".join(_use_arguments(term))
        return _named(f"{term.definition}({arguments})" if arguments else term.definition,
                      term.name)
    if isinstance(term, _Group):
        only = term.body.steps[0] if len(term.body.steps) == 1 else None
        if isinstance(only, _Repeat):  # `Block*3 as layer1`: the copies form one scope still
            return _named(_step(only), term.name)
        if isinstance(only, (_Call, _Use)) and not only.name:  # its rows' names stay apart
            # [Block(64)] as block1 is Block(64) as block1; [Conv(8, 1)] is Conv(8, 1)
            return _step(dataclasses.replace(only, name=term.name) if term.name else only)
        return _named(f"[{_chain(term.body)}]", term.name)
    if isinstance(term, _Branches):
        operator = layer_class(term.merge)._operator
        branches = term.branches
        if operator == "*" and len(branches) == 2 and not branches[1].steps:
            branches = branches[::-1]  # Identity * [gate]: the same product, exactly
        operands = [_operand(b) for b in branches]
        if operator == "*":  # a `*` before anything but `[` repeats
            operands[1:] = [o if o.startswith("[") else f"[{o}]" for o in operands[1:]]
        text = f" {operator} ".join(operands)
        return f"[{text}] as {term.name}" if term.name else text
    if isinstance(term, _Repeat):
        index = f" for {term.index}" if term.index else ""
        return f"{_step(term.body)}*{term.count}{index}"
    raise AssertionError(term)


def _use_arguments(use: _Use) -> list[str]:
    """By position, until one is left at its default; by keyword after that."""
    parts, keywords = [], False
    defaults = use.defaults or (_NONE,) * len(use.values)
    for label, value, default in zip(use.labels, use.values, defaults):
        if default is not _NONE and not isinstance(value, _Expression) and \
                _same(value, default):
            keywords = True
            continue
        parts.append(f"{label}={_literal(value)}" if keywords else _literal(value))
    return parts


def _operand(seq: _Seq) -> str:
    if not seq.steps:
        return "Identity"
    if len(seq.steps) == 1 and not isinstance(seq.steps[0], _Branches):
        return _step(seq.steps[0])
    return f"[{_chain(seq)}]"


def _named(text: str, name: str | None) -> str:
    return f"{text} as {name}" if name else text


_SHORT = {long: short for short, long in ALIASES.items()}


def _call(call: _Call) -> str:
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
            parts.append(_literal(value))
        elif isinstance(value, _Expression) or not _same(value, f.default):
            if not required and positional and f is positional[0]:
                parts.append(_literal(value))
            else:
                short = _SHORT.get(f.name)
                keyword = short if short and short not in {g.name for g in fields} else f.name
                parts.append(f"{keyword}={_literal(value)}")
    return f"{call.layer}({', '.join(parts)})" if parts else call.layer


def _same(value, default) -> bool:
    return type(value) is type(default) and value == default


def _literal(value) -> str:
    if isinstance(value, _Expression):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, tuple):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)
