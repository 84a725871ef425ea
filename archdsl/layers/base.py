"""The layer contract and the registry of layer classes.

A layer is a frozen dataclass: its fields are its DSL arguments (positional fields first), their
annotations say what values are allowed, and its methods give the shape rule, the parameter and
buffer shapes, the MACs, the receptive field and the torch builder, all in one place.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar

from ..errors import ArgumentError, UnknownLayerError
from .arguments import bind_arguments, literal, suggest
from .geometry import Shape, count_formula, format_shape


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
        changed = [f"{f.name}={literal(getattr(self, f.name))}" for f in dataclasses.fields(self)
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
    if cls is None:
        raise UnknownLayerError(f"unknown layer {call.name!r}{suggest(call.name, _REGISTRY)}",
                                call.name_span, hint="layers: " + ", ".join(layer_names()))
    values, spans = bind_arguments(cls, cls.dsl_name, _usage(cls), call.arguments, call.span)
    layer = cls(**values)
    try:
        layer.check()
    except ArgumentError as error:
        raise error.at(spans.get(error.argument, call.span))
    return layer
