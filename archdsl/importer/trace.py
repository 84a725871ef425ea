"""torch.fx tracing of an nn.Module into an ImportedGraph (graph.py): the forward pass traced
with torch.fx, keeping whole the modules some archdsl layer stands for, its shapes propagated
on fake tensors, then read into layer calls (reading.py). What cannot be imported is raised as
one UnsupportedModelError that lists all of it, each with where it is called; what fx cannot
trace, or an input the module cannot take, as an UntraceableModelError."""
from __future__ import annotations

import inspect
from pathlib import Path

import torch
from torch import fx, nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.passes.shape_prop import _extract_tensor_metadata

from ..errors import first_line, UnsupportedModelError, UntraceableModelError
from ..layers.geometry import format_shape
from .graph import ImportedGraph
from .lookup import layer_of
from .places import attribute_at, source, TORCH
from .reading import Reader

BATCH = 2  # the shapes are propagated at this batch size; a batch of 1 would hide broadcasts


def trace(module: nn.Module, input_shape: tuple[int, ...],
          origin: str | None = None) -> ImportedGraph:
    """The module's forward pass, in eval mode, at an input of `input_shape` (C×H×W, no batch
    axis), as archdsl layer calls. `origin` names it in messages and the spec's header
    (default: its class). Raises UntraceableModelError where torch.fx cannot trace it or it
    fails at that input, UnsupportedModelError listing every call archdsl cannot express."""
    origin = origin or f"{type(module).__module__}.{type(module).__qualname__}()"
    input_shape = tuple(input_shape)
    modes = [(m, m.training) for m in module.modules()]
    module.eval()  # the graph of inference: no auxiliary heads, dropout as a layer
    try:
        graph = _traced(module, origin)
        _one_input(graph, origin)
        _propagate(module, graph, input_shape, origin)
        reader = Reader(module, input_shape, BATCH)
        reader.read(graph)
    finally:
        for m, training in modes:
            m.training = training
    if reader.unsupported:
        raise _unsupported(origin, reader.unsupported, hint=(
            "build the module without the parts used in training only (torchvision's "
            "googlenet and inception_v3 take aux_logits=False)") if reader.uncalled else None)
    return ImportedGraph(input_shape, tuple(reader.nodes), origin)


def _unsupported(origin: str, items, hint: str | None = None) -> UnsupportedModelError:
    return UnsupportedModelError(f"{origin} cannot be imported; archdsl has no counterpart "
                                 f"for:\n  " + "\n  ".join(items), tuple(items), hint=hint)


class _Tracer(fx.Tracer):
    """symbolic_trace's tracer, keeping whole the modules an archdsl layer stands for (besides
    torch.nn's own) and recording where each call is made."""

    def __init__(self):
        super().__init__()
        self.record_stack_traces = True

    def is_leaf_module(self, m: nn.Module, qualified_name: str) -> bool:
        return layer_of(m) is not None or super().is_leaf_module(m, qualified_name)


def _traced(module: nn.Module, origin: str) -> fx.Graph:
    tracer = _Tracer()
    try:
        return tracer.trace(module, concrete_args=_defaults(module))
    except Exception as error:  # fx raises TraceError, TypeError, … from inside the forward
        where = _user_frame(error.__traceback__)
        raise UntraceableModelError(
            f"torch.fx cannot trace {origin}: {first_line(error)}"
            + (f" (at {where})" if where else ""),
            hint="archdsl import follows the forward pass with torch.fx, which cannot take a "
                 "branch or a loop that depends on a tensor's values; a forward with fixed "
                 "control flow traces") from None


def _one_input(graph: fx.Graph, origin: str) -> None:
    """Refuses a forward of several inputs; those traced at their defaults are none."""
    others = [node.target for node in graph.nodes if node.op == "placeholder"
              and not node.args][1:]
    if others:
        raise _unsupported(origin, [f"forward: its argument {name!r}: an archdsl network "
                                    f"takes one input" for name in others])


def _defaults(module: nn.Module) -> dict | None:
    """forward's optional arguments at their defaults (forward(x, mask=None) traces with no
    mask); the first one is the input."""
    try:
        parameters = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    defaults = {p.name: p.default for p in parameters[1:]
                if p.default is not inspect.Parameter.empty and
                p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return defaults or None


def _propagate(root: nn.Module, graph: fx.Graph, input_shape: tuple[int, ...],
               origin: str) -> None:
    """Each node's output shape in its meta, from fake tensors: no computation is done."""
    first = next(iter(root.parameters()), None)
    mode = FakeTensorMode(allow_non_fake_inputs=True)  # the module's own tensors are read
    example = mode.from_tensor(torch.zeros(
        BATCH, *input_shape, device=first.device if first is not None else "cpu",
        dtype=first.dtype if first is not None and first.is_floating_point() else
        torch.float32))
    propagation = _Shapes(root, graph, mode)
    try:
        propagation.run(example)
    except Exception as error:
        cause = error
        while cause.__cause__ is not None:
            cause = cause.__cause__
        node = propagation.current
        where = "" if node is None else source(node, root)
        raise UntraceableModelError(
            f"{origin} fails on a {format_shape(input_shape)} input"
            + (f" at {where}" if where else "") + f": {first_line(cause)}",
            hint="give the input shape the module is made for with --input") from None


class _Shapes(fx.Interpreter):
    """Records each node's output in its meta as ShapeProp does (tensor_meta: a
    TensorMetadata, or a tuple of them), running the graph on fake tensors; it fetches
    submodules through the registered children, and knows the node it is at when one fails."""

    current: fx.Node | None = None

    def __init__(self, root: nn.Module, graph: fx.Graph, mode: FakeTensorMode):
        super().__init__(root, graph=graph)
        self.mode = mode

    def fetch_attr(self, target: str):
        return attribute_at(self.module, target)

    def run_node(self, n: fx.Node):
        self.current = n
        with self.mode:
            result = super().run_node(n)
        found = False

        def metadata(value):
            nonlocal found
            if isinstance(value, torch.Tensor):
                found = True
                return _extract_tensor_metadata(value)
            return value

        meta = fx.node.map_aggregate(result, metadata)
        if found:
            n.meta["tensor_meta"] = meta
        return result


def _user_frame(traceback) -> str:
    """file:line of the innermost frame outside torch: where the module's own code failed."""
    where = ""
    while traceback is not None:
        filename = traceback.tb_frame.f_code.co_filename
        if not filename.startswith(TORCH):
            where = f"{Path(filename).name}:{traceback.tb_lineno}"
        traceback = traceback.tb_next
    return where
