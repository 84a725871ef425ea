"""Where a traced call is made: the modules it is called in, the module it calls, its line in
the module's code; and reaching a module's children by path."""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from torch import fx, nn

from .lookup import function_name


def paths(node: fx.Node) -> set[str]:
    """The paths of the modules the call is made in (or calls)."""
    return {path for path, _ in node.meta.get("nn_module_stack", {}).values()}


def _stack(node: fx.Node, root: nn.Module) -> list[tuple[str, str]]:
    """(module path, class name) of the modules the call is made in, outermost first; for a
    call of a module, the module itself last."""
    stack = [(path, cls if isinstance(cls, str) else cls.__name__)
             for path, cls in node.meta.get("nn_module_stack", {}).values()]
    if not stack and node.op in ("call_module", "get_attr"):
        # no record: the module tree along the path
        parts = node.target.split(".")[:None if node.op == "call_module" else -1]
        stack = [(".".join(parts[:i]), type(submodule(root, ".".join(parts[:i]))).__name__)
                 for i in range(1, len(parts) + 1)]
    return [(path, cls.rpartition(".")[2]) for path, cls in stack]


def scope(node: fx.Node, root: nn.Module) -> tuple[tuple[str, str], ...]:
    """ImportedNode.scope: (attribute, class name) of each module the call is made in,
    outermost first, without the module it calls."""
    stack = _stack(node, root)
    if node.op == "call_module" and stack and stack[-1][0] == node.target:
        stack = stack[:-1]
    found, parent = [], ""
    for path, cls in stack:
        name = path[len(parent) + 1:] if parent and path.startswith(parent + ".") else path
        found.append((name, cls))
        parent = path
    return tuple(found)


def source(node: fx.Node, root: nn.Module) -> str:
    """"layer1.0.conv1 (Conv2d)" for a module, "layer1.0: operator.add" for a function."""
    if node.op == "call_module":
        return f"{node.target} ({type(submodule(root, node.target)).__name__})"
    if node.op == "get_attr":
        return f"{node.target} (parameter)"
    if node.op in ("placeholder", "output"):
        return "forward"
    return function_source(node)


def function_source(node: fx.Node) -> str:
    paths = list(node.meta.get("nn_module_stack", {}).values())
    return f"{paths[-1][0]}: {function_name(node)}" if paths else function_name(node)


def location(node: fx.Node) -> str:
    """file:line of the call in the module's code, where torch.fx recorded it."""
    frames = [(filename, line) for filename, line
              in re.findall(r'File "([^"]+)", line (\d+)', node.stack_trace or "")
              if not filename.startswith(TORCH)]
    if not frames:
        return ""
    filename, line = frames[-1]
    return f"{Path(filename).name}:{line}"


TORCH = os.path.join(os.path.dirname(torch.__file__), "")  # with the separator: not torchvision


def tensors(module: nn.Module, prefix: str = ""):
    """Its parameters and buffers, with their names."""
    yield from module.named_parameters(prefix=prefix)
    yield from module.named_buffers(prefix=prefix)
def attribute_at(root: nn.Module, target: str):
    """The submodule, parameter, buffer or other attribute at `target`."""
    owner, _, name = target.rpartition(".")
    module = submodule(root, owner)
    for registered in (module._modules, module._parameters, module._buffers):
        if name in registered:
            return registered[name]
    return getattr(module, name)
def submodule(root: nn.Module, path: str) -> nn.Module:
    """The submodule at `path`, through the registered children: get_submodule's getattr
    finds nn.Module's methods first, where a child is named like one (`double`)."""
    module = root
    for part in path.split(".") if path else ():
        module = module._modules[part]
    return module
