"""The layer contract, the registry, and binding a call's arguments to a layer class.

A layer is a frozen dataclass: its fields are its DSL arguments (positional fields first), their
annotations say what values are allowed, and its methods give the shape rule, the parameter and
buffer shapes, the MACs, the receptive field and the torch builder, all in one place.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
from typing import (Annotated, Any, ClassVar, Literal, Union, get_args, get_origin,
                    get_type_hints)

from ..errors import ArgumentError, ShapeError, UnknownLayerError

Shape = tuple[int, ...]


class Min:
    """An annotation mark: every number in the value is at least `low` (and at most `high`)."""

    def __init__(self, low, high=None):
        self.low, self.high = low, high

    def accepts(self, value) -> bool:
        numbers = value if isinstance(value, tuple) else (value,)
        return all(isinstance(n, str) or (n >= self.low and (self.high is None or n <= self.high))
                   for n in numbers)


PositiveInt = Annotated[int, Min(1), "a positive integer"]
NonNegativeInt = Annotated[int, Min(0), "a non-negative integer"]
Size = Annotated[Union[int, tuple[int, ...]], Min(1), "a positive integer or a tuple such as (1, 7)"]
Padding = Annotated[Union[int, tuple[int, ...], Literal["same", "valid"]], Min(0),
                    "a non-negative integer, a tuple such as (0, 3), 'same' or 'valid'"]
Probability = Annotated[float, Min(0.0, 1.0), "a number between 0 and 1"]


@dataclasses.dataclass(frozen=True)
class Layer:
    """Base of every layer. Subclasses are dataclasses registered with @register."""

    dsl_name: ClassVar[str]
    frozen: bool = dataclasses.field(default=False, kw_only=True)

    def check(self) -> None:
        """Checks among arguments that need no input shape; raise ArgumentError(argument=...)."""

    def references(self) -> tuple[str, ...]:
        """Names of earlier results (given with `as`) this layer reads besides its input."""
        return ()

    # Single-input layers take one shape; merge layers (Add, Concat) one per input.
    def output_shape(self, *shapes: Shape) -> Shape:
        return shapes[0]

    def parameter_shapes(self, *shapes: Shape) -> dict[str, Shape]:
        """Named parameters as torch creates them; `weight`s count as weights, `bias`es as biases."""
        return {}

    def buffer_shapes(self, *shapes: Shape) -> dict[str, Shape]:
        return {}

    def macs(self, *shapes_then_output: Shape) -> int:
        """Multiply-accumulates per example; only conv and linear layers count (torchvision's rule).
        Called as macs(input shape(s)..., output shape)."""
        return 0

    def receptive_field(self, *shapes: Shape) -> tuple[tuple[int, int], ...] | None:
        """(kernel extent, stride) per spatial axis; None where outputs see the whole input."""
        return tuple((1, 1) for _ in shapes[0][1:])

    def explain(self, *shapes: Shape) -> dict:
        """The layer's arithmetic with the numbers filled in, as text: `shape` (lines: the
        output size's formula per spatial axis, or a sentence), `params`, `macs` and `buffers`
        (None where there are none). Layers with a formula override the parts they know."""
        out = self.output_shape(*shapes)
        unchanged = all(shape == out for shape in shapes)
        macs = self.macs(*shapes, out)
        buffers = self.buffer_shapes(*shapes)
        return {
            "shape": ["shape unchanged" if unchanged else
                      f"{' and '.join(format_shape(s) for s in shapes)} → {format_shape(out)}"],
            "params": count_formula(self.parameter_shapes(*shapes)),
            "macs": f"{macs:,}",
            "buffers": count_formula(buffers) if buffers else None,
        }

    def describe(self, *shapes: Shape) -> str:
        changed = [f"{f.name}={_literal(getattr(self, f.name))}" for f in dataclasses.fields(self)
                   if f.name != "frozen" and getattr(self, f.name) != f.default]
        return f"{self.dsl_name}({', '.join(changed)})" if changed else self.dsl_name

    def build(self, *shapes: Shape):
        """The torch module for inputs of these shapes (batch dimension excluded)."""
        raise NotImplementedError

    @classmethod
    def usage(cls) -> str:
        parts = []
        for f in dataclasses.fields(cls):
            if f.name == "frozen":  # every layer takes it; the README says so once
                continue
            if f.default is dataclasses.MISSING:
                parts.append(f.name)
            else:
                parts.append(f"{f.name}={_literal(f.default)}")
        return f"{cls.dsl_name}({', '.join(parts)})"


_REGISTRY: dict[str, type[Layer]] = {}

# Short keywords, used where the layer has the long one and no field of the short name.
ALIASES = {"k": "kernel", "s": "stride", "p": "padding", "d": "dilation", "g": "groups"}


def register(cls: type[Layer]) -> type[Layer]:
    """Make a layer class available to specs under its class name."""
    name = cls.__name__
    if name in _REGISTRY:
        raise ValueError(f"layer {name!r} is registered twice")
    cls.dsl_name = name
    _REGISTRY[name] = cls
    return cls


def layer_names() -> list[str]:
    return sorted(_REGISTRY)


def layer_class(name: str) -> type[Layer]:
    return _REGISTRY[name]


def bind_layer(call) -> Layer:
    """A Call node -> a checked layer instance; every error points at the argument at fault."""
    cls = _REGISTRY.get(call.name)
    if cls is None:
        raise UnknownLayerError(f"unknown layer {call.name!r}{suggest(call.name, _REGISTRY)}",
                                call.name_span, hint="layers: " + ", ".join(layer_names()))
    values, spans = bind_arguments(cls, cls.dsl_name, cls.usage(), call.arguments, call.span)
    layer = cls(**values)
    try:
        layer.check()
    except ArgumentError as error:
        raise error.at(spans.get(error.argument, call.span))
    return layer


def bind_arguments(cls, title: str, usage: str, arguments, span) -> tuple[dict, dict]:
    """Match Argument nodes to the fields of dataclass `cls` and check each value against its
    annotation: (values, spans by field name). Used for layers and for a spec's train block."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    positional = [f.name for f in fields.values() if not f.kw_only]
    hints = get_type_hints(cls, include_extras=True)
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
                                    f"{suggest(argument.keyword, fields)}", argument.span, usage)
        if name in values:
            raise ArgumentError(f"argument {name!r} of {title} is given twice",
                                argument.span, usage)
        values[name] = _checked_value(title, usage, name, hints[name], argument)
        spans[name] = argument.span
    missing = [name for name, f in fields.items()
               if f.default is dataclasses.MISSING and name not in values]
    if missing:
        raise ArgumentError(f"{title} is missing its argument {missing[0]!r}", span, usage)
    return values, spans


def _checked_value(title, usage, name, annotation, argument):
    value = argument.value
    if value is None and not _accepts(annotation, None) and _accepts(annotation, "none"):
        value = "none"  # the word none, where a choice is named 'none' (scheduler, approximate)
    if _accepts(annotation, value):
        if _base_type(annotation) is float and isinstance(value, int):
            return float(value)
        return value
    raise ArgumentError(f"{title}: {name!r} must be {_describe(annotation)}, "
                        f"got {_literal(value)}", argument.span, usage)


def _accepts(annotation, value) -> bool:
    if annotation is Any:
        return True
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *marks = get_args(annotation)
        return _accepts(base, value) and all(m.accepts(value) for m in marks if isinstance(m, Min))
    if origin is Union:
        return any(_accepts(option, value) for option in get_args(annotation))
    if origin is Literal:
        return value in get_args(annotation)
    if origin is tuple:
        return isinstance(value, tuple) and all(_accepts(get_args(annotation)[0], v) for v in value)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is type(None):
        return value is None
    return isinstance(value, annotation)


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


def suggest(word: str, choices) -> str:
    lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(lower), n=1, cutoff=0.6)
    return f" (did you mean {lower[close[0]]!r}?)" if close else ""


def _literal(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "none"
    if isinstance(value, str):
        return repr(value)
    return str(value)


# Helpers shared by the layers' shape rules.

def per_axis(value, axes: int, what: str) -> tuple[int, ...]:
    """An int or a tuple -> one value per spatial axis."""
    if isinstance(value, tuple):
        if len(value) != axes:
            raise ShapeError(f"{what} {value} has {len(value)} sizes but the input has "
                             f"{axes} spatial ax{'is' if axes == 1 else 'es'}")
        return value
    return (value,) * axes


@dataclasses.dataclass(frozen=True)
class Window:
    """One spatial axis of a sliding window (convolution, pooling), exactly as PyTorch computes
    its output length: ⌊(W + 2P − D(F−1) − 1)/S⌋ + 1, or ⌈…⌉ with ceil_mode, where a last
    window that would start in the right padding is dropped."""

    size: int
    kernel: int
    stride: int
    padding: int
    dilation: int = 1
    ceil_mode: bool = False

    @property
    def extent(self) -> int:
        """The numerator: W + 2P − D(F−1) − 1."""
        return self.size + 2 * self.padding - self.dilation * (self.kernel - 1) - 1

    @property
    def windows(self) -> int:
        """⌊extent/S⌋ + 1, or ⌈extent/S⌉ + 1 with ceil_mode (before PyTorch's drop rule)."""
        if self.ceil_mode:
            return -(-self.extent // self.stride) + 1
        return self.extent // self.stride + 1

    @property
    def drops_last(self) -> bool:
        """PyTorch, with ceil_mode: the last window must start inside the input or its left
        padding, else it is dropped."""
        return self.ceil_mode and (self.windows - 1) * self.stride >= self.size + self.padding

    @property
    def output(self) -> int:
        return self.windows - self.drops_last

    def formula(self, axis: str) -> str:
        """`H_out = ⌊(28 + 2·1 − 3)/1⌋ + 1 = 28`: this axis' arithmetic with its numbers."""
        if self.dilation == 1:  # D(F−1) + 1 = F
            numerator = f"{self.size} + 2·{self.padding} − {self.kernel}"
        else:
            numerator = (f"{self.size} + 2·{self.padding} − {self.dilation}·({self.kernel}−1)"
                         f" − 1")
        left, right = ("⌈", "⌉") if self.ceil_mode else ("⌊", "⌋")
        text = f"{axis}_out = {left}({numerator})/{self.stride}{right} + 1"
        if self.drops_last:
            return (f"{text} − 1 = {self.output} (PyTorch drops the last window: it would start "
                    f"in the right padding)")
        return f"{text} = {self.output}"


def window_output(size: int, kernel: int, stride: int, padding: int, dilation: int = 1,
                  ceil_mode: bool = False) -> int:
    """Output length of a sliding window, exactly as PyTorch computes it for conv and pooling."""
    return Window(size, kernel, stride, padding, dilation, ceil_mode).output


def axis_names(count: int) -> tuple[str, ...]:
    """The spatial axes' letters in formulas: L; H, W; D, H, W."""
    return {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}.get(
        count, tuple(f"X{i + 1}" for i in range(count)))


def product(values) -> str:
    """(16, 3, 3) -> `16·3·3`; a scalar's empty shape -> `1`."""
    return "·".join(str(v) for v in values) or "1"


def count_formula(shapes: dict[str, Shape]) -> str:
    """Element counts of named tensors as a sum of products, equal shapes grouped:
    BatchNorm's weight and bias -> `2 × 16 = 32`; nothing -> `0`."""
    if not shapes:
        return "0"
    groups: dict[Shape, int] = {}
    for shape in shapes.values():
        groups[shape] = groups.get(shape, 0) + 1
    terms = [(f"{n} × " if n > 1 else "") + product(shape) for shape, n in groups.items()]
    total = sum(math.prod(shape) for shape in shapes.values())
    text = " + ".join(terms)
    return text if text == str(total) else f"{text} = {total:,}"


def format_shape(shape: Shape) -> str:
    return "×".join(str(n) for n in shape)


def format_size(values: tuple[int, ...]) -> str:
    return str(values[0]) if len(set(values)) == 1 else "(" + ", ".join(map(str, values)) + ")"


def numel(shape: Shape) -> int:
    return math.prod(shape)


def spatial_input(layer: Layer, shape: Shape) -> tuple[int, tuple[int, ...]]:
    """(channels, spatial sizes) of an input that must have 1 to 3 spatial axes."""
    if not 2 <= len(shape) <= 4:
        kind = "a flat" if len(shape) == 1 else f"a {len(shape)}-axis"
        raise ShapeError(f"{layer.dsl_name} needs a channels×height×width input, got {kind} "
                         f"input {format_shape(shape)}",
                         hint="Flatten, Linear and GlobalAvgPool leave a flat shape; a spatial "
                              "input is written CxHxW, e.g. 1x28x28" if len(shape) == 1 else
                         "at most 3 spatial axes are supported: C×D×H×W")
    return shape[0], shape[1:]
