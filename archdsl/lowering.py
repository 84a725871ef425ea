"""Lowering: a Spec's steps, repeats, branches and definitions -> a named graph of layer nodes.

Names follow the source: a base name used once in a scope stays bare (`flatten`), one used
several times is numbered in order (`conv1`, `conv2`); groups, definitions and `as` names open
scopes (`block1.conv`, `layer2.down.body.conv1`).
"""
from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from typing import Any

from .binding import definition_values, resolve, resolve_arguments
from .errors import ArchDSLError, ArgumentError, Span, call_site
from .ir import (INPUT, Call, Chain, Definition, Group, Named, Node, Parallel, Parameter, Repeat,
                 Scope, Spec, Step)
from .layers import bind_layer, layer_class, layer_names, torch_order
from .layers.arguments import bind_arguments, suggest

MAX_LAYERS = 10_000  # beyond this, lowering would take minutes, then memory
MAX_DEPTH = 100  # nested scopes (groups, repeats, definitions); deeper exhausts the recursion


def lower(spec: Spec) -> tuple[Node, ...]:
    """Expand the spec into nodes in execution order; every error carries the span at fault."""
    return _Lowering(spec).run()


class _Lowering:
    def __init__(self, spec: Spec):
        self.spec = spec
        self.definitions: dict[str, Definition] = {}
        for definition in spec.definitions:
            if definition.name in self.definitions:
                raise ArchDSLError(f"{definition.name!r} is defined twice", definition.name_span)
            if definition.name in layer_names():
                raise ArchDSLError(f"{definition.name!r} is a layer; give the definition another "
                                   f"name", definition.name_span)
            self.definitions[definition.name] = definition
        self.nodes: list[Node] = []
        self.results: dict[str, str] = {}  # `as` names -> the node holding that output
        self.expanding: list[str] = []  # definitions being expanded, to catch recursion
        self.call_sites: list[Span] = []  # the calls of those definitions, for nodes and errors
        self.scopes: list[Scope] = []  # the scopes being lowered, outermost first

    def run(self) -> tuple[Node, ...]:
        self.chain(self.spec.body, "", INPUT, {})
        return tuple(self.nodes)

    def chain(self, chain: Chain, prefix: str, source: str, env: dict) -> str:
        """Lower the steps one after another from `source`; return the last node's name."""
        if prefix.count(".") > MAX_DEPTH:
            raise ArchDSLError(f"the network nests more than {MAX_DEPTH} scopes deep (groups, "
                               f"repeats and definitions)", chain.span)
        items = []  # (base name, step, role, env): role is "step", "branch" or "merge"
        for step in chain.steps:
            if isinstance(step, Parallel):
                items += [(_base_name(b, "branch"), b, "branch", env) for b in step.branches]
                items.append((step.merge.lower(), step, "merge", env))
            elif isinstance(step, Repeat):
                items += [(_base_name(step.body), step.body, "step", copy_env)
                          for copy_env in self.copies(step, env)]
            else:
                items.append((_base_name(step), step, "step", env))
        names = _scope_names(items, prefix)
        current, branch_outputs = source, []
        for (_, step, role, step_env), name in zip(items, names):
            name = prefix + name
            if role == "branch":
                branch_outputs.append(self.step(step, name, current, step_env))
            elif role == "merge":
                current = self.add(name, layer_class(step.merge)(), step.span,
                                   tuple(branch_outputs))
                branch_outputs = []
            else:
                current = self.step(step, name, current, step_env)
        return current

    def copies(self, repeat: Repeat, env: dict) -> list[dict]:
        """The environment of each copy of a repeat: with `for k`, k bound to 0, 1, …"""
        count = self.count(repeat, env)
        if repeat.index is None:
            return [env] * count
        if repeat.index in env:
            raise ArchDSLError(f"the repeat index {repeat.index!r} hides the parameter or outer "
                               f"index of that name", repeat.index_span,
                               hint="give the index another name")
        return [{**env, repeat.index: k} for k in range(count)]

    def step(self, step: Step, name: str, source: str, env: dict) -> str:
        if isinstance(step, Named):
            output = self.step(step.body, name, source, env)
            self.results[step.name] = output
            return output
        if isinstance(step, Group):
            return self.scoped(Scope(name, "group", step.span, _items(env)), step.body, source,
                               env)
        if isinstance(step, Repeat):  # only as the body of `as`: the repeats form one scope
            return self.scoped(Scope(name, "repeat", step.span, _items(env)),
                               Chain((step,), step.span), source, env)
        arguments = resolve_arguments(step.arguments, env)
        call = step if arguments is step.arguments else dataclasses.replace(step,
                                                                              arguments=arguments)
        if call.name in self.definitions:
            return self.expand(self.definitions[call.name], call, name, source)
        layer = bind_layer(call)
        references = tuple(self.result(ref, call.span) for ref in layer.references())
        return self.add(name, layer, call.span, (source, *references), torch_order(call))

    def expand(self, definition: Definition, call: Call, name: str, source: str) -> str:
        if definition.name in self.expanding:
            cycle = " -> ".join(self.expanding[self.expanding.index(definition.name):]
                                + [definition.name])
            raise ArchDSLError(f"definition {definition.name!r} uses itself: {cycle}",
                               call.name_span, hint="a definition cannot expand into itself")
        schema, usage = _schema(definition.name, definition.parameters)
        given, _ = bind_arguments(schema, definition.name, usage, call.arguments, call.span)
        self.expanding.append(definition.name)
        self.call_sites.append(call.span)
        try:
            env = definition_values(definition, given)
            return self.scoped(Scope(name, "definition", definition.name, _items(env), call.span),
                               definition.body.body, source, env)
        except ArchDSLError as error:
            # The error points into the definition; say which of its calls got there.
            error.notes.append("expanded from " + call_site(self.spec.text, call.span))
            raise
        finally:
            self.expanding.pop()
            self.call_sites.pop()

    def scoped(self, scope: Scope, chain: Chain, source: str, env: dict) -> str:
        self.scopes.append(scope)
        try:
            return self.chain(chain, scope.name + ".", source, env)
        finally:
            self.scopes.pop()

    def add(self, name: str, layer, span: Span, inputs: tuple[str, ...], order=None) -> str:
        if len(self.nodes) >= MAX_LAYERS:
            raise ArchDSLError(f"the network expands to more than {MAX_LAYERS:,} layers", span)
        self.nodes.append(Node(name, layer, span, inputs, tuple(self.call_sites), order,
                               tuple(self.scopes)))
        return name

    def result(self, word: str, span: Span) -> str:
        if word not in self.results:
            raise ArgumentError(f"no result is named {word!r}{suggest(word, self.results)}", span,
                                hint="name a result with 'as', e.g. Double(64) as enc1")
        return self.results[word]

    def count(self, repeat: Repeat, env: dict) -> int:
        count = resolve(repeat.count, env)
        if isinstance(count, bool) or not isinstance(count, int):
            raise ArgumentError(f"repeat count must be an integer, got {count!r}",
                                repeat.count_span,
                                hint=f"'*' before a number repeats; to multiply by a branch, "
                                     f"bracket it: * [{count}]" if isinstance(count, str)
                                else None)
        if count < 1:
            raise ArgumentError(f"repeat count must be at least 1, got {count}",
                                repeat.count_span)
        if count > MAX_LAYERS:
            raise ArchDSLError(f"this repeat expands to {count:,} copies; at most "
                               f"{MAX_LAYERS:,} layers are supported", repeat.count_span)
        return count


def _items(env: dict) -> tuple[tuple[str, object], ...]:
    return tuple(env.items())


@functools.lru_cache(maxsize=256)
def _schema(name: str, parameters: tuple[Parameter, ...]) -> tuple[type, str]:
    """A definition's parameters as a dataclass, to bind calls like a layer's, and its usage.
    Made once per definition: a network expands the same block many times. Defaults are
    resolved per call (binding.definition_values); the schema only marks them optional."""
    schema = dataclasses.make_dataclass(name, [
        (p.name, Any, dataclasses.field(default=None)) if p.has_default else (p.name, Any)
        for p in parameters])
    usage = f"{name}(" + ", ".join(p.name + ("=…" if p.has_default else "") for p in parameters)
    return schema, usage + ")"


def _scope_names(items, prefix: str) -> list[str]:
    """The names of one scope's steps. A user's `as` name is kept as written and must be unique
    in its scope; a generated name is numbered (`conv1`, `conv2`) past every name the user took,
    so that no two rows, and no row and the network's input, ever share a name."""
    taken: dict[str, Span] = {}
    if not prefix:
        taken[INPUT] = None
    for step in {id(step): step for _, step, _, _ in items}.values():
        if not isinstance(step, Named):
            continue
        if step.name == INPUT and not prefix:
            raise ArchDSLError(f"{INPUT!r} names the network's input; choose another name",
                               step.name_span)
        if step.name in taken:
            error = ArchDSLError(f"the name {step.name!r} is used twice in this scope",
                                 step.name_span, hint="give each result its own name")
            first = taken[step.name]
            error.notes.append(f"first used at {first.line}:{first.column}")
            raise error
        taken[step.name] = step.name_span
    generated = Counter(base for base, step, _, _ in items if not isinstance(step, Named))
    bare = {base for base, count in generated.items() if count == 1 and base not in taken}
    taken.update(dict.fromkeys(bare))
    seen, names = Counter(), []
    for base, step, _, _ in items:
        if isinstance(step, Named) or base in bare:
            names.append(base)
            continue
        seen[base] += 1
        while f"{base}{seen[base]}" in taken:
            seen[base] += 1
        names.append(f"{base}{seen[base]}")
    return names


def _base_name(step: Step, group_word: str = "block") -> str:
    if isinstance(step, Named):
        return step.name
    if isinstance(step, (Group, Repeat)):
        return group_word
    return step.name.lower()
