"""Which archdsl layer a torch module or function is, by the names the layer classes declare
(torch_modules, torch_functions), and what a traced call calls."""
from __future__ import annotations

import collections
import functools
import importlib

from torch import fx, nn

from ..layers import layer_class, layer_names


def layer_of(module: nn.Module) -> type | None:
    """The layer class that stands for a module of this class: found by its class name, for a
    class of PyTorch's or torchvision's, or one of archdsl's helper modules (which an exported
    file defines anew); a class of the same name elsewhere (a Linear of one's own) is not
    taken for it."""
    kind = type(module)
    cls = _layer_modules().get(kind.__name__)
    if cls is None or kind.__name__ in _helper_modules() or \
            kind.__module__.split(".")[0] in ("torch", "torchvision", "archdsl"):
        return cls
    return None


@functools.cache
def _helper_modules() -> frozenset[str]:
    """The names of the torch modules archdsl defines for layers PyTorch lacks."""
    from ..layers import modules
    return frozenset(name for name, value in vars(modules).items()
                     if isinstance(value, type) and issubclass(value, nn.Module) and
                     value.__module__ == modules.__name__)


@functools.cache
def _layer_modules() -> dict[str, type]:
    """torch module class name -> the layer class that stands for it."""
    found = {}
    for name in layer_names():
        cls = layer_class(name)
        for kind in cls.torch_modules:
            if kind in found:
                raise ValueError(f"{kind} is claimed by {found[kind].dsl_name} and {name}")
            found[kind] = cls
    return found


@functools.cache
def layer_functions() -> dict[str, list[type]]:
    """Function name ("torch.nn.functional.relu", "Tensor.mean") -> the layer classes that
    may stand for a call of it, in the order to ask them."""
    found = collections.defaultdict(list)
    for name in layer_names():
        for function in layer_class(name).torch_functions:
            found[function].append(layer_class(name))
    return dict(found)


@functools.cache
def _known_functions() -> dict[object, str]:
    """The function objects the layers name -> those names: torch.nn.functional.avg_pool2d
    is torch._C._nn's, and says so otherwise."""
    known = {}
    for name in layer_functions():
        if not name.startswith("Tensor."):
            function = resolve(name)
            if function is not None:
                known.setdefault(function, name)
    return known


def resolve(name: str):
    """The object a dotted name ("torch.nn.functional.relu", "operator.add") names, or None."""
    parts = name.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for part in parts[split:]:
                found = getattr(found, part)
        except AttributeError:
            return None
        return found
    return None


def function_name(node: fx.Node) -> str:
    """What a call_function or call_method node calls, for lookups and messages:
    "torch.nn.functional.relu", "operator.add", "Tensor.view"."""
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    known = _known_functions().get(node.target)
    if known is not None:
        return known
    module = getattr(node.target, "__module__", None) or ""
    module = {"_operator": "operator"}.get(module, module)
    if module.startswith("torch._C"):
        module = "torch"
    name = getattr(node.target, "__name__", repr(node.target))
    return f"{module}.{name}" if module else name
