"""An analysis as a standalone PyTorch file: a class with __init__ and forward whose submodules
are named like the rows of `archdsl check`, so that the compiled Network's state_dict loads into
it strictly.

Each scope of the spec becomes a module: a plain chain of modules an nn.Sequential of an
OrderedDict, a definition a helper class (`class Bottleneck(nn.Module)`), any other scope with
branches a class named after it. A class is parameterised by its input channels and the
definition's parameters: each constructor argument is written as the spec's expression for it
(`c * 4`), or another expression over the parameters, but only where that expression gives the
concrete value in every instance; where none does, the value becomes a parameter of its own.
Instances whose structure differs (a repeat count, a crop) get classes of their own.

Pure Python: the layers' torch calls are plain data (layers/torch_call.py); nothing imports torch.
"""
from __future__ import annotations

import ast
import dataclasses
import keyword
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from .analysis import Analysis
from .binding import resolve
from .errors import ArchDSLError
from .ir import INPUT, Call, Chain, Group, Name, Named, Operation, Parallel, Repeat, Scope
from .layers import layer_class
from .layers.arguments import ALIASES
from .layers.torch_call import Given, Inferred, TorchCall

LINE = 100
MODULES = Path(__file__).parent / "layers" / "modules.py"
HELPERS = "archdsl.layers.modules"
# The public attributes of nn.Sequential (nn.Module's and append, extend, insert, pop), from
# dir() in torch 2.x: a submodule of such a name is reached through _modules, and an
# nn.Sequential refuses it.
_MODULE_ATTRIBUTES = frozenset("""
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
_RESERVED = {"self", "x", "nn", "torch", "super", "OrderedDict"}


def python_source(analysis: Analysis, class_name: str | None = None) -> str:
    """The spec as one Python file that imports only torch (and torchvision's StochasticDepth
    where the spec uses it)."""
    return _Writer(analysis, class_name or default_class_name(analysis.name)).source()


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


@dataclass(eq=False)
class _Tree:
    name: str  # the rows' prefix: layer1.down; "" for the network
    record: Scope | None
    children: list = field(default_factory=list)  # _Tree or node index, in execution order
    nodes: list[int] = field(default_factory=list)  # every node index inside, in order


@dataclass(frozen=True)
class _Slot:
    """A value the class's __init__ writes, in one instance."""

    value: object
    name: str  # the argument's name, for a parameter made of it
    hint: object = None  # the spec's expression for it, in the scope's words
    channels_of: str | None = None  # the value (relative name) whose channels it is


@dataclass
class _Body:
    """One instance of a scope written as a class: its structure and its values."""

    tree: _Tree
    signature: tuple
    units: list  # (relative name, kind, detail, inputs) per unit
    slots: list[_Slot]
    env: dict
    channels: dict  # relative value name -> channels, in this instance
    shapes: dict  # relative value name -> shape
    containers: list[str]
    externals: list[str]  # the names (global) of the values read from outside, main first
    info: dict = field(default_factory=dict)  # relative name -> unit, at any depth
    slot_ranges: dict = field(default_factory=dict)  # relative name -> (first slot, end)


@dataclass
class _Class:
    name: str
    params: list[str]  # the Python names of __init__'s parameters, in order
    keys: list[str]  # the env names they stand for
    bodies: list[_Body]
    expressions: list  # per slot
    channels: dict  # relative value name -> expression or None
    envs: list = field(default_factory=list)  # per instance: parameter -> value


class _Writer:
    def __init__(self, analysis: Analysis, class_name: str):
        self.analysis = analysis
        self.class_name = class_name
        self.rows = analysis.rows
        self.nodes = analysis.nodes
        self.index = {node.name: i for i, node in enumerate(self.nodes)}
        self.readers: dict[str, list[int]] = {}
        for i, node in enumerate(self.nodes):
            for source in node.inputs:
                self.readers.setdefault(source, []).append(i)
        spec = analysis.spec
        self.calls: dict = {}
        self.groups: dict = {}
        self.pools: dict = {}
        if spec is not None:
            for definition in spec.definitions:
                self._walk(definition.body.body, definition.name)
                self.pools.setdefault(definition.name, [])
                self._operations(definition.body.body, self.pools[definition.name])
                for parameter in definition.parameters:
                    _collect_operations(parameter.default, self.pools[definition.name])
            self._walk(spec.body, None)
            self.definitions = {d.name: d for d in spec.definitions}
        else:
            self.definitions = {}
        self.root = self._tree()
        self.trees = {}
        self._index_trees(self.root)
        self.instances: dict = {}  # class key -> [tree]
        self.classes: dict = {}  # class key -> [_Class]
        self.instance_of: dict = {}  # tree name -> (_Class, values)
        self.names_taken = {class_name, "LayerScale", "ChannelLayerNorm", "PointwiseLinear",
                            "StochasticDepth", "OrderedDict"}
        self.uses: set[str] = set()  # constructors and helpers the file needs

    # -- the spec's source ---------------------------------------------------------------------

    def _walk(self, step, definition: str | None):
        if isinstance(step, Chain):
            for s in step.steps:
                self._walk(s, definition)
        elif isinstance(step, Call):
            self.calls[step.span] = step
        elif isinstance(step, Group):
            self.groups[step.span] = (step, definition)
            self._walk(step.body, definition)
        elif isinstance(step, Repeat):
            self.groups[step.span] = (step, definition)
            self._walk(step.body, definition)
        elif isinstance(step, Named):
            self._walk(step.body, definition)
        elif isinstance(step, Parallel):
            for b in step.branches:
                self._walk(b, definition)

    def _operations(self, step, pool: list):
        if isinstance(step, Chain):
            for s in step.steps:
                self._operations(s, pool)
        elif isinstance(step, Call):
            for argument in step.arguments:
                _collect_operations(argument.value, pool)
        elif isinstance(step, (Group, Named)):
            self._operations(step.body, pool)
        elif isinstance(step, Repeat):
            self._operations(step.body, pool)
        elif isinstance(step, Parallel):
            for b in step.branches:
                self._operations(b, pool)

    # -- the tree of scopes --------------------------------------------------------------------

    def _tree(self) -> _Tree:
        root = _Tree("", None)
        trees = {"": root}
        for i, node in enumerate(self.nodes):
            parent = root
            parent.nodes.append(i)
            for scope in node.scopes:
                tree = trees.get(scope.name)
                if tree is None:
                    tree = trees[scope.name] = _Tree(scope.name, scope)
                    parent.children.append(tree)
                tree.nodes.append(i)
                parent = tree
            parent.children.append(i)
        return root

    def _index_trees(self, tree: _Tree):
        self.trees[tree.name] = tree
        for child in tree.children:
            if isinstance(child, _Tree):
                self._index_trees(child)

    def _members(self, tree: _Tree) -> set[str]:
        return {self.nodes[i].name for i in tree.nodes}

    def _externals(self, tree: _Tree) -> list[str]:
        members, seen = self._members(tree), []
        for i in tree.nodes:
            for source in self.nodes[i].inputs:
                if source not in members and source not in seen:
                    seen.append(source)
        return seen

    def _closed(self, tree: _Tree) -> bool:
        """Only its last value is read from outside it: it can be one module with one output."""
        members = self._members(tree)
        return all(self.nodes[r].name in members for i in tree.nodes[:-1]
                   for r in self.readers.get(self.nodes[i].name, ()))

    def _units(self, tree: _Tree, prefix: str = "", containers=None):
        """(relative name, node index or closed subtree) in order; a subtree that is not closed
        is opened: its units join this scope's, reached through it as a container."""
        units = []
        for child in tree.children:
            if isinstance(child, _Tree):
                relative = prefix + _relative(child.name, tree.name)
                modules = self._has_modules(child)
                if self._closed(child) and modules:
                    units.append((relative, child))
                else:
                    if containers is not None and modules:
                        containers.append(relative)
                    units += self._units(child, relative + ".", containers)
            else:
                units.append((prefix + _relative(self.nodes[child].name, tree.name), child))
        return units

    def _has_modules(self, tree: _Tree) -> bool:
        """Whether a layer inside is a module, not an expression of forward (`a + b`)."""
        return any(self.nodes[i].layer.python_expression(self.rows[i].facts, ["x", "y"]) is None
                   for i in tree.nodes)

    def _sequential(self, tree: _Tree) -> bool:
        """A group whose units form a plain chain of modules: an nn.Sequential."""
        if tree.record is None or tree.record.kind == "definition":
            return False
        externals = self._externals(tree)
        if len(externals) != 1:
            return False
        previous = externals[0]
        for name, unit in self._units(tree):
            if isinstance(unit, _Tree):
                if self._externals(unit) != [previous] or not _plain_attribute(name):
                    return False
                previous = self.nodes[unit.nodes[-1]].name
                continue
            node = self.nodes[unit]
            if node.inputs != (previous,) or node.layer.frozen or not _plain_attribute(name) or \
                    node.layer.python_expression(self.rows[unit].facts, ["x"]) is not None:
                return False
            previous = node.name
        return True

    def _value_shape(self, name: str):
        return self.analysis.input if name == INPUT else self.rows[self.index[name]].output

    # -- describing one instance ---------------------------------------------------------------

    def _describe(self, tree: _Tree) -> _Body:
        containers: list[str] = []
        units = self._units(tree, "", containers)
        externals = self._externals(tree)
        relative = {name: f"@{k}" for k, name in enumerate(externals)}
        env = dict(tree.record.env) if tree.record is not None else {}
        body = _Body(tree, (), [], [], env, {}, {}, containers, externals)
        for k, name in enumerate(externals):
            body.shapes[f"@{k}"] = self._value_shape(name)
        body.units = self._describe_units(units, relative, body, "")
        body.signature = (len(externals), tuple(containers), tuple(body.units))
        body.channels = {name: shape[0] for name, shape in body.shapes.items()}
        return body

    def _describe_units(self, units, relative, body, prefix) -> list:
        """(relative name, kind, detail, inputs) per unit; `detail` is the structure, the
        values go to body.slots in the order the class writes them."""
        described = []
        for name, unit in units:
            own = prefix + name
            start = len(body.slots)
            if isinstance(unit, _Tree):
                inputs = tuple(relative[e] for e in self._externals(unit))
                output = self.nodes[unit.nodes[-1]].name
                if self._sequential(unit):
                    inner_relative = dict(relative)
                    inner = self._describe_units(self._units(unit), inner_relative, body,
                                                 own + ".")
                    detail = ("sequential", tuple(inner))
                    kind = "sequential"
                else:
                    klass, values = self._instance(unit)
                    for param, value in zip(klass.params, values):
                        body.slots.append(self._class_slot(unit, klass, param, value,
                                                           relative))
                    detail = ("class", klass.name)
                    kind = "class"
                relative[output] = own
                body.shapes[own] = self._value_shape(output)
            else:
                node, row = self.nodes[unit], self.rows[unit]
                inputs = tuple(relative[i] for i in node.inputs)
                relative[node.name] = own
                body.shapes[own] = row.output
                template = node.layer.python_expression(row.facts, [f"{{{k}}}" for k in
                                                                    range(len(inputs))])
                if template is not None:
                    detail = ("expression", template)
                else:
                    call = node.layer.torch_call(row.facts)
                    detail = ("call", self._call_signature(call, node, inputs, body),
                              node.layer.frozen)
                kind = "leaf"
            entry = (own, kind, detail, inputs)
            body.info[own] = entry
            body.slot_ranges[own] = (start, len(body.slots))
            described.append(entry)
        return described

    def _call_signature(self, call: TorchCall, node, inputs, body) -> tuple:
        self.uses.add(call.constructor)
        return (call.constructor, call.positional, call.defaults,
                tuple((key, self._value_signature(key, value, node, inputs, body))
                      for key, value in call.arguments))

    def _value_signature(self, key, value, node, inputs, body):
        if isinstance(value, TorchCall):
            return ("call", self._call_signature(value, node, inputs, body))
        if isinstance(value, tuple) and any(isinstance(v, (Given, Inferred, TorchCall))
                                            for v in value):
            return ("tuple", tuple(self._value_signature(key, v, node, inputs, body)
                                   for v in value))
        if isinstance(value, Given):
            slot = _Slot(value.value, key, hint=self._argument(node, value.field))
        elif isinstance(value, Inferred):
            slot = _Slot(value.value, key, channels_of=inputs[0])
        else:
            slot = _Slot(value, key)
        body.slots.append(slot)
        return "·"

    def _argument(self, node, name: str):
        """The spec's expression for the argument `name` of the node's call, if written."""
        call = self.calls.get(node.span)
        if call is None:
            return None
        cls = layer_class(node.layer.dsl_name)
        positional = [f.name for f in dataclasses.fields(cls) if not f.kw_only]
        for index, argument in enumerate(call.arguments):
            given = positional[index] if argument.keyword is None and index < len(positional) \
                else argument.keyword
            if given not in {f.name for f in dataclasses.fields(cls)}:
                given = ALIASES.get(given, given)
            if given == name:
                return argument.value
        return None

    def _class_slot(self, unit: _Tree, klass: _Class, param: str, value, relative) -> _Slot:
        key = klass.keys[klass.params.index(param)]
        if key is _INPUT_CHANNELS:
            return _Slot(value, param, channels_of=relative[self._externals(unit)[0]])
        record = unit.record
        if record.kind == "definition":
            call = self.calls.get(record.call)
            definition = self.definitions.get(record.source)
            if call is not None and definition is not None:
                names = [p.name for p in definition.parameters]
                for index, argument in enumerate(call.arguments):
                    given = names[index] if argument.keyword is None and index < len(names) \
                        else argument.keyword
                    if given == key:
                        return _Slot(value, param, hint=argument.value)
            return _Slot(value, param)
        return _Slot(value, param, hint=Name(key) if isinstance(key, str) else None)

    # -- classes -------------------------------------------------------------------------------

    def _key(self, tree: _Tree):
        record = tree.record
        return ("definition", record.source) if record.kind == "definition" else \
            ("group", record.source)

    def _instance(self, tree: _Tree):
        key = self._key(tree)
        if key not in self.classes:
            self._build_classes(key)
        return self.instance_of[tree.name]

    def _build_classes(self, key):
        trees = [t for t in self.trees.values() if t.record is not None and self._key(t) == key
                 and not self._sequential(t) and self._closed(t)]
        variants: dict = {}
        for tree in trees:
            body = self._describe(tree)
            variants.setdefault(body.signature, []).append(body)
        base = self._base_name(trees[0])
        classes = []
        for bodies in variants.values():
            name = self._unique(base)
            klass = self._parameterise(name, bodies, key)
            classes.append(klass)
        self.classes[key] = classes

    def _base_name(self, tree: _Tree) -> str:
        record = tree.record
        if record.kind == "definition":
            return _identifier(record.source, capital=True)
        word = re.sub(r"\d+$", "", tree.name.rsplit(".", 1)[-1]) or "block"
        owner = next((s.source for s in reversed(self.nodes[tree.nodes[0]].scopes)
                      if s.kind == "definition" and s.name != tree.name
                      and tree.name.startswith(s.name + ".")), None)
        camel = _identifier(word, capital=True)
        return _identifier(owner, capital=True) + camel if owner else camel

    def _unique(self, base: str) -> str:
        name, n = base, 1
        while name in self.names_taken:
            n += 1
            name = f"{base}{n}"
        self.names_taken.add(name)
        return name

    def _parameterise(self, name: str, bodies: list[_Body], key) -> _Class:
        keys: list = [_INPUT_CHANNELS] + list(bodies[0].env)
        taken = set(_RESERVED)
        params = []
        for k in keys:
            python = _python_name("in_channels" if k is _INPUT_CHANNELS else k, taken)
            params.append(python)
        envs = []
        for body in bodies:
            env = {p: body.env[k] for p, k in zip(params[1:], keys[1:])}
            env[params[0]] = body.channels["@0"]
            envs.append(env)
        renames = {k: p for k, p in zip(keys[1:], params[1:])}
        pool = [_renamed(op, renames) for op in self.pools.get(key[1], [])] \
            if key[0] == "definition" else \
            [_renamed(op, renames) for op in self._group_pool(key[1])]
        klass = _Class(name, params, keys, bodies, [], {})
        candidates_base = [Name(p) for p in params] + pool
        # The input's channels as the parameter that gives them in every instance, where one
        # does (SE(c, sq) reads c channels), else a parameter of their own.
        same = next((p for p in params[1:] if all(_same(env[p], env[params[0]])
                                                  for env in envs)), params[0])
        channel_cache: dict = {"@0": Name(same)}

        def fits(expression, values) -> bool:
            for env, value in zip(envs, values):
                try:
                    got = resolve(expression, env)
                except (ArchDSLError, TypeError, KeyError, ZeroDivisionError):
                    return False
                if not _same(got, value):
                    return False
            return True

        def channels(ref: str):
            if ref not in channel_cache:
                values = [body.channels.get(ref) for body in bodies]
                if any(v is None for v in values):
                    channel_cache[ref] = None
                    return None
                found = None
                candidates = []
                unit = bodies[0].info.get(ref)
                if unit is not None and unit[1] == "sequential":
                    candidates.append(channels(unit[2][1][-1][0]))
                elif unit is not None:
                    candidates += _unit_hints(bodies[0], unit)
                    candidates += [channels(i) for i in unit[3][:1]]
                sums = []
                if unit is not None and unit[1] == "leaf" and len(unit[3]) > 1:
                    parts = [channels(i) for i in unit[3]]
                    if all(p is not None for p in parts):
                        total = parts[0]
                        for p in parts[1:]:
                            total = Operation("+", (total, p), None)
                        sums.append(total)
                if len(set(values)) == 1:
                    candidates.append(values[0])
                candidates += [Name(p) for p in params] + sums + pool
                for candidate in candidates:
                    if candidate is not None and fits(_renamed(candidate, renames), values):
                        found = _renamed(candidate, renames)
                        break
                channel_cache[ref] = found
            return channel_cache[ref]

        extras = []
        for index, slot in enumerate(bodies[0].slots):
            values = [body.slots[index].value for body in bodies]
            candidates = []
            if slot.hint is not None:
                candidates.append(_renamed(slot.hint, renames))
            if slot.channels_of is not None and channels(slot.channels_of) is not None:
                candidates.append(channels(slot.channels_of))
            if all(_same(v, values[0]) for v in values):
                candidates.append(values[0])  # a constant, None included
            candidates += candidates_base
            chosen = next((c for c in candidates if fits(c, values)), _MISSING)
            if chosen is _MISSING:  # no expression gives every instance's value: a parameter
                extra = _python_name(slot.name, taken | set(params))
                params.append(extra)
                keys.append(("extra", extra))
                extras.append(extra)
                for env, value in zip(envs, values):
                    env[extra] = value
                chosen = Name(extra)
            klass.expressions.append(chosen)
        used = set()
        for expression in klass.expressions:
            used |= _names(expression)
        kept = [i for i, p in enumerate(params) if p in used]
        klass.params = [params[i] for i in kept]
        klass.keys = [keys[i] for i in kept]
        for ref in bodies[0].info:
            channels(ref)
        klass.channels = channel_cache
        klass.envs = envs
        for body, env in zip(bodies, envs):
            self.instance_of[body.tree.name] = (klass, [env[p] for p in klass.params])
        return klass

    def _group_pool(self, span) -> list:
        found = self.groups.get(span)
        pool: list = []
        if found is not None:
            self._operations(found[0], pool)
        return pool

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
        docstring = (f'"""{Path(self.analysis.name).name} as PyTorch code, written by archdsl '
                     f'export."""')
        blocks = [docstring + "\n" + "\n".join(imports)] + [text]
        return "\n\n\n".join(blocks) + "\n"

    def _parameterise_root(self, body: _Body) -> _Class:
        klass = _Class(self.class_name, [], [], [body], [], {})
        channel_values = {}
        for ref, shape in body.shapes.items():
            channel_values[ref] = shape[0] if shape else None
        for slot in body.slots:
            klass.expressions.append(slot.value)
        klass.channels = channel_values
        klass.envs = [{}]
        return klass

    def _order_classes(self, classes: list[_Class]) -> list[_Class]:
        """Each class after the classes it builds."""
        by_name = {k.name: k for k in classes}
        done, ordered = set(), []

        def visit(klass):
            if klass.name in done:
                return
            done.add(klass.name)
            for dependency in _class_references(klass.bodies[0].units):
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
        text = MODULES.read_text()
        tree = ast.parse(text)
        found = {n.name: ast.get_source_segment(text, n) for n in tree.body
                 if isinstance(n, ast.ClassDef)}
        return [found[name] for name in wanted]

    def _definition_header(self, klass: _Class) -> str | None:
        """`def Body(c, s)` of the spec, for a definition's class."""
        record = klass.bodies[0].tree.record
        if record is None:
            return None
        if record.kind != "definition":
            return None
        definition = self.definitions.get(record.source)
        if definition is None:
            return None
        params = ", ".join(p.name for p in definition.parameters)
        if not params:
            return f"The spec's def {definition.name}."
        # parameters the class does without: the same in all its instances (a repeat count)
        fixed = [f"{k}={_literal(v)}" for k, v in klass.bodies[0].env.items()
                 if k not in klass.keys and isinstance(v, (int, float))
                 and all(_same(b.env.get(k), v) for b in klass.bodies)]
        for_which = f" with {', '.join(fixed)}" if fixed and len(
            self.classes.get(("definition", definition.name), [])) > 1 else ""
        return f"The spec's def {definition.name}({params}){for_which}."

    def _class_text(self, klass: _Class, top: bool = False) -> str:
        body = klass.bodies[0]
        writer = _ClassWriter(self, klass)
        lines = [f"class {klass.name}(nn.Module):"]
        header = self._definition_header(klass)
        if header:
            lines += [f'    """{header}"""', ""]
        if top:
            shape = "×".join(map(str, self.analysis.input))
            lines.append(f'    """{Path(self.analysis.name).name}: input N×{shape}, output '
                         f'N×{"×".join(map(str, self.analysis.output))}."""')
            lines.append("")
        params = "".join(", " + p for p in klass.params)
        lines.append(f"    def __init__(self{params}):")
        lines.append("        super().__init__()")
        lines += writer.init_lines()
        lines.append("")
        externals = ["x"] + [_python_name("skip" if len(body.externals) == 2 else f"skip{k}",
                                          set(klass.params) | _RESERVED)
                             for k in range(1, len(body.externals))]
        lines.append(f"    def forward(self, {', '.join(externals)}):")
        lines += writer.forward_lines(externals)
        return "\n".join(lines)


_INPUT_CHANNELS = ("input channels",)
_MISSING = object()


class _ClassWriter:
    """Writes one class's __init__ and forward from its first instance and its expressions."""

    def __init__(self, writer: _Writer, klass: _Class):
        self.writer, self.klass = writer, klass
        self.body = klass.bodies[0]
        self.slot = 0

    def expression(self) -> str:
        value = self.klass.expressions[self.slot]
        self.slot += 1
        return _render(value, set(self.klass.params))

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
                text = _render(channels, set(self.klass.params)) if channels is not None and \
                    _names(channels) <= set(self.klass.params) else "C"
                text = text.replace(" ", "")
                parts.append(f"({text})" if "+" in text or "-" in text else text)
            else:
                parts.append(_spatial(values, inputs, axis, len(first), self.klass))
        return "×".join(parts)

    def init_lines(self) -> list[str]:
        lines = []
        for container in self.body.containers:
            lines.append(f"        {_attribute('self', container)} = nn.Module()")
        for name, kind, detail, _ in self.body.units:
            if detail[0] == "expression":
                continue
            target = _attribute("self", name)
            comment = self.shape(name)
            lines += _layout(f"        {target} = ", self.module(detail, name, 8), comment)
            if detail[0] == "call" and detail[2]:
                lines.append(f"        {target}.requires_grad_(False)  # frozen")
        return lines

    def module(self, detail, name: str, indent: int):
        """The constructor as a layout tree: (head, [arguments], tail) or text."""
        if detail[0] == "call":
            return self.call(detail[1])
        if detail[0] == "class":
            klass = self.class_named(detail[1])
            return (f"{klass.name}(", [self.expression() for _ in klass.params], ")")
        entries = []
        for inner_name, _, inner_detail, _ in detail[1]:
            entry = self.module(inner_detail, inner_name, indent + 4)
            key = inner_name[len(name) + 1:]
            entries.append((f'("{key}", ', entry, ")", self.shape(inner_name)))
        return (_SEQUENTIAL, entries, "]))")

    def class_named(self, name: str) -> _Class:
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
            if key in defaults and text == _render(defaults[key], set()):
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
            return _flat(self.call(signature[1]))
        inner = [self.value(v) for v in signature[1]]
        return "(" + ", ".join(inner) + ("," if len(inner) == 1 else "") + ")"

    def forward_lines(self, externals: list[str]) -> list[str]:
        units = self.body.units
        readers: dict[str, list[int]] = {}
        for i, (_, _, _, inputs) in enumerate(units):
            for ref in inputs:
                readers.setdefault(ref, []).append(i)
        last = units[-1][0]
        alias = {}
        for i, (name, kind, detail, inputs) in enumerate(units):
            if detail[0] == "expression" and detail[1] == "{0}":
                alias[name] = inputs[0]

        def resolve_alias(ref):
            while ref in alias:
                ref = alias[ref]
            return ref

        def merge(detail):
            return detail[0] == "expression" and detail[1] != "{0}" and \
                re.search(r"\{1\}", detail[1]) is not None

        inlined: dict[int, int] = {}  # unit -> the unit its expression is written into
        for m, (name, kind, detail, inputs) in enumerate(units):
            if not merge(detail):
                continue
            for j in range(m - 1, -1, -1):
                unit_name = units[j][0]
                if unit_name in alias:
                    continue
                if readers.get(unit_name, []) == [m] and unit_name != last and \
                        not merge(units[j][2]):
                    inlined[j] = m
                else:
                    break
        for m, (name, kind, detail, inputs) in enumerate(units):
            if not merge(detail) or name == last:
                continue
            users = readers.get(name, [])
            nxt = m + 1
            while nxt < len(units) and units[nxt][0] in alias:
                nxt += 1
            if users == [nxt] and units[nxt][2][0] != "expression" and \
                    len(units[nxt][3]) == 1:
                inlined[m] = nxt
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
        taken = set(externals) | set(self.klass.params) | _RESERVED
        for i, (name, kind, detail, inputs) in enumerate(units):
            if name in alias:
                continue
            arguments = [texts[resolve_alias(ref)] for ref in inputs]
            if detail[0] == "expression":
                text = detail[1].format(*arguments)
            else:
                text = f"{_attribute('self', name)}({', '.join(arguments)})"
            if i in inlined:
                texts[name] = text
                continue
            comment = self.shape(name)
            if i == len(units) - 1 or resolve_alias(last) == name:
                lines += _layout("        return ", text, comment)
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
                target = _python_name(name.replace(".", "_"), taken)
                taken.add(target)
            texts[name] = target
            lines += _layout(f"        {target} = ", text, comment)
        lines.append(f"        return {texts[resolve_alias(last)]}")
        return lines


# ---------------------------------------------------------------------------------------------
# Helpers


def _relative(name: str, prefix: str) -> str:
    return name[len(prefix) + 1:] if prefix else name


def _collect_operations(value, pool: list):
    if isinstance(value, Operation):
        if value not in pool:
            pool.append(value)
        for operand in value.operands:
            _collect_operations(operand, pool)
    elif isinstance(value, tuple):
        for v in value:
            _collect_operations(v, pool)


def _unit_hints(body: _Body, unit) -> list:
    """A leaf's integer arguments as the spec writes them: candidates for its output channels."""
    name, kind, detail, _ = unit
    if kind != "leaf" or detail[0] != "call":
        return []
    first, end = body.slot_ranges[name]
    return [slot.hint for slot in body.slots[first:end] if slot.hint is not None
            and isinstance(slot.value, int) and not isinstance(slot.value, bool)]


def _class_references(units) -> list[str]:
    found = []
    for _, _, detail, _ in units:
        if detail[0] == "class":
            found.append(detail[1])
        elif detail[0] == "sequential":
            found += _class_references(detail[1])
    return found


def _same(a, b) -> bool:
    if isinstance(a, tuple) or isinstance(b, tuple):
        return isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) and \
            all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b and type(a) is type(b)
    return type(a) is type(b) and a == b


def _names(value) -> set[str]:
    if isinstance(value, Name):
        return {str(value)}
    if isinstance(value, Operation):
        return set().union(*(_names(v) for v in value.operands))
    if isinstance(value, tuple):
        return set().union(*(_names(v) for v in value)) if value else set()
    return set()


def _renamed(value, renames: dict):
    if isinstance(value, Name):
        return Name(renames.get(str(value), str(value)))
    if isinstance(value, Operation):
        return Operation(value.operator, tuple(_renamed(v, renames) for v in value.operands),
                         value.span)
    if isinstance(value, tuple):
        return tuple(_renamed(v, renames) for v in value)
    return value


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2, "neg": 3}


def _render(value, params: set[str], outer: int = 0, right: bool = False) -> str:
    if isinstance(value, Name):
        return str(value) if str(value) in params else _literal(str(value))
    if isinstance(value, Operation):
        level = _PRECEDENCE[value.operator]
        if value.operator == "neg":
            text = "-" + _render(value.operands[0], params, level)
        else:
            left, right_operand = value.operands
            text = (f"{_render(left, params, level)} {value.operator} "
                    f"{_render(right_operand, params, level, right=True)}")
        return f"({text})" if level < outer or (right and level == outer) else text
    if isinstance(value, tuple):
        inner = [_render(v, params) for v in value]
        return "(" + ", ".join(inner) + ("," if len(inner) == 1 else "") + ")"
    return _literal(value)


def _literal(value) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float) and math.isfinite(value) and value == int(value) and \
            abs(value) < 1e16:
        return repr(value)
    return repr(value)


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


def _identifier(word: str, capital: bool = False) -> str:
    parts = [p for p in re.split(r"[^0-9A-Za-z_]+", word) if p]
    text = "_".join(parts) or "block"
    if capital:
        text = "".join(p[:1].upper() + p[1:] for p in text.split("_") if p)
    if text[0].isdigit():
        text = "Block" + text if capital else "_" + text
    return text


def _python_name(word: str, taken: set[str]) -> str:
    name = _identifier(word)
    while keyword.iskeyword(name) or name in taken:
        name += "_"
    return name


def _plain_attribute(name: str) -> bool:
    """A name a submodule can have as an attribute (and in an nn.Sequential)."""
    return name.isidentifier() and not keyword.iskeyword(name) and \
        name not in _MODULE_ATTRIBUTES


def _attribute(owner: str, path: str) -> str:
    text = owner
    for part in path.split("."):
        if _plain_attribute(part):
            text += "." + part
        else:
            text += f'._modules["{part}"]'
    return text


def _flat(tree) -> str:
    if isinstance(tree, str):
        return tree
    head, items, tail = tree
    return head + ", ".join(_flat(i) for i in items) + tail


def _layout(prefix: str, tree, comment: str, suffix: str = "") -> list[str]:
    """`prefix` + the constructor or expression + `suffix`, with `# comment`, within LINE
    columns: on one line where it fits (the comment above it where only the code does), else
    broken after its first parenthesis, its arguments on one line, else one a line."""
    indent = len(prefix) - len(prefix.lstrip())
    note = f"  # {comment}" if comment else ""
    above = [" " * indent + f"# {comment}"] if comment else []
    if not isinstance(tree, str) and tree[0] == _SEQUENTIAL:
        return _sequential_lines(prefix, tree, comment, indent, suffix)
    flat = prefix + _flat(tree) + suffix
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
    flat_items = [_flat(i) for i in items]
    joined = inner + ", ".join(flat_items) + tail + suffix
    if len(joined) + len(note) <= LINE:
        return [prefix + head, joined + note]
    if len(joined) <= LINE:
        return above + [prefix + head, joined]
    lines = [prefix + head]
    for k, item in enumerate(flat_items):
        lines.append(inner + item + (tail + suffix if k == len(flat_items) - 1 else ","))
    return above + lines


_SEQUENTIAL = "nn.Sequential(OrderedDict(["


def _sequential_lines(prefix: str, tree, comment: str, indent: int, end: str = "") -> list[str]:
    """An nn.Sequential of an OrderedDict: one entry a line, each with its shape."""
    head, entries, tail = tree
    lines = [prefix + head]
    inner = " " * (indent + 4)
    for entry_head, entry, entry_tail, entry_comment in entries:
        lines += _layout(inner + entry_head, entry, entry_comment, entry_tail + ",")
    lines.append(" " * indent + tail + end)
    return lines
