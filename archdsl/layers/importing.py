"""A torch module or call as a layer's arguments (archdsl import): settings read by PyTorch's
names, translated by the layer's torch_keywords and checked against its fields, then written as
a person writes the call. The layer classes' attributes drive it; torch is imported only when a
module is read."""
from __future__ import annotations

import dataclasses
import struct

from .arguments import ALIASES, checked_field, from_torch, literal

# Settings that change no result of an evaluated network.
TORCH_IGNORED = ("inplace", "training", "_stacklevel")
SHORT = {long: short for short, long in ALIASES.items()}


def torch_names(cls) -> list[str]:
    """The attributes a torch module of the layer keeps its settings under: a field's torch
    name (torch_keywords renames), a setting translated by a function (PReLU's num_parameters),
    and the fixed ones."""
    renamed = {target: name for name, target in cls.torch_keywords.items()
               if isinstance(target, str)}
    names = [renamed.get(f.name, f.name) for f in dataclasses.fields(cls) if f.name != "frozen"]
    names += [name for name, target in cls.torch_keywords.items() if callable(target)]
    # the fixed ones first: Upsample(size=…) is refused for its size, not its missing scale
    return list(cls.torch_fixed) + [name for name in names if name not in cls.torch_fixed]


def module_arguments(cls, module, shape) -> dict:
    """The layer's arguments for a torch module, read from its attributes by torch_names; a
    module whose parameters all have requires_grad off is frozen."""
    values = translated(cls, {name: getattr(module, name) for name in torch_names(cls)
                              if hasattr(module, name)})
    parameters = list(module.parameters())
    if parameters and not any(p.requires_grad for p in parameters):
        values["frozen"] = True
    return values


def translated(cls, settings: dict) -> dict:
    """PyTorch's settings (name: value) in the layer's fields (field: value); a ValueError names
    one that archdsl cannot express."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for name, value in settings.items():
        if name in TORCH_IGNORED:
            continue
        given, value = value, plain(value)
        if name in cls.torch_fixed:
            if not same(value, cls.torch_fixed[name]):
                raise ValueError(f"{name}={given!r} (archdsl builds "
                                 f"{name}={cls.torch_fixed[name]!r} only)")
            continue
        ours = from_torch(cls, name, value)
        if ours is None:  # the one archdsl infers from the input
            continue
        field, value = ours
        if field not in fields:
            raise ValueError(f"{name}={_shown(value)} has no counterpart in {cls.dsl_name}")
        if value is None and isinstance(fields[field].default, bool):
            value = False  # bias=None: no bias
        try:
            values[field] = checked_field(cls, field, value)
        except ValueError as error:
            raise ValueError(f"{name}={_shown(value)}: {error}") from None
    return values


def plain(value):
    """A torch setting as an archdsl value: a parameter or buffer present is true, lists and
    sizes are tuples, a tuple of one repeated number is that number, 2.0 is 2."""
    import torch
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (list, tuple)):
        items = tuple(plain(v) for v in value)
        if items and all(same(v, items[0]) for v in items) and not isinstance(items[0], tuple):
            return items[0]
        return items
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
        return int(value)
    return value


def same(value, other) -> bool:
    """Equal as archdsl reads them: true is not 1, but 2 is 2.0."""
    if isinstance(value, bool) or isinstance(other, bool):
        return type(value) is type(other) and value == other
    return value == other


def written(cls, values: dict) -> tuple[tuple[str | None, object], ...]:
    """The arguments that differ from their defaults, as a person writes them: by position
    while each is a required one, or the layer's first setting and a rate or a scale
    (Conv(64, 7), Dropout(0.2), LayerScale(1e-6)), then by keyword, short where archdsl has
    an alias: Conv(64, 7, s=2, p=3, bias=false), Softmax(dim=-1), PReLU(per_channel=true)."""
    fields = dataclasses.fields(cls)
    names = {f.name for f in fields}
    # the keyword-only ones (BatchNorm's eps) after those archdsl takes by position, frozen last
    ordered = [f for f in fields if not f.kw_only] + \
        [f for f in fields if f.kw_only and f.name != "frozen"] + \
        [f for f in fields if f.name == "frozen"]
    arguments, by_position = [], True
    for index, f in enumerate(ordered):
        required = f.default is dataclasses.MISSING
        if f.name not in values or (not required and same(values[f.name], f.default)):
            by_position = False
            continue
        if by_position and not f.kw_only and (
                required or (index == 0 and type(values[f.name]) is float)):
            arguments.append((None, values[f.name]))
            continue
        by_position = False
        short = SHORT.get(f.name)
        arguments.append((short if short and short not in names else f.name, values[f.name]))
    return tuple(arguments)


def shortest_float32(value: float) -> float:
    """The shortest decimal that a float32 `value` reads back as: 1e-06, not
    9.999999974752427e-07."""
    packed = struct.pack("f", value)
    for digits in range(1, 18):
        shorter = float(f"{value:.{digits}g}")
        if struct.pack("f", shorter) == packed:
            return shorter
    return value


def _shown(value) -> str:
    return literal(value) if not isinstance(value, str) else repr(value)
