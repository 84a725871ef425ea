"""Arguments: the value types layers declare, and binding a call's arguments to a dataclass.

One binder serves layer calls, definitions and the train(...) block: positional and keyword
arguments (with the short aliases), unknown and duplicate keywords, missing ones, and each value
checked against its annotation, every error pointing at the argument at fault. Values arrive
resolved to builtins (archdsl/binding.py); the binder refuses any other.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
from typing import (Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints)

from ..errors import ArgumentError

PLAIN = (int, float, bool, str, type(None))


def is_plain(value) -> bool:
    """A builtin value (exactly int, float, bool, str or None, not a subclass), or a tuple of them."""
    if type(value) is tuple:
        return all(is_plain(v) for v in value)
    return type(value) in PLAIN


class Min:
    """An annotation mark: every number in the value is at least `low` (and at most `high`)."""

    def __init__(self, low, high=None):
        self.low, self.high = low, high

    def accepts(self, value) -> bool:
        numbers = value if isinstance(value, tuple) else (value,)
        return all(isinstance(n, str) or (n >= self.low and (self.high is None or n <= self.high))
                   for n in numbers)


PositiveInt = Annotated[int, Min(1), "a positive integer"]
PositiveFloat = Annotated[float, Min(1e-300), "a positive number"]
NonNegativeInt = Annotated[int, Min(0), "a non-negative integer"]
Size = Annotated[Union[int, tuple[int, ...]], Min(1), "a positive integer or a tuple such as (1, 7)"]
Padding = Annotated[Union[int, tuple[int, ...], Literal["same", "valid"]], Min(0),
                    "a non-negative integer, a tuple such as (0, 3), 'same' or 'valid'"]
Probability = Annotated[float, Min(0.0, 1.0), "a number between 0 and 1"]

# Short keywords, used where the layer has the long one and no field of the short name.
ALIASES = {"k": "kernel", "s": "stride", "p": "padding", "d": "dilation", "g": "groups"}


def bind_arguments(cls, title: str, usage: str, arguments, span) -> tuple[dict, dict]:
    """Match Argument nodes to the fields of dataclass `cls` and check each value against its
    annotation: (values, spans by field name). Used for layers and for a spec's train block."""
    fields, positional, checkers = _signature(cls)
    values, spans = {}, {}
    for index, argument in enumerate(arguments):
        if argument.keyword is None:
            if any(a.keyword for a in arguments[:index]):
                raise ArgumentError("positional argument after a keyword argument",
                                    argument.span, usage)
            if index >= len(positional):
                given = sum(1 for a in arguments if a.keyword is None)
                raise ArgumentError(f"{title} takes {len(positional)} positional "
                                    f"argument{'s' * (len(positional) != 1)}, got {given}",
                                    argument.span, usage)
            name = positional[index]
        else:
            name = argument.keyword
            if name not in fields and ALIASES.get(name) in fields:
                name = ALIASES[name]
            if name not in fields:
                raise ArgumentError(f"{title} has no argument {argument.keyword!r}"
                                    f"{_renamed(cls, argument) or suggest(argument.keyword, fields)}",
                                    argument.span, usage)
        if name in values:
            raise ArgumentError(f"argument {name!r} of {title} is given twice",
                                argument.span, usage)
        values[name] = _checked_value(title, usage, name, checkers[name], argument)
        spans[name] = argument.span
    missing = [name for name, f in fields.items()
               if f.default is dataclasses.MISSING and name not in values]
    if missing:
        raise ArgumentError(f"{title} is missing its argument {missing[0]!r}", span, usage)
    return values, spans


def _renamed(cls, argument) -> str:
    """What to write for a PyTorch keyword (`kernel_size=3`) that the layer names otherwise."""
    renamed = getattr(cls, "torch_keywords", {})
    if argument.keyword not in renamed:
        return ""
    translated = from_torch(cls, argument.keyword, argument.value)
    if translated is None:
        return f": archdsl infers the {cls.torch_inferred} from the input; leave it out"
    return f" (PyTorch's name): write {translated[0]}={literal(translated[1])}"


def from_torch(cls, name: str, value) -> tuple[str, object] | None:
    """PyTorch's argument `name=value` in archdsl's words, (keyword, value), by the layer's
    torch_keywords; None for the one archdsl infers."""
    target = getattr(cls, "torch_keywords", {}).get(name, name)
    if target is None:
        return None
    return target(value) if callable(target) else (target, value)


def _checked_value(title, usage, name, checker, argument):
    value = argument.value
    if not is_plain(value):
        raise TypeError(f"{title}: {name!r} reached binding unresolved: {value!r}")
    if checker.accepts(value):
        return float(value) if checker.real and isinstance(value, int) else value
    if value is None and checker.accepts("none"):
        return "none"  # the word none, where a choice is named 'none' (scheduler, approximate)
    message = f"{title}: {name!r} must be {_describe(checker.annotation)}, got {literal(value)}"
    if isinstance(value, float) and value.is_integer() and checker.accepts(int(value)):
        message += " ('/' divides into a fraction; '//' keeps whole numbers: c//2)"
    raise ArgumentError(message, argument.span, usage)


class _Checker:
    """An annotation compiled once into a test of values: binding checks every argument of
    every layer, and walking typing's structures each time was most of the analysis."""

    def __init__(self, annotation):
        self.annotation = annotation
        self.accepts = _compile(annotation)
        self.real = _base_type(annotation) is float


def _compile(annotation):
    if annotation is Any:
        return lambda value: True
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *marks = get_args(annotation)
        base_accepts = _compile(base)
        bounds = [m for m in marks if isinstance(m, Min)]
        return lambda value: base_accepts(value) and all(m.accepts(value) for m in bounds)
    if origin is Union:
        options = [_compile(option) for option in get_args(annotation)]
        return lambda value: any(accepts(value) for accepts in options)
    if origin is Literal:
        choices = get_args(annotation)
        return lambda value: value in choices
    if origin is tuple:
        item = _compile(get_args(annotation)[0])
        return lambda value: isinstance(value, tuple) and all(item(v) for v in value)
    if annotation is float:
        return lambda value: isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return lambda value: isinstance(value, int) and not isinstance(value, bool)
    if annotation is type(None):
        return lambda value: value is None
    return lambda value: isinstance(value, annotation)


def checked_field(cls, name: str, value):
    """`value` as field `name` of dataclass `cls` (an int where a float is declared becomes a
    float), or a ValueError saying what the field must be."""
    checker = _signature(cls)[2][name]
    if not is_plain(value) or not checker.accepts(value):
        raise ValueError(f"{name!r} must be {_describe(checker.annotation)}, got {literal(value)}")
    return float(value) if checker.real and isinstance(value, int) else value


def _base_type(annotation):
    return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation


def _describe(annotation) -> str:
    if get_origin(annotation) is Annotated:
        words = [m for m in get_args(annotation)[1:] if isinstance(m, str)]
        if words:
            return words[0]
        return _describe(get_args(annotation)[0])
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(repr(v) for v in get_args(annotation))
    if get_origin(annotation) is Union:
        return " or ".join(_describe(a) for a in get_args(annotation))
    return {bool: "true or false", int: "an integer", float: "a number", str: "a word",
            type(None): "none"}.get(annotation, str(annotation))


# The spec's keywords, each with an example of its line.
KEYWORDS = {"input": "input 1x28x28", "train": "train(epochs=3)",
            "assert": "assert params < 100k", "def": "def Block(c) = [Conv(c, 3) -> ReLU]"}


def keyword_slip(word: str) -> str | None:
    """The keyword a word misspells (`trian`, `Train`, `inputs`), if any."""
    if word in KEYWORDS:
        return None
    close = difflib.get_close_matches(word.lower(), list(KEYWORDS), n=1, cutoff=0.75)
    return close[0] if close else None


def suggest(word: str, choices) -> str:
    lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(lower), n=1, cutoff=0.6)
    return f" (did you mean {lower[close[0]]!r}?)" if close else ""


def literal(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "none"
    if isinstance(value, str):
        return repr(value)
    return str(value)


@functools.lru_cache(maxsize=256)
def _signature(cls) -> tuple[dict, list[str], dict[str, _Checker]]:
    """A dataclass's fields by name, its positional fields, and a checker per field. Resolving
    string annotations and compiling them is most of binding's cost; a class's never change."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = get_type_hints(cls, include_extras=True)
    return (fields, [name for name, f in fields.items() if not f.kw_only],
            {name: _Checker(hints[name]) for name in fields})
