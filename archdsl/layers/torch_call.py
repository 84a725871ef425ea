"""A layer's torch module as a constructor call, in plain data: `build` instantiates it and the
Python export writes it out, so the module a spec compiles to and the code it exports to are
one description and cannot drift apart."""
from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Given:
    """The layer's argument `field` as the spec gives it: the export writes the spec's own
    expression for it (`c*4` inside a definition)."""

    field: str
    value: object


@dataclass(frozen=True)
class Inferred:
    """A size archdsl reads from the input (its channels or features): the export writes the
    expression for the input's channels."""

    value: int


@dataclass(frozen=True)
class TorchCall:
    """`constructor(arguments)`. The constructor is `module:name` (`torch.nn:Conv2d`,
    `torchvision.ops:StochasticDepth`, `archdsl.layers.modules:LayerScale`). Arguments are
    (name, value) pairs in the constructor's order; the first `positional` are written by
    position, the others by keyword, and those equal to their entry in `defaults` are left out.
    A value is plain data, a Given, an Inferred, a tuple of those, or another TorchCall."""

    constructor: str
    arguments: tuple[tuple[str, object], ...] = ()
    positional: int = 0
    defaults: tuple[tuple[str, object], ...] = ()

    @classmethod
    def of(cls, constructor: str, *arguments: tuple[str, object], positional: int = 0,
           **defaults) -> "TorchCall":
        return cls(constructor, tuple(arguments), positional, tuple(defaults.items()))

    def instantiate(self):
        module, _, name = self.constructor.partition(":")
        constructor = getattr(importlib.import_module(module), name)
        values = [(key, plain(value)) for key, value in self.arguments]
        return constructor(*(v for _, v in values[:self.positional]),
                           **dict(values[self.positional:]))


def plain(value):
    """The value a constructor receives: tags unwrapped, calls instantiated."""
    if isinstance(value, (Given, Inferred)):
        return value.value
    if isinstance(value, TorchCall):
        return value.instantiate()
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    return value
