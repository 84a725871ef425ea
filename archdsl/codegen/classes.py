"""Each scope written as a class: its instances described (structure and values), grouped by
structure into classes, and each value written as an expression over the class's parameters
that gives it in every instance, or else a parameter of its own."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from ..analysis import Analysis
from ..binding import resolve
from ..errors import ArchDSLError
from ..ir import Call, Chain, Group, Name, Named, Operation, Parallel, Repeat
from ..layers import layer_class
from ..layers.arguments import ALIASES
from ..layers.torch_call import Given, Inferred, TorchCall
from .scopes import Scopes, ScopeTree
from .text import (RESERVED, collect_operations, helper_sources, identifier, names_in, python_name, renamed,
                   same_value)

@dataclass(frozen=True)
class Slot:
    """A value the class's __init__ writes, in one instance."""

    value: object
    name: str  # the argument's name, for a parameter made of it
    hint: object = None  # the spec's expression for it, in the scope's words
    channels_of: str | None = None  # the value (relative name) whose channels it is


@dataclass
class Instance:
    """One instance of a scope written as a class: its structure and its values."""

    tree: ScopeTree
    signature: tuple
    units: list  # (relative name, kind, detail, inputs) per unit
    slots: list[Slot]
    env: dict
    channels: dict  # relative value name -> channels, in this instance
    shapes: dict  # relative value name -> shape
    containers: list[str]
    externals: list[str]  # the names (global) of the values read from outside, main first
    info: dict = field(default_factory=dict)  # relative name -> unit, at any depth
    slot_ranges: dict = field(default_factory=dict)  # relative name -> (first slot, end)


@dataclass
class WrittenClass:
    name: str
    params: list[str]  # the Python names of __init__'s parameters, in order
    keys: list[str]  # the env names they stand for
    bodies: list[Instance]
    expressions: list  # per slot
    channels: dict  # relative value name -> expression or None
    envs: list = field(default_factory=list)  # per instance: parameter -> value
    defaults: dict = field(default_factory=dict)  # parameter -> its default, at the end


class Classes(Scopes):
    """The classes of the file and, per scope written as one, its class and arguments."""

    def __init__(self, analysis: Analysis, class_name: str):
        super().__init__(analysis)
        self.class_name = class_name
        spec = analysis.spec
        self.definitions = {d.name: d for d in spec.definitions} if spec else {}
        bodies = [spec.body, *(d.body.body for d in spec.definitions)] if spec else []
        steps = [step for body in bodies for step in _steps(body)]
        self.calls = {step.span: step for step in steps if isinstance(step, Call)}
        self.groups = {step.span: step for step in steps if isinstance(step, (Group, Repeat))}
        # the arithmetic a definition writes: candidates for the values of its class
        self.pools = {d.name: _operations(d.body.body, [p.default for p in d.parameters])
                      for d in self.definitions.values()}
        self.classes: dict = {}  # class key -> [WrittenClass]
        self.instance_of: dict = {}  # tree name -> (WrittenClass, values)
        # the names the file's imports and copied helper classes take
        self.names_taken = {class_name, *helper_sources(), "StochasticDepth", "OrderedDict"}
        self.uses: set[str] = set()  # constructors and helpers the file needs

    # -- describing one instance ---------------------------------------------------------------

    def _describe(self, tree: ScopeTree) -> Instance:
        containers: list[str] = []
        units = self._units(tree, "", containers)
        externals = self._externals(tree)
        relative = {name: f"@{k}" for k, name in enumerate(externals)}
        env = dict(tree.record.env) if tree.record is not None else {}
        body = Instance(tree, (), [], [], env, {}, {}, containers, externals)
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
            if isinstance(unit, ScopeTree):
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
            slot = Slot(value.value, key, hint=self._argument(node, value.field))
        elif isinstance(value, Inferred):
            slot = Slot(value.value, key, channels_of=inputs[0])
        else:
            slot = Slot(value, key)
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

    def _class_slot(self, unit: ScopeTree, klass: WrittenClass, param: str, value,
                    relative) -> Slot:
        key = klass.keys[klass.params.index(param)]
        if key is _INPUT_CHANNELS:
            return Slot(value, param, channels_of=relative[self._externals(unit)[0]])
        record = unit.record
        if record.kind == "definition":
            call = self.calls.get(record.call)
            definition = self.definitions.get(record.source)
            if call is not None and definition is not None:
                return Slot(value, param, hint=_call_expressions(definition, call).get(key))
            return Slot(value, param)
        return Slot(value, param, hint=Name(key) if isinstance(key, str) else None)

    # -- classes -------------------------------------------------------------------------------

    def _key(self, tree: ScopeTree):
        record = tree.record
        return ("definition", record.source) if record.kind == "definition" else \
            ("group", record.source)

    def _instance(self, tree: ScopeTree):
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

    def _base_name(self, tree: ScopeTree) -> str:
        record = tree.record
        if record.kind == "definition":
            return identifier(record.source, capital=True)
        word = re.sub(r"\d+$", "", tree.name.rsplit(".", 1)[-1]) or "block"
        owner = next((s.source for s in reversed(self.nodes[tree.nodes[0]].scopes)
                      if s.kind == "definition" and s.name != tree.name
                      and tree.name.startswith(s.name + ".")), None)
        camel = identifier(word, capital=True)
        return identifier(owner, capital=True) + camel if owner else camel

    def _unique(self, base: str) -> str:
        name, n = base, 1
        while name in self.names_taken:
            n += 1
            name = f"{base}{n}"
        self.names_taken.add(name)
        return name

    def _parameterise(self, name: str, bodies: list[Instance], key) -> WrittenClass:
        keys: list = [_INPUT_CHANNELS] + list(bodies[0].env)
        taken = set(RESERVED)
        params = []
        for k in keys:
            python = python_name("in_channels" if k is _INPUT_CHANNELS else k, taken)
            params.append(python)
        envs = []
        for body in bodies:
            env = {p: body.env[k] for p, k in zip(params[1:], keys[1:])}
            env[params[0]] = body.channels["@0"]
            envs.append(env)
        renames = {k: p for k, p in zip(keys[1:], params[1:])}
        pool = [renamed(op, renames) for op in self.pools.get(key[1], [])] \
            if key[0] == "definition" else \
            [renamed(op, renames) for op in self._group_pool(key[1])]
        klass = WrittenClass(name, params, keys, bodies, [], {})
        candidates_base = [Name(p) for p in params] + pool
        # The input's channels as the parameter that gives them in every instance, where one
        # does (SE(c, sq) reads c channels), else a parameter of their own; not from one
        # value, which may agree by chance (a kernel of 3 on 3 channels).
        varied = len({env[params[0]] for env in envs}) > 1
        same = next((p for p in params[1:] if varied and all(same_value(env[p], env[params[0]])
                                                             for env in envs)), params[0])
        channel_cache: dict = {"@0": Name(same)}

        def fits(expression, values) -> bool:
            for env, value in zip(envs, values):
                try:
                    got = resolve(expression, env)
                except (ArchDSLError, TypeError, KeyError, ZeroDivisionError):
                    return False
                if not same_value(got, value):
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
                    if candidate is not None and fits(renamed(candidate, renames), values):
                        found = renamed(candidate, renames)
                        break
                channel_cache[ref] = found
            return channel_cache[ref]

        extras = []
        for index, slot in enumerate(bodies[0].slots):
            values = [body.slots[index].value for body in bodies]
            candidates = []
            if slot.hint is not None:
                candidates.append(renamed(slot.hint, renames))
            if slot.channels_of is not None and channels(slot.channels_of) is not None:
                candidates.append(channels(slot.channels_of))
            if all(same_value(v, values[0]) for v in values):
                candidates.append(values[0])  # a constant, None included
            candidates += candidates_base
            chosen = next((c for c in candidates if fits(c, values)), _MISSING)
            if chosen is _MISSING:  # no expression gives every instance's value: a parameter
                extra = python_name(slot.name, taken | set(params))
                params.append(extra)
                keys.append(("extra", extra))
                extras.append(extra)
                for env, value in zip(envs, values):
                    env[extra] = value
                chosen = Name(extra)
            klass.expressions.append(chosen)
        used = set()
        for expression in klass.expressions:
            used |= names_in(expression)
        kept = [i for i, p in enumerate(params) if p in used]
        klass.params = [params[i] for i in kept]
        klass.keys = [keys[i] for i in kept]
        klass.defaults = self._defaults(klass, key)
        for ref in bodies[0].info:
            channels(ref)
        klass.channels = channel_cache
        klass.envs = envs
        for body, env in zip(bodies, envs):
            self.instance_of[body.tree.name] = (klass, [env[p] for p in klass.params])
        return klass

    def _defaults(self, klass: WrittenClass, key) -> dict:
        """The definition's literal defaults (`s=1` of `def ConvBN(c, k, s=1)`) for the
        parameters at the end of __init__'s, which Python lets have them."""
        definition = self.definitions.get(key[1]) if key[0] == "definition" else None
        if definition is None:
            return {}
        given = {p.name: p.default for p in definition.parameters if p.has_default
                 and isinstance(p.default, (int, float, str)) and not isinstance(p.default, Name)}
        defaults = {}
        for param, k in reversed(list(zip(klass.params, klass.keys))):
            if not isinstance(k, str) or k not in given:
                break
            defaults[param] = given[k]
        return dict(reversed(list(defaults.items())))

    def _group_pool(self, span) -> list:
        return _operations(self.groups[span]) if span in self.groups else []

    def _parameterise_root(self, body: Instance) -> WrittenClass:
        klass = WrittenClass(self.class_name, [], [], [body], [], {})
        channel_values = {}
        for ref, shape in body.shapes.items():
            channel_values[ref] = shape[0] if shape else None
        for slot in body.slots:
            klass.expressions.append(slot.value)
        klass.channels = channel_values
        klass.envs = [{}]
        return klass



_INPUT_CHANNELS = ("input channels",)
_MISSING = object()



def _steps(step):
    """The step and every step inside it."""
    yield step
    if isinstance(step, Chain):
        children = step.steps
    elif isinstance(step, (Group, Named, Repeat)):
        children = (step.body,)
    elif isinstance(step, Parallel):
        children = step.branches
    else:
        children = ()
    for child in children:
        yield from _steps(child)


def _operations(step, more=()) -> list:
    """The arithmetic (`c*4`, `k//2`) in the arguments of the calls inside `step`, and in
    `more`, each once."""
    pool: list = []
    for inner in _steps(step):
        if isinstance(inner, Call):
            for argument in inner.arguments:
                collect_operations(argument.value, pool)
    for value in more:
        collect_operations(value, pool)
    return pool


def _call_expressions(definition, call) -> dict:
    """A definition's parameters as the call's expressions: those given, and the defaults of
    the others in their terms (B(c) of `def B(c, d=c*2)` gives d the call's c*2)."""
    names = [p.name for p in definition.parameters]
    given = {}
    for index, argument in enumerate(call.arguments):
        name = names[index] if argument.keyword is None and index < len(names) \
            else argument.keyword
        given[name] = argument.value
    expressions: dict = {}
    for parameter in definition.parameters:
        if parameter.name in given:
            expressions[parameter.name] = given[parameter.name]
        elif parameter.has_default:
            expressions[parameter.name] = _substituted(parameter.default, expressions)
    return expressions


def _substituted(value, expressions: dict):
    if isinstance(value, Name):
        return expressions.get(str(value), value)
    if isinstance(value, Operation):
        return Operation(value.operator, tuple(_substituted(v, expressions)
                                               for v in value.operands), value.span)
    if isinstance(value, tuple):
        return tuple(_substituted(v, expressions) for v in value)
    return value


def _unit_hints(body: Instance, unit) -> list:
    """A leaf's integer arguments as the spec writes them: candidates for its output channels."""
    name, kind, detail, _ = unit
    if kind != "leaf" or detail[0] != "call":
        return []
    first, end = body.slot_ranges[name]
    return [slot.hint for slot in body.slots[first:end] if slot.hint is not None
            and isinstance(slot.value, int) and not isinstance(slot.value, bool)]


def class_references(units) -> list[str]:
    found = []
    for _, _, detail, _ in units:
        if detail[0] == "class":
            found.append(detail[1])
        elif detail[0] == "sequential":
            found += class_references(detail[1])
    return found


