"""A traced fx graph, its shapes propagated, read call by call into ImportedNodes: each call
one archdsl layer, a merge of branches, or nothing (x.contiguous(), a permute that only moves
the channels last). What maps onto a layer is the layer class's own business (lookup.py finds
it, layers/importing.py reads its settings); what is structure (+, *, torch.cat, flatten,
view, chunk, the channel shuffle's view-transpose-view) is this module's, in STRUCTURE.
Whatever has no archdsl counterpart is collected, with where it is called."""
from __future__ import annotations

import collections
import dataclasses
import functools
import inspect
import math

import torch
from torch import fx, nn

from ..layers import layer_class
from ..layers.geometry import format_shape
from .graph import ImportedNode, INPUT
from .lookup import function_name, layer_functions, layer_of, resolve
from .places import attribute_at, location, paths, scope, source, submodule, tensors


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


class Reader:
    """Reads a traced graph, node by node, into ImportedNodes; collects what it cannot."""

    def __init__(self, root: nn.Module, input_shape: tuple[int, ...], batch: int):
        self.root = root
        self.input_shape = input_shape
        self.batch = batch  # that the shapes were propagated at
        self.values: dict[fx.Node, object] = {}
        self.nodes: list[ImportedNode] = []
        self.unsupported: list[str] = []
        self.order: list[fx.Node] = []
        self.calls: collections.Counter = collections.Counter()
        self.scales: set[str] = set()  # the parameters made a layer (LayerScale)
        self.attributes: set[str] = set()  # every parameter and buffer forward reads
        self.stand_ins: set[str] = set()  # the results of unsupported calls
        self.uncalled = False  # whether a module with weights is never called
        self.owners: dict[int, str] = {}  # a parameter's id -> the module called with it first

    def read(self, graph: fx.Graph) -> None:
        output = next(n for n in graph.nodes if n.op == "output")
        live = _ancestors(output)
        for node in graph.nodes:
            if node in live:
                self.order.append(node)
                self.values[node] = self._value(node)
        self._check_coverage()

    def _value(self, node: fx.Node):
        if node.op == "placeholder":  # the only one (_one_input)
            return _Tensor(INPUT, self.input_shape)
        if node.op == "get_attr":
            self.attributes.add(node.target)
            return _Parameter(node, attribute_at(self.root, node.target))
        if node.op == "call_module":
            return self._module(node)
        if node.op in ("call_function", "call_method"):
            return self._call(node)
        if node.op == "output":
            return self._output(node)
        return self._unsupported(node, f"an fx {node.op} node")

    # Calls of modules.

    def _module(self, node: fx.Node):
        module = submodule(self.root, node.target)
        kind = type(module).__name__
        self.calls[node.target] += 1
        cls = layer_of(module)
        if cls is None:
            return self._unsupported(node, "no archdsl layer")
        if self.calls[node.target] == 2 and next(tensors(module), None) is not None:
            self._unsupported(node, "called a second time: archdsl gives every call its own "
                                    "weights, so shared ones cannot be imported")
        others = {self.owners.setdefault(id(p), node.target)
                  for p in module.parameters()} - {node.target}
        if others:
            self._unsupported(node, f"shares its weights with {', '.join(sorted(others))}: "
                                    f"archdsl gives every layer its own")
        if len(node.args) != 1 or node.kwargs:
            return self._unsupported(node, f"called with {len(node.args) + len(node.kwargs)} "
                                           f"arguments; archdsl layers take one tensor")
        tensor = self.values[node.args[0]]
        if not isinstance(tensor, _Tensor):
            return self._unreadable(node, tensor)
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
        name = function_name(node)
        args = fx.node.map_arg(node.args, self.values.__getitem__)
        kwargs = fx.node.map_arg(node.kwargs, self.values.__getitem__)
        operands = _flattened((args, kwargs))
        if any(isinstance(v, _Broken) for v in operands):
            return BROKEN
        if not any(isinstance(v, _TENSORISH) for v in operands):
            if _meta_shape(node) is not None:
                return self._unsupported(node, "makes a tensor inside forward")
            return PLAIN  # arithmetic on sizes: x.size(1) // 2
        structure = _structure(node)
        if structure is not None:
            try:
                inspect.signature(structure).bind(self, node, *args, **kwargs)
            except TypeError:  # arguments the structure does not read (out=…)
                return self._unsupported(node, f"with the arguments {args[1:]!r} {kwargs!r}")
            return structure(self, node, *args, **kwargs)
        candidates = layer_functions().get(name)
        if candidates is not None:
            return self._layer_call(node, name, candidates, args, kwargs)
        return self._unsupported(node, "no archdsl layer")

    def _layer_call(self, node, name, candidates, args, kwargs):
        tensor, *rest = args
        if not isinstance(tensor, _Tensor):
            return self._unreadable(node, tensor)
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
             attribute: str | None = None) -> None:
        self.nodes.append(ImportedNode(
            name=node.name, layer=layer, arguments=layer_class(layer).written(values),
            inputs=inputs, scope=scope(node, self.root), attribute=attribute,
            source=source(node, self.root)))

    def _shape(self, node: fx.Node, channels_last: bool = False) -> tuple[int, ...]:
        shape = _meta_shape(node)
        if channels_last:
            return (shape[-1], *shape[:-1])
        return shape

    def _unsupported(self, node: fx.Node, problem: str):
        where = location(node)
        self.unsupported.append(f"{source(node, self.root)}: {problem}"
                                + (f" ({where})" if where else ""))
        return self._stand_in(node)

    def _unreadable(self, node: fx.Node, operand):
        """A layer called on what is no single tensor; after an unsupported call that gave no
        tensor, nothing more is said."""
        if isinstance(operand, _Broken):
            return self._stand_in(node)
        return self._unsupported(node, f"reads {_described(operand)}, which is no tensor "
                                       f"an archdsl layer takes")

    def _stand_in(self, node: fx.Node):
        """What an unsupported call gives, for the rest to be read: a tensor of its shape."""
        self.stand_ins.add(node.name)
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
                parameter.node.target in self.scales:
            return self._unsupported(node, f"multiplies {_described(a)} and {_described(b)}")
        try:
            values = layer_class("LayerScale").from_torch_parameter(parameter.value)
        except ValueError as error:
            return self._unsupported(node, str(error))
        # LayerScale reads its channels from its input: the entry's must be the scale's
        if {parameter.value.shape[0], entry.shape[0]} != {tensor.shape[0]} or \
                parameter.value.dim() != len(tensor.shape) or entry.channels_last:
            return self._unsupported(node, f"multiplies {_described(a)} and {_described(b)}")
        self.scales.add(parameter.node.target)
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
            if owner in paths(node):
                for producer in node.all_input_nodes:
                    value = self.values.get(producer)
                    if owner not in paths(producer) and isinstance(value, _Tensor):
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
        if isinstance(x, (_Tensor, _Groups)) and batch != self.batch:
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
            window = _window(index, x.shape, self.batch)
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
            covered.update(name for name, _ in tensors(submodule(self.root, target),
                                                        prefix=target))
        reported: list[str] = []
        for path, module in self.root.named_modules():
            names = [name for name, _ in tensors(module, prefix=path)]
            if not names or any(name in covered for name in names) or \
                    any(path.startswith(r + ".") or not r for r in reported):
                continue
            reported.append(path)
            self.uncalled = True
            count = sum(t.numel() for _, t in tensors(module))
            where = f"{path} ({type(module).__name__})" if path else "the module itself"
            self.unsupported.append(f"{where}: never called in eval mode, so its "
                                    f"{count:,} parameters and buffers would be lost")
        for name, _ in tensors(self.root):  # those of a module partly covered
            owner = name.rpartition(".")[0]
            if name not in covered and not any(owner == r or owner.startswith(r + ".") or not r
                                               for r in reported):
                self.unsupported.append(f"{name}: never used in eval mode, so it would be "
                                        f"lost")


STRUCTURE = {
    **dict.fromkeys(["operator.add", "operator.iadd", "torch.add", "Tensor.add", "Tensor.add_"],
                    Reader._sum),
    **dict.fromkeys(["operator.mul", "operator.imul", "torch.mul", "Tensor.mul", "Tensor.mul_"],
                    Reader._product),
    **dict.fromkeys(["torch.cat", "torch.concat", "torch.concatenate"], Reader._concat),
    **dict.fromkeys(["torch.flatten", "Tensor.flatten"], Reader._flatten),
    **dict.fromkeys(["Tensor.view", "Tensor.reshape", "torch.reshape"], Reader._reshape),
    **dict.fromkeys(["torch.transpose", "Tensor.transpose"], Reader._transpose),
    **dict.fromkeys(["torch.permute", "Tensor.permute"], Reader._permute),
    **dict.fromkeys(["torch.movedim", "Tensor.movedim"], Reader._movedim),
    **dict.fromkeys(["torch.chunk", "Tensor.chunk"], Reader._chunk),
    "operator.getitem": Reader._item,
    "Tensor.contiguous": Reader._same,
    **dict.fromkeys(["Tensor.size", "Tensor.dim", "builtins.getattr"], Reader._plain),
}


@functools.cache
def _structures() -> tuple[dict, dict]:
    """STRUCTURE by the function objects its names resolve to, and by method name."""
    functions, methods = {}, {}
    for name, read in STRUCTURE.items():
        if name.startswith("Tensor."):
            methods[name.removeprefix("Tensor.")] = read
        else:
            functions[resolve(name)] = read
    return functions, methods


def _structure(node: fx.Node):
    """How the Reader reads a call of structure, or None."""
    functions, methods = _structures()
    return methods.get(node.target) if node.op == "call_method" else functions.get(node.target)


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


def _window(index, shape: tuple[int, ...], batch: int) -> tuple[tuple[int, int], ...] | None:
    """x[index] as (start, size) per spatial axis, where it keeps the batch and the channels
    whole and takes a contiguous window of each spatial axis; else None."""
    index = index if isinstance(index, tuple) else (index,)
    if any(i is Ellipsis for i in index):
        at = index.index(Ellipsis)
        index = index[:at] + (slice(None),) * (len(shape) + 1 - len(index) + 1) + index[at + 1:]
    index = index + (slice(None),) * (len(shape) + 1 - len(index))
    if len(index) != len(shape) + 1 or not all(isinstance(i, slice) for i in index):
        return None
    if any(not _whole(i, n) for i, n in zip(index[:2], (batch, shape[0]))):
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
