"""The layer contract and the registry of layer classes.

A layer is a frozen dataclass: its fields are its DSL arguments (positional fields first), their
annotations say what values are allowed, and its methods give the shape rule, the parameter and
buffer shapes, the MACs, the receptive field and the torch builder, all in one place.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable, ClassVar

from ..errors import ArgumentError, UnknownLayerError
from .arguments import (bind_arguments, from_torch, KEYWORDS, keyword_slip, literal,
                        suggest)
from .geometry import Shape, count_formula, format_shape


@dataclasses.dataclass(frozen=True)
class Layer:
    """Base of every layer. Subclasses are dataclasses registered with @register."""

    dsl_name: ClassVar[str]
    # PyTorch's habits, for messages that say what to write instead: what its first positional
    # argument gives where archdsl infers it from the input ("input channels"), and its keyword
    # names for this layer's arguments (None: the inferred one).
    torch_inferred: ClassVar[str | None] = None
    # A value may also be a function of PyTorch's value giving archdsl's (keyword, value):
    # PReLU's num_parameters=64 is per_channel=true.
    torch_keywords: ClassVar[dict[str, str | None | Callable]] = {}
    # PyTorch's positional argument names, where they differ from archdsl's positions in more
    # than the inferred first one (GroupNorm(num_groups, num_channels, ...)): a call that fails
    # is read in that order, to say what to write.
    torch_positional: ClassVar[tuple[str, ...]] = ()
    # Its outputs are probabilities: a loss that applies log-softmax itself wants logits instead.
    probabilities: ClassVar[bool] = False
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

    def settings(self, *first: str) -> str:
        """`first`, then the arguments that differ from their defaults, as written:
        `96, eps=1e-06`."""
        return ", ".join([*first, *(f"{f.name}={literal(getattr(self, f.name))}"
                                    for f in dataclasses.fields(self)
                                    if f.name != "frozen" and getattr(self, f.name) != f.default)])

    def describe(self, *shapes: Shape) -> str:
        changed = self.settings()
        return f"{self.dsl_name}({changed})" if changed else self.dsl_name

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
                parts.append(f"{f.name}={literal(f.default)}")
        return f"{cls.dsl_name}({', '.join(parts)})"


_REGISTRY: dict[str, type[Layer]] = {}


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


@functools.cache
def _usage(cls: type[Layer]) -> str:
    return cls.usage()


def bind_layer(call) -> Layer:
    """A Call node -> a checked layer instance; every error points at the argument at fault."""
    cls = _REGISTRY.get(call.name)
    keyword = keyword_slip(call.name) if cls is None else None
    if keyword is not None:
        raise UnknownLayerError(f"unknown layer {call.name!r}: did you mean the keyword "
                                f"{keyword!r}?", call.name_span,
                                hint=f"declarations come before the network: {KEYWORDS[keyword]}")
    if cls is None:
        raise UnknownLayerError(f"unknown layer {call.name!r}{suggest(call.name, _REGISTRY)}",
                                call.name_span, hint="layers: " + ", ".join(layer_names()))
    try:
        return _bound(cls, call.arguments, call.span)
    except ArgumentError as error:
        order = torch_order(call)
        # Linear(1568, 128): 128 is no bias; GroupNorm(32, 64): 64 is PyTorch's channels
        rewritten = order.rewritten if order is not None else _torch_reading(cls, call)
        if rewritten is not None:
            error.message += (f"; archdsl infers the {cls.torch_inferred}: write "
                              f"{rewritten}, not PyTorch's {_written(call.name, call.arguments)}")
        raise


def _bound(cls: type[Layer], arguments, span) -> Layer:
    values, spans = bind_arguments(cls, cls.dsl_name, _usage(cls), arguments, span)
    layer = cls(**values)
    try:
        layer.check()
    except ArgumentError as error:
        raise error.at(spans.get(error.argument, span))
    return layer


@dataclasses.dataclass(frozen=True)
class TorchOrder:
    """A call that also reads as PyTorch's argument order, which puts the input's size first:
    Conv(1, 16, 3) is PyTorch's 1 input channel, 16 out, kernel 3; archdsl's 1 out, kernel 16,
    stride 3. Analysis warns where `size` is the input's size indeed."""

    size: object
    rewritten: str  # the call without that first value: Conv(16, 3)
    reading: str  # how archdsl reads the call as written: out=1, kernel=16, stride=3
    last: str  # the last argument given by position, which a keyword would pin
    second: object  # the second value: PyTorch's output size, archdsl's kernel

    @property
    def likely(self) -> bool:
        """Whether PyTorch's reading is the likelier: its output size (archdsl's kernel) is at
        least its input size, as in Conv(1, 16, 3); Conv(64, 3, 1, 1), a kernel far below the
        channels, is archdsl's own order."""
        return isinstance(self.second, int) and isinstance(self.size, int) and \
            self.second >= self.size


def torch_order(call) -> TorchOrder | None:
    """The call read in PyTorch's order, where the layer's first PyTorch argument is one archdsl
    infers, the call gives more values by position than the layer needs, and the call binds
    without the first one."""
    cls = _REGISTRY.get(call.name)
    positional = [a for a in call.arguments if a.keyword is None]
    if cls is None or cls.torch_inferred is None or not call.arguments or \
            call.arguments[0].keyword is not None or cls.torch_positional:
        return None
    fields = [f for f in dataclasses.fields(cls) if not f.kw_only]
    required = sum(1 for f in fields if f.default is dataclasses.MISSING)
    if len(positional) <= required or len(positional) > len(fields):
        return None
    try:
        _bound(cls, call.arguments[1:], call.span)
    except ArgumentError:
        return None
    reading = ", ".join(f"{f.name}={literal(a.value)}" for f, a in zip(fields, positional))
    return TorchOrder(positional[0].value, _written(call.name, call.arguments[1:]), reading,
                      fields[len(positional) - 1].name, positional[1].value)


def _torch_reading(cls: type[Layer], call) -> str | None:
    """The call's positional arguments read by PyTorch's names (torch_positional), in archdsl's
    words, where that binds: GroupNorm(32, 64) -> GroupNorm(32), LayerNorm(64) -> LayerNorm."""
    given = sum(1 for a in call.arguments if a.keyword is None)
    if not cls.torch_positional or not given or given > len(cls.torch_positional) or \
            any(a.keyword is None for a in call.arguments[given:]):
        return None
    translated = []
    for index, argument in enumerate(call.arguments):
        ours = from_torch(cls, argument.keyword or cls.torch_positional[index], argument.value)
        if ours is not None:  # None: the one archdsl infers
            translated.append(dataclasses.replace(argument, keyword=ours[0], value=ours[1]))
    try:
        _bound(cls, translated, call.span)
    except ArgumentError:
        return None
    positional = [f.name for f in dataclasses.fields(cls) if not f.kw_only]
    for index, argument in enumerate(translated):  # archdsl's own order by position, but
        if index >= len(positional) or argument.keyword != positional[index] or \
                isinstance(argument.value, bool):  # per_channel=true says more than true
            break
        translated[index] = dataclasses.replace(argument, keyword=None)
    return _written(call.name, translated)


def _written(name: str, arguments) -> str:
    if not arguments:
        return name
    return f"{name}(" + ", ".join(("" if a.keyword is None else f"{a.keyword}=") + literal(a.value)
                                  for a in arguments) + ")"
