"""The value boundary: IR values (bare words, arithmetic, exact bounds) -> plain builtins.

Everything that leaves binding (a layer's fields, a definition's parameters, the train(...)
settings, an assertion's bound) goes through `resolve`, so nothing from archdsl.ir reaches a
layer, a TrainConfig, a checkpoint or a JSON file: past this module a value is an int, float,
bool, str, None, or a tuple of those.
"""
from __future__ import annotations

import dataclasses
import math
from decimal import Decimal

from .errors import ArgumentError
from .ir import Argument, Definition, Name, Operation
from .layers.arguments import is_plain

__all__ = ["is_plain", "resolve", "resolve_arguments", "definition_values"]

MAX_INTEGER = 10 ** 18  # as a literal's MAX_DIGITS: arithmetic cannot reach beyond what is written


def resolve(value, env: dict | None = None):
    """`value` as a builtin: a bare word is the parameter of that name in `env`, else the word
    itself as a str; arithmetic is computed; an exact bound (Decimal) is an int when whole."""
    env = env or {}
    if isinstance(value, Name):
        return env[value] if value in env else str(value)
    if isinstance(value, Operation):
        return _compute(value, env)
    if isinstance(value, tuple):
        return tuple(resolve(v, env) for v in value)
    if isinstance(value, Decimal):
        # Bounds are compared with integer totals: a whole bound stays exact at any size.
        return int(value) if value == value.to_integral_value() else float(value)
    if is_plain(value):
        return value
    raise TypeError(f"not a spec value: {value!r}")


def resolve_arguments(arguments: tuple[Argument, ...], env: dict) -> tuple[Argument, ...]:
    """A call's arguments with their values resolved in `env` (the enclosing definition's)."""
    values = [resolve(a.value, env) for a in arguments]
    if all(value is a.value for value, a in zip(values, arguments)):
        return arguments
    return tuple(dataclasses.replace(a, value=value) for value, a in zip(values, arguments))


def definition_values(definition: Definition, given: dict) -> dict:
    """A definition's parameters: those given, and the defaults of the others, each default
    resolved among the parameters before it (`def B(c, d=c*2)`)."""
    env = {}
    for parameter in definition.parameters:
        if parameter.name in given:
            env[parameter.name] = given[parameter.name]
        else:
            env[parameter.name] = resolve(parameter.default, env)
    return env


def _compute(operation: Operation, env: dict):
    operands = [resolve(v, env) for v in operation.operands]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in operands):
        shown = " and ".join(repr(v) for v in operands)
        raise ArgumentError(f"cannot compute {operation.operator!r} of {shown}: arithmetic needs "
                            f"numbers", operation.span)
    left, right = (operands + [None])[:2]
    if operation.operator in ("/", "//") and right == 0:
        raise ArgumentError("division by zero", operation.span)
    result = {"+": lambda: left + right, "-": lambda: left - right, "*": lambda: left * right,
              "/": lambda: left / right, "//": lambda: left // right,
              "neg": lambda: -left}[operation.operator]()
    if isinstance(result, float) and not math.isfinite(result):
        raise ArgumentError("the result is beyond a float's range (about 1.8e308)", operation.span)
    if isinstance(result, int) and abs(result) >= MAX_INTEGER:
        raise ArgumentError(f"the result is too large: {len(str(abs(result)))} digits, at most "
                            f"{len(str(MAX_INTEGER)) - 1}", operation.span)
    return result
