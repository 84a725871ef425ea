"""torch.fx tracing of an nn.Module into an ImportedGraph (graph.py).

The forward pass is traced with torch.fx (the modules some archdsl layer stands for are kept
whole), its shapes propagated with fake tensors, and each call read as one archdsl layer, a
merge of branches, or nothing (x.contiguous(), a permute that only moves the channels last).
What maps onto a layer is the layer class's own business (layers/importing.py reads its torch_*
attributes); what is structure (+, *, torch.cat, flatten, view, chunk, the channel shuffle's
view-transpose-view) is this module's, in _STRUCTURE. Whatever has no archdsl counterpart is
collected, all of it with where it is called, into one UnsupportedModelError.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import importlib
import inspect
import math
import re
from pathlib import Path

import torch
from torch import fx, nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.passes.shape_prop import _extract_tensor_metadata

from ..errors import first_line, UnsupportedModelError, UntraceableModelError
from ..layers import layer_class, layer_names
from ..layers.geometry import format_shape
from .graph import ImportedGraph, ImportedNode, INPUT

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
        _propagate(module, graph, input_shape, origin)
        reader = _Reader(module, input_shape)
        reader.read(graph)
    finally:
        for m, training in modes:
            m.training = training
    if reader.unsupported:
        raise UnsupportedModelError(
            f"{origin} cannot be imported; archdsl has no counterpart for:\n  "
            + "\n  ".join(reader.unsupported), tuple(reader.unsupported),
            hint="build the module without the parts used in training only (torchvision's "
                 "googlenet and inception_v3 take aux_logits=False)"
            if reader.uncalled else None)
    return ImportedGraph(input_shape, tuple(reader.nodes), origin)


class _Tracer(fx.Tracer):
    """symbolic_trace's tracer, keeping whole the modules an archdsl layer stands for (besides
    torch.nn's own) and recording where each call is made."""

    def __init__(self):
        super().__init__()
        self.record_stack_traces = True

    def is_leaf_module(self, m: nn.Module, qualified_name: str) -> bool:
        return type(m).__name__ in _layer_modules() or super().is_leaf_module(m, qualified_name)


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
        where = "" if node is None else _source(node, root)
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
        return _attribute(self.module, target)

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
        if not filename.startswith(_TORCH):
            where = f"{Path(filename).name}:{traceback.tb_lineno}"
        traceback = traceback.tb_next
    return where


# What a tensor of the forward pass is to archdsl.

@dataclasses.dataclass(frozen=True)
class _Tensor:
    """The output of the layer call `node` (or INPUT), of archdsl's shape (channels first, no
    batch axis); `channels_last`: a permute has moved its channels to torch's last axis."""

    node: str
    shape: tuple[int, ...]
    channels_last: bool = False


@dataclasses.dataclass(frozen=True)
class _Groups:
    """x.view(N, g, C/g, …): the channels as g groups, the middle of a channel shuffle; after
    transpose(1, 2), interleaved."""

    tensor: _Tensor
    groups: int
    transposed: bool = False


@dataclasses.dataclass(frozen=True)
class _Pieces:
    """x.chunk(n, dim=1), of which each [i] is a Chunk(i, n)."""

    tensor: _Tensor
    chunks: int
    count: int  # torch.chunk may cut fewer pieces than asked


@dataclasses.dataclass(frozen=True)
class _Crop:
    """x[..., a:b, c:d]: a window of each spatial axis, (start, size), which a concatenation
    may center-crop (Concat(crop=true))."""

    tensor: _Tensor
    window: tuple[tuple[int, int], ...]


@dataclasses.dataclass(frozen=True, eq=False)
class _Parameter:
    """A parameter or buffer read in forward (torchvision ConvNeXt's layer_scale)."""

    node: fx.Node
    value: torch.Tensor


class _Plain:
    """A number, a size, a dtype: what feeds shapes and settings, not the network."""


class _Broken:
    """The result of an unsupported call that is no single tensor: what reads it is not listed
    again."""


PLAIN, BROKEN = _Plain(), _Broken()
_TENSORISH = (_Tensor, _Groups, _Pieces, _Crop, _Parameter)


class _Reader:
    """Reads a traced graph, node by node, into ImportedNodes; collects what it cannot."""

    def __init__(self, root: nn.Module, input_shape: tuple[int, ...]):
        self.root = root
        self.input_shape = input_shape
        self.values: dict[fx.Node, object] = {}
        self.nodes: list[ImportedNode] = []
        self.unsupported: list[str] = []
        self.order: list[fx.Node] = []
        self.calls: collections.Counter = collections.Counter()
        self.read_attributes: set[str] = set()  # those made a layer (LayerScale)
        self.attributes: set[str] = set()  # every parameter and buffer forward reads
        self.stand_ins: set[str] = set()  # the results of unsupported calls
        self.uncalled = False  # whether a module with weights is never called

    def read(self, graph: fx.Graph) -> None:
        output = next(n for n in graph.nodes if n.op == "output")
        live = _ancestors(output)
        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        for node in graph.nodes:
            if node in live:
                self.order.append(node)
                self.values[node] = self._value(node, placeholders)
        self._check_coverage()

    def _value(self, node: fx.Node, placeholders: list[fx.Node]):
        if node.op == "placeholder":
            if node is placeholders[0]:
                return _Tensor(INPUT, self.input_shape)
            return self._unsupported(node, f"forward's argument {node.target!r}: archdsl "
                                           f"networks take one input")
        if node.op == "get_attr":
            self.attributes.add(node.target)
            return _Parameter(node, _attribute(self.root, node.target))
        if node.op == "call_module":
            return self._module(node)
        if node.op in ("call_function", "call_method"):
            return self._call(node)
        if node.op == "output":
            return self._output(node)
        return self._unsupported(node, f"an fx {node.op} node")

    # Calls of modules.

    def _module(self, node: fx.Node):
        module = _submodule(self.root, node.target)
        kind = type(module).__name__
        self.calls[node.target] += 1
        cls = _layer_modules().get(kind)
        if cls is None:
            return self._unsupported(node, "no archdsl layer")
        if self.calls[node.target] == 2 and next(_tensors(module), None) is not None:
            self._unsupported(node, "called a second time: archdsl gives every call its own "
                                    "weights, so shared ones cannot be imported")
        if len(node.args) != 1 or node.kwargs:
            return self._unsupported(node, f"called with {len(node.args) + len(node.kwargs)} "
                                           f"arguments; archdsl layers take one tensor")
        tensor = self.values[node.args[0]]
        if not isinstance(tensor, _Tensor):
            return self._stand_in(node, tensor, "reads what is no single tensor")
        last_axis = kind in cls.torch_last_axis
        if tensor.channels_last and not (cls.elementwise or last_axis):
            return self._unsupported(node, "reads a tensor with the channels last (permuted)")
        if last_axis and not tensor.channels_last and len(tensor.shape) > 1:
            return self._unsupported(node, f"acts on the last axis of a "
                                           f"{format_shape(tensor.shape)} map, not on its "
                                           f"channels")
        try:
            values = cls.from_torch_module(module, tensor.shape)
        except (ValueError, AttributeError) as error:
            return self._unsupported(node, str(error))
        return self._layer(node, cls, values, tensor, node.target.rsplit(".", 1)[-1])

    # Calls of functions and methods.

    def _call(self, node: fx.Node):
        name = _function_name(node)
        args = fx.node.map_arg(node.args, self.values.__getitem__)
        kwargs = fx.node.map_arg(node.kwargs, self.values.__getitem__)
        operands = _flattened((args, kwargs))
        if any(isinstance(v, _Broken) for v in operands):
            return BROKEN
        if not any(isinstance(v, _TENSORISH) for v in operands):
            if _meta_shape(node) is not None:
                return self._unsupported(node, "makes a tensor inside forward")
            return PLAIN  # arithmetic on sizes: x.size(1) // 2
        structure = _STRUCTURE.get(name)
        if structure is not None:
            try:
                return structure(self, node, *args, **kwargs)
            except TypeError:  # arguments the structure does not take (out=…)
                return self._unsupported(node, f"with arguments {args[1:]!r} {kwargs!r}")
        candidates = _layer_functions().get(name)
        if candidates is not None:
            return self._layer_call(node, name, candidates, args, kwargs)
        return self._unsupported(node, "no archdsl layer")

    def _layer_call(self, node, name, candidates, args, kwargs):
        tensor, *rest = args
        if not isinstance(tensor, _Tensor):
            return self._stand_in(node, tensor, "reads what is no single tensor")
        if any(isinstance(v, (*_TENSORISH, _Plain)) for v in _flattened((rest, kwargs))):
            return self._unsupported(node, "a setting computed in forward")
        for cls in candidates:
            names = cls.torch_functions[name]
            if len(rest) > len(names):
                return self._unsupported(node, f"{len(rest)} arguments after the input; "
                                               f"archdsl reads {', '.join(names) or 'none'}")
            settings = {**dict(zip(names, rest)), **kwargs}
            try:
                values = cls.from_torch_call(name, settings, tensor.shape)
            except ValueError as error:
                return self._unsupported(node, str(error))
            if values is not None:
                if tensor.channels_last and not cls.elementwise:
                    return self._unsupported(node, "reads a tensor with the channels last "
                                                   "(permuted)")
                return self._layer(node, cls, values, tensor)
        shown = ", ".join([*map(repr, rest), *(f"{k}={v!r}" for k, v in kwargs.items())])
        return self._unsupported(node, f"with {shown or 'no settings'} is no archdsl layer")

    # Making nodes.

    def _layer(self, node, cls, values: dict, tensor: _Tensor, attribute: str | None = None):
        """A single-input layer call; a layer that passes its input through leaves none."""
        if cls.passes_through:
            return tensor
        self._add(node, cls.dsl_name, values, (tensor.node,), attribute)
        return _Tensor(node.name, self._shape(node, tensor.channels_last), tensor.channels_last)

    def _merge(self, node, layer: str, tensors, values: dict | None = None) -> _Tensor:
        self._add(node, layer, values or {}, tuple(t.node for t in tensors))
        return _Tensor(node.name, self._shape(node, tensors[0].channels_last),
                       tensors[0].channels_last)

    def _add(self, node, layer: str, values: dict, inputs: tuple[str, ...],
             attribute: str | None = None, name: str | None = None) -> None:
        self.nodes.append(ImportedNode(
            name=name or node.name, layer=layer, arguments=layer_class(layer).written(values),
            inputs=inputs, scope=_scope(node, self.root), attribute=attribute,
            source=_source(node, self.root)))

    def _shape(self, node: fx.Node, channels_last: bool = False) -> tuple[int, ...]:
        shape = _meta_shape(node)
        if channels_last:
            return (shape[-1], *shape[:-1])
        return shape

    def _unsupported(self, node: fx.Node, problem: str):
        where = _location(node)
        self.unsupported.append(f"{_source(node, self.root)}: {problem}"
                                + (f" ({where})" if where else ""))
        self.stand_ins.add(node.name)
        return self._stand_in(node)

    def _stand_in(self, node: fx.Node, operand=None, problem: str | None = None):
        """What an unsupported call gives, for the rest to be read: a tensor of its shape."""
        if problem is not None and not isinstance(operand, _Broken):
            return self._unsupported(node, problem)
        shape = _meta_shape(node)
        return BROKEN if shape is None else _Tensor(node.name, shape)

    # Structure: merges, reshaping, picking channels.

    def _output(self, node: fx.Node):
        value = self.values.get(node.args[0]) if isinstance(node.args[0], fx.Node) else None
        if isinstance(value, _Broken) or getattr(value, "node", None) in self.stand_ins:
            return value
        if not isinstance(value, _Tensor) or value.channels_last:
            return self._unsupported(node, "forward returns what is no single tensor with "
                                           "the channels first")
        if value.node == INPUT:
            return self._unsupported(node, "forward returns its input unchanged")
        if self.nodes and self.nodes[-1].name != value.node:
            return self._unsupported(node, "forward returns a result that is not its last")
        return value

    def _sum(self, node, a, b, *, alpha=1):
        if not (isinstance(a, _Tensor) and isinstance(b, _Tensor)):
            return self._unsupported(node, f"adds {_described(a)} and {_described(b)}")
        if a.shape != b.shape or a.channels_last != b.channels_last or alpha != 1:
            return self._unsupported(node, f"adds tensors of shapes {format_shape(a.shape)} "
                                           f"and {format_shape(b.shape)}"
                                     + (f" with alpha={alpha}" if alpha != 1 else ""))
        return self._merge(node, "Add", (a, b))

    def _product(self, node, a, b):
        if isinstance(a, _Parameter) != isinstance(b, _Parameter):
            return self._scaled(node, a, b)
        if not (isinstance(a, _Tensor) and isinstance(b, _Tensor)) or \
                a.channels_last != b.channels_last or len(a.shape) != len(b.shape) or \
                any(x != y and 1 not in (x, y) for x, y in zip(a.shape, b.shape)):
            return self._unsupported(node, f"multiplies {_described(a)} and {_described(b)}")
        return self._merge(node, "Multiply", (a, b))

    def _scaled(self, node, a, b):
        """A per-channel scale parameter times a tensor: LayerScale(init) reading the input of
        the module the parameter belongs to, times the tensor, in operand order."""
        parameter, tensor = (a, b) if isinstance(a, _Parameter) else (b, a)
        owner, _, attribute = parameter.node.target.rpartition(".")
        entry = self._entry(owner)
        if not isinstance(tensor, _Tensor) or tensor.channels_last or entry is None or \
                parameter.node.target in self.read_attributes:
            return self._unsupported(node, f"multiplies {_described(a)} and {_described(b)}")
        try:
            values = layer_class("LayerScale").from_torch_parameter(parameter.value)
        except ValueError as error:
            return self._unsupported(node, str(error))
        if parameter.value.shape[0] != tensor.shape[0]:
            return self._unsupported(node, f"multiplies {_described(a)} and {_described(b)}")
        self.read_attributes.add(parameter.node.target)
        self._add(parameter.node, "LayerScale", values, (entry.node,), attribute)
        scale = _Tensor(parameter.node.name, (tensor.shape[0],) + (1,) * (len(tensor.shape) - 1))
        return self._merge(node, "Multiply", (scale, tensor) if a is parameter else
                           (tensor, scale))

    def _entry(self, owner: str) -> _Tensor | None:
        """The tensor a module's forward was called with: the first one that a call inside it
        reads from outside it."""
        if not owner:
            return self.values[self.order[0]]
        for node in self.order:
            if owner in _paths(node):
                for source in node.all_input_nodes:
                    value = self.values.get(source)
                    if owner not in _paths(source) and isinstance(value, _Tensor):
                        return value
        return None

    def _concat(self, node, tensors, dim=0):
        if not isinstance(tensors, (list, tuple)) or not tensors:
            return self._unsupported(node, f"concatenates {_described(tensors)}")
        first = tensors[0]
        if not isinstance(first, _Tensor) or first.channels_last or \
                dim % (len(first.shape) + 1) != 1:
            return self._unsupported(node, "concatenates along another axis than the channels")
        if len(tensors) == 1:
            return first
        inputs, crop = [first], False
        for tensor in tensors[1:]:
            if isinstance(tensor, _Crop) and tensor.window == tuple(
                    ((n - f) // 2, f) for n, f in zip(tensor.tensor.shape[1:], first.shape[1:])):
                inputs.append(tensor.tensor)
                crop = True
            elif isinstance(tensor, _Tensor) and not tensor.channels_last and \
                    tensor.shape[1:] == first.shape[1:]:
                inputs.append(tensor)
            else:
                return self._unsupported(node, f"concatenates {_described(tensor)} with a "
                                               f"{format_shape(first.shape)} tensor")
        return self._merge(node, "Concat", inputs, {"crop": crop})

    def _flatten(self, node, x, start_dim=0, end_dim=-1):
        if isinstance(x, _Groups) and x.transposed and (start_dim, end_dim) == (1, 2):
            return self._shuffled(node, x)
        if isinstance(x, _Tensor) and not x.channels_last:
            rank = len(x.shape) + 1
            if start_dim % rank == 1 and end_dim % rank == rank - 1:
                return x if len(x.shape) == 1 else self._flat(node, x)
        return self._unsupported(node, f"flattens {_described(x)} from axis {start_dim} to "
                                       f"{end_dim}")

    def _flat(self, node, x: _Tensor) -> _Tensor:
        self._add(node, "Flatten", {}, (x.node,))
        return _Tensor(node.name, self._shape(node))

    def _reshape(self, node, x, *shape):
        """view/reshape, read by the shapes: flattening, the groups of a channel shuffle and
        their way back, or nothing."""
        out = _meta_shape(node)
        batch = node.meta["tensor_meta"].shape[0] if out is not None else None
        if isinstance(x, (_Tensor, _Groups)) and batch != BATCH:
            return self._unsupported(node, f"reshapes {_described(x)} across the batch axis")
        if isinstance(x, _Groups):
            if out == x.tensor.shape:
                return self._shuffled(node, x) if x.transposed else x.tensor
        elif isinstance(x, _Tensor) and not x.channels_last:
            if out == x.shape:
                return x
            if len(out) == 1 and out[0] == math.prod(x.shape):
                return self._flat(node, x)
            if len(out) == len(x.shape) + 1 and out[2:] == x.shape[1:] and \
                    out[0] * out[1] == x.shape[0]:
                return _Groups(x, out[0])
        return self._unsupported(node, f"reshapes {_described(x)} to "
                                       f"{format_shape(out or ())}")

    def _shuffled(self, node, groups: _Groups) -> _Tensor:
        self._add(node, "ChannelShuffle", {"groups": groups.groups}, (groups.tensor.node,))
        return _Tensor(node.name, groups.tensor.shape)

    def _transpose(self, node, x, first, second):
        if isinstance(x, _Groups) and {first % 5, second % 5} == {1, 2} and \
                len(x.tensor.shape) == 3:
            return dataclasses.replace(x, transposed=not x.transposed)
        return self._unsupported(node, f"transposes axes {first} and {second} of "
                                       f"{_described(x)}")

    def _permute(self, node, x, *dims):
        dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (list, tuple)) else dims
        if isinstance(x, _Tensor) and len(dims) == len(x.shape) + 1:
            rank = len(dims)
            dims = tuple(d % rank for d in dims)
            last = (0, *range(2, rank), 1)
            first = (0, rank - 1, *range(1, rank - 1))
            if dims == tuple(range(rank)):
                return x
            if dims == (last if not x.channels_last else first):
                return dataclasses.replace(x, channels_last=not x.channels_last)
        return self._unsupported(node, f"permutes {_described(x)} to {dims}: only moving the "
                                       f"channels last and back is read")

    def _movedim(self, node, x, source, destination):
        if not isinstance(x, _Tensor) or not isinstance(source, int) or \
                not isinstance(destination, int):
            return self._unsupported(node, f"moves axes of {_described(x)}")
        order = list(range(len(x.shape) + 1))
        order.insert(destination % len(order), order.pop(source % len(order)))
        return self._permute(node, x, order)

    def _chunk(self, node, x, chunks, dim=0):
        if isinstance(x, _Tensor) and not x.channels_last and isinstance(chunks, int) and \
                isinstance(dim, int) and dim % (len(x.shape) + 1) == 1:
            return _Pieces(x, chunks, len(node.meta.get("tensor_meta", ())))
        return self._unsupported(node, f"chunks {_described(x)} along axis {dim}")

    def _item(self, node, x, index):
        if isinstance(x, _Pieces) and isinstance(index, int) and -x.count <= index < x.count:
            self._add(node, "Chunk", {"index": index % x.count, "chunks": x.chunks},
                      (x.tensor.node,))
            return _Tensor(node.name, self._shape(node))
        if isinstance(x, _Tensor) and not x.channels_last:
            window = _window(index, x.shape)
            if window is not None:
                whole = all(start == 0 and size == n
                            for (start, size), n in zip(window, x.shape[1:]))
                return x if whole else _Crop(x, window)
        return self._unsupported(node, f"indexes {_described(x)} with {index!r}")

    def _same(self, node, x, *rest, **settings):
        return x

    def _plain(self, node, *rest, **settings):
        return PLAIN

    def _check_coverage(self) -> None:
        """Every parameter and buffer of the module belongs to a layer of the graph: weights
        that the forward pass never reaches (an auxiliary head, used in training only) would
        be dropped."""
        covered = set(self.attributes)
        for target in self.calls:
            covered.update(name for name, _ in _tensors(_submodule(self.root, target),
                                                        prefix=target))
        reported: list[str] = []
        for path, module in self.root.named_modules():
            names = [name for name, _ in _tensors(module, prefix=path)]
            if not names or any(name in covered for name in names) or \
                    any(path.startswith(r + ".") or not r for r in reported):
                continue
            reported.append(path)
            self.uncalled = True
            count = sum(t.numel() for _, t in _tensors(module))
            where = f"{path} ({type(module).__name__})" if path else "the module itself"
            self.unsupported.append(f"{where}: never called in eval mode, so its "
                                    f"{count:,} parameters and buffers would be lost")
        for name, _ in _tensors(self.root):  # those of a module partly covered
            owner = name.rpartition(".")[0]
            if name not in covered and not any(owner == r or owner.startswith(r + ".") or not r
                                               for r in reported):
                self.unsupported.append(f"{name}: never used in eval mode, so it would be "
                                        f"lost")


_STRUCTURE = {
    **dict.fromkeys(["operator.add", "operator.iadd", "torch.add", "Tensor.add"],
                    _Reader._sum),
    **dict.fromkeys(["operator.mul", "operator.imul", "torch.mul", "Tensor.mul"],
                    _Reader._product),
    **dict.fromkeys(["torch.cat", "torch.concat", "torch.concatenate"], _Reader._concat),
    **dict.fromkeys(["torch.flatten", "Tensor.flatten"], _Reader._flatten),
    **dict.fromkeys(["Tensor.view", "Tensor.reshape", "torch.reshape"], _Reader._reshape),
    **dict.fromkeys(["torch.transpose", "Tensor.transpose"], _Reader._transpose),
    **dict.fromkeys(["torch.permute", "Tensor.permute"], _Reader._permute),
    **dict.fromkeys(["torch.movedim", "Tensor.movedim"], _Reader._movedim),
    **dict.fromkeys(["torch.chunk", "Tensor.chunk"], _Reader._chunk),
    "operator.getitem": _Reader._item,
    "Tensor.contiguous": _Reader._same,
    **dict.fromkeys(["Tensor.size", "Tensor.dim", "builtins.getattr"], _Reader._plain),
}


# The layer classes' torch names, looked up.

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
def _layer_functions() -> dict[str, list[type]]:
    """Function name ("torch.nn.functional.relu", "Tensor.mean") -> the layer classes that
    may stand for a call of it, in the order to ask them."""
    found = collections.defaultdict(list)
    for name in layer_names():
        for function in layer_class(name).torch_functions:
            found[function].append(layer_class(name))
    return dict(found)


@functools.cache
def _known_functions() -> dict[object, str]:
    """The function objects named in _STRUCTURE and by the layers -> their names."""
    known = {}
    for name in [*_STRUCTURE, *_layer_functions()]:
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


def _function_name(node: fx.Node) -> str:
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


# Where a call is made.

def _paths(node: fx.Node) -> set[str]:
    return {path for path, _ in node.meta.get("nn_module_stack", {}).values()}


def _stack(node: fx.Node, root: nn.Module) -> list[tuple[str, str]]:
    """(module path, class name) of the modules the call is made in, outermost first; for a
    call of a module, the module itself last."""
    stack = [(path, cls if isinstance(cls, str) else cls.__name__)
             for path, cls in node.meta.get("nn_module_stack", {}).values()]
    if not stack and node.op in ("call_module", "get_attr"):
        # no record: the module tree along the path
        parts = node.target.split(".")[:None if node.op == "call_module" else -1]
        stack = [(".".join(parts[:i]), type(_submodule(root, ".".join(parts[:i]))).__name__)
                 for i in range(1, len(parts) + 1)]
    return [(path, cls.rpartition(".")[2]) for path, cls in stack]


def _scope(node: fx.Node, root: nn.Module) -> tuple[tuple[str, str], ...]:
    stack = _stack(node, root)
    if node.op == "call_module" and stack and stack[-1][0] == node.target:
        stack = stack[:-1]
    scope, parent = [], ""
    for path, cls in stack:
        attribute = path[len(parent) + 1:] if parent and path.startswith(parent + ".") else path
        scope.append((attribute, cls))
        parent = path
    return tuple(scope)


def _source(node: fx.Node, root: nn.Module) -> str:
    """"layer1.0.conv1 (Conv2d)" for a module, "layer1.0: operator.add" for a function."""
    if node.op == "call_module":
        return f"{node.target} ({type(_submodule(root, node.target)).__name__})"
    if node.op == "get_attr":
        return f"{node.target} (parameter)"
    if node.op in ("placeholder", "output"):
        return "forward"
    return _function_source(node)


def _function_source(node: fx.Node) -> str:
    paths = list(node.meta.get("nn_module_stack", {}).values())
    return f"{paths[-1][0]}: {_function_name(node)}" if paths else _function_name(node)


def _location(node: fx.Node) -> str:
    """file:line of the call in the module's code, where torch.fx recorded it."""
    frames = [(filename, line) for filename, line
              in re.findall(r'File "([^"]+)", line (\d+)', node.stack_trace or "")
              if not filename.startswith(_TORCH)]
    if not frames:
        return ""
    filename, line = frames[-1]
    return f"{Path(filename).name}:{line}"


_TORCH = str(Path(torch.__file__).parent)


# Small readers.

def _ancestors(node: fx.Node) -> set[fx.Node]:
    seen, pending = set(), [node]
    while pending:
        current = pending.pop()
        if current not in seen:
            seen.add(current)
            pending.extend(current.all_input_nodes)
    return seen


def _meta_shape(node: fx.Node) -> tuple[int, ...] | None:
    """The node's output shape without the batch axis, where it is one tensor."""
    meta = node.meta.get("tensor_meta")
    if meta is None or not hasattr(meta, "shape"):
        return None
    return tuple(meta.shape[1:])


def _flattened(value) -> list:
    if isinstance(value, (list, tuple)):
        return [item for v in value for item in _flattened(v)]
    if isinstance(value, dict):
        return _flattened(list(value.values()))
    return [value]


def _tensors(module: nn.Module, prefix: str = ""):
    """Its parameters and buffers, with their names."""
    yield from module.named_parameters(prefix=prefix)
    yield from module.named_buffers(prefix=prefix)


def _attribute(root: nn.Module, target: str):
    """The submodule, parameter, buffer or other attribute at `target`."""
    owner, _, name = target.rpartition(".")
    module = _submodule(root, owner)
    for registered in (module._modules, module._parameters, module._buffers):
        if name in registered:
            return registered[name]
    return getattr(module, name)


def _submodule(root: nn.Module, path: str) -> nn.Module:
    """The submodule at `path`, through the registered children: get_submodule's getattr
    finds nn.Module's methods first, where a child is named like one (`double`)."""
    module = root
    for part in path.split(".") if path else ():
        module = module._modules[part]
    return module


def _window(index, shape: tuple[int, ...]) -> tuple[tuple[int, int], ...] | None:
    """x[index] as (start, size) per spatial axis, where it keeps the batch and the channels
    whole and takes a contiguous window of each spatial axis; else None."""
    index = index if isinstance(index, tuple) else (index,)
    if any(i is Ellipsis for i in index):
        at = index.index(Ellipsis)
        index = index[:at] + (slice(None),) * (len(shape) + 1 - len(index) + 1) + index[at + 1:]
    index = index + (slice(None),) * (len(shape) + 1 - len(index))
    if len(index) != len(shape) + 1 or not all(isinstance(i, slice) for i in index):
        return None
    if any(not _whole(i, n) for i, n in zip(index[:2], (BATCH, shape[0]))):
        return None
    window = []
    for i, n in zip(index[2:], shape[1:]):
        if not all(v is None or isinstance(v, int) for v in (i.start, i.stop, i.step)):
            return None
        start, stop, step = i.indices(n)
        if step != 1 or stop <= start:
            return None
        window.append((start, stop - start))
    return tuple(window)


def _whole(index: slice, size: int) -> bool:
    return all(v is None or isinstance(v, int) for v in (index.start, index.stop, index.step)) \
        and index.indices(size) == (0, size, 1)


def _described(value) -> str:
    if isinstance(value, _Tensor):
        return f"a tensor of shape {format_shape(value.shape)}" + \
            (" with the channels last" if value.channels_last else "")
    if isinstance(value, _Parameter):
        return f"the parameter {value.node.target}"
    if isinstance(value, _Groups):
        return "the channels in groups"
    if isinstance(value, _Pieces):
        return "the chunks of a tensor"
    if isinstance(value, _Crop):
        return "a slice of a tensor"
    if isinstance(value, _Plain):
        return "a value computed from sizes"
    return f"the constant {value!r}"
