"""The layer contract and the registry of layer classes.

A layer is a frozen dataclass: its fields are its DSL arguments (positional fields first), their
annotations say what values are allowed, and its methods resolve, once per input shape, its
Facts (output shape, parameters, buffers, MACs, receptive-field window, description), explain
that arithmetic and state the torch module for those facts as a constructor call in plain data
(torch_call: what build instantiates and the Python export writes), all in one place. Layers
without tensors that the export writes into forward (`a + b`) say how (python_expression).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable, ClassVar

from ..errors import ArgumentError, UnknownLayerError
from . import importing
from .arguments import (bind_arguments, from_torch, KEYWORDS, keyword_slip, literal,
                        suggest)
from .geometry import count_formula, format_shape, numel, Shape
from .torch_call import Given, TorchCall


@dataclasses.dataclass(frozen=True)
class Kept:
    """One tensor autograd keeps for the backward pass (train mode, CPU, float32), as measured
    with torch.autograd.graph.saved_tensors_hooks. Parameters and buffers are never counted:
    they exist anyway."""

    tensor: str  # "input", "input1", …: that input's storage; "output"; or a tensor of the
    #              layer's own ("indices", "mask", "mean"), a new storage
    shape: Shape  # without the batch axis
    itemsize: int = 4  # bytes per element: float32 4, int64 indices 8
    per_example: bool = True  # False: one for the whole batch (BatchNorm's per-channel means)
    # Kept only where one of these inputs requires grad: a product keeps each factor for the
    # others' gradients. Empty: whenever autograd records the layer at all.
    when: tuple[str, ...] = ()
    # torch's matmul reshapes a channels-last view of the input, which copies it (a new storage
    # of the input's size) except at batch 1, where the reshape is a view.
    copied_above_batch_1: bool = False
    # Of the type the layer computes in (float32, or bfloat16 under autocast), not `itemsize`
    # always: Dropout's mask. Statistics and indices keep their types.
    typed: bool = False
    # A parameter (a convolution's weight): not counted, except for the copy in bfloat16 that
    # autocast makes and the layer keeps.
    parameter: bool = False

    def as_tuple(self) -> tuple:
        # Its fields are builtins already: dataclasses.astuple's deep copy of each was a fifth
        # of analyze's time
        return tuple(getattr(self, name) for name in _KEPT_FIELDS)


_KEPT_FIELDS = tuple(field.name for field in dataclasses.fields(Kept))


@dataclasses.dataclass(frozen=True, kw_only=True)
class Facts:
    """A layer at one input shape, resolved once (Layer.resolve) and read by everything after:
    analysis, explain, sweep, draw and the compiler. Plain data only: builtins and tuples."""

    inputs: tuple[Shape, ...]
    output: Shape
    parameters: tuple[tuple[str, Shape], ...] = ()  # torch's names and shapes, in torch's order
    biases: tuple[str, ...] = ()  # which of the parameters are biases: the layer says
    buffers: tuple[tuple[str, Shape], ...] = ()
    buffer_bytes: int = 0  # float32 but for the integer ones (BatchNorm's num_batches_tracked)
    macs: int = 0  # multiply-accumulates per example; conv and linear only (torchvision's rule)
    window: tuple[tuple[int, int], ...] | None  # (kernel extent, stride) per spatial axis;
    #                                             None where an output sees no single window
    description: str  # the layer as torch would build it: Conv2d(1→16, k=3, s=1, p=1)
    # What autograd keeps for backward (Layer.kept): each Kept as the plain tuple of its fields
    saved: tuple[tuple, ...] = ()
    # Where the output lives: "new" storage, "input" (a view of the first input: Flatten,
    # Chunk) or "parameter" (a view of a parameter: LayerScale's scale), no activation.
    output_storage: str = "new"
    # The same in eval mode, without grad, where it differs: Dropout passes its input through.
    inference_storage: str = "new"
    # How torch.autocast runs the layer on the CPU (Layer.autocast): "lower" in bfloat16,
    # "float32", or "follow" its inputs' type.
    autocast: str = "follow"

    @property
    def params(self) -> int:
        return sum(numel(shape) for _, shape in self.parameters)

    @property
    def bias_count(self) -> int:
        return sum(numel(shape) for name, shape in self.parameters if name in self.biases)

    @property
    def buffer_count(self) -> int:
        return sum(numel(shape) for _, shape in self.buffers)


@dataclasses.dataclass(frozen=True, kw_only=True)
class WindowFacts(Facts):
    """A sliding window's arguments (convolution, pooling), one value per spatial axis, resolved
    against the input's rank: what build and explain read instead of the layer's fields."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]  # 'same' and 'valid' resolve to zeros; the layer keeps the word
    dilation: tuple[int, ...]
    output_padding: tuple[int, ...] = ()  # transposed convolution only


@dataclasses.dataclass(frozen=True)
class Layer:
    """Base of every layer. Subclasses are dataclasses registered with @register.

    `resolve` turns the layer and its input shapes into Facts, once; `explain` and `build` read
    them. Simple layers state only what differs from the defaults below (an output shape,
    parameter shapes); layers with arithmetic (Conv, the pools) override `resolve`.
    """

    dsl_name: ClassVar[str]
    # What the layer is, for the diagram's colours: conv, linear, pool, resize, norm, scale,
    # merge, regularization, shape, activation. Every registered layer says.
    kind: ClassVar[str]
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
    # The parameters that count as biases; the others are weights.
    bias_parameters: ClassVar[tuple[str, ...]] = ("bias",)
    # An output reads many input positions through no single window (Flatten, adaptive pooling):
    # no receptive field. Otherwise each output reads its own position only.
    mixes_positions: ClassVar[bool] = False
    # Its output is a factor to multiply by (LayerScale), which analysis expects a product to
    # read; `multiplies`: the product that does (Multiply).
    factor: ClassVar[bool] = False
    multiplies: ClassVar[bool] = False
    # Importing from PyTorch (archdsl import, layers/importing.py). The torch module classes
    # this layer stands for, by class name: PyTorch's, torchvision's, and the helper classes
    # (layers/modules.py) that an exported Python file defines.
    torch_modules: ClassVar[tuple[str, ...]] = ()
    # Those of torch_modules that read their features from the last axis (nn.LayerNorm,
    # nn.Linear): on a C×H×W map they are this layer over the channels only once a permute has
    # moved the channels last (ConvNeXt's block).
    torch_last_axis: ClassVar[tuple[str, ...]] = ()
    # The functions that are this layer ("torch.nn.functional.relu", "Tensor.relu" for the
    # method), each with PyTorch's names of its arguments after the input, in order.
    torch_functions: ClassVar[dict[str, tuple[str, ...]]] = {}
    # PyTorch settings that archdsl builds one way only, with the value they must have.
    torch_fixed: ClassVar[dict[str, object]] = {}
    # The same result whatever the order of the axes (element-wise), so a channels-last tensor
    # may pass through it.
    elementwise: ClassVar[bool] = False
    # Its output is its input (nn.Identity): an imported network needs no step for it.
    passes_through: ClassVar[bool] = False
    # What autograd keeps of this layer for backward, where the layer keeps one tensor of its
    # input's or output's shape: "input", "output", or None (nothing). Layers that keep more
    # override `kept`.
    keeps: ClassVar[str | None] = None
    # How torch.autocast runs it on the CPU: "lower" (in bfloat16: convolutions and matrix
    # products, which keep a bfloat16 copy of their weight), "float32" (cast up), or "follow"
    # (in its input's type, the widest of its inputs'). CUDA's lists differ for a few layers
    # (LayerNorm, GroupNorm and Softmax run in float32 there).
    autocast: ClassVar[str] = "follow"
    # Bytes per element of the buffers that are not float32, by name.
    buffer_itemsizes: ClassVar[dict[str, int]] = {}
    frozen: bool = dataclasses.field(default=False, kw_only=True)

    def check(self) -> None:
        """Checks among arguments that need no input shape; raise ArgumentError(argument=...)."""

    def references(self) -> tuple[str, ...]:
        """Names of earlier results (given with `as`) this layer reads besides its input."""
        return ()

    # Single-input layers take one shape; merge layers (Add, Concat) one per input.
    def resolve(self, *shapes: Shape) -> Facts:
        """Everything known about the layer at these input shapes (batch dimension excluded),
        computed once; raises ShapeError where the shapes do not fit."""
        output = self.output_shape(*shapes)
        window = None if self.mixes_positions else tuple((1, 1) for _ in shapes[0][1:])
        return self.described(Facts(inputs=shapes, output=output, window=window, description="",
                                    **self.tensors(self.parameter_shapes(*shapes),
                                                   self.buffer_shapes(*shapes))))

    def output_shape(self, *shapes: Shape) -> Shape:
        return shapes[0]

    def parameter_shapes(self, *shapes: Shape) -> dict[str, Shape]:
        """Named parameters as torch creates them, in its order."""
        return {}

    def buffer_shapes(self, *shapes: Shape) -> dict[str, Shape]:
        return {}

    def tensors(self, parameters: dict[str, Shape],
                buffers: dict[str, Shape] | None = None) -> dict:
        """Facts' fields for the named tensors: parameters and buffers in order, and which
        parameters are biases (this class's bias_parameters)."""
        return {"parameters": tuple(parameters.items()),
                "biases": tuple(name for name in parameters if name in self.bias_parameters),
                "buffers": tuple((buffers or {}).items()),
                "buffer_bytes": sum(numel(shape) * self.buffer_itemsizes.get(name, 4)
                                    for name, shape in (buffers or {}).items())}

    def described(self, facts: Facts) -> Facts:
        """The facts, made with an empty description, completed: describe reads the rest of them,
        `kept` and `output_storage` what autograd keeps. Set in place (the facts are new and not
        yet shared): a copy costs a tenth of analyze."""
        object.__setattr__(facts, "description", self.describe(facts))
        # Facts hold plain data: each Kept as its tuple of fields (memory.py reads them back)
        object.__setattr__(facts, "saved", tuple(kept.as_tuple() for kept in self.kept(facts)))
        object.__setattr__(facts, "output_storage", self.output_storage(facts))
        object.__setattr__(facts, "inference_storage", self.inference_storage(facts))
        object.__setattr__(facts, "autocast", self.autocast_policy(facts))
        return facts

    def kept(self, facts: Facts) -> tuple[Kept, ...]:
        """The tensors autograd keeps for this layer's backward pass in train mode on the CPU
        (archdsl/memory.py adds them up, counting a storage kept twice once)."""
        if self.keeps is None:
            return ()
        return (Kept(self.keeps, facts.output if self.keeps == "output" else facts.inputs[0]),)

    def output_storage(self, facts: Facts) -> str:
        """"new", "input" (the output is a view of the first input) or "parameter"."""
        return "input" if self.passes_through else "new"

    def autocast_policy(self, facts: Facts) -> str:
        """How torch.autocast runs the layer at these shapes on the CPU (see `autocast`)."""
        return self.autocast

    def inference_storage(self, facts: Facts) -> str:
        """output_storage in eval mode: the same but for layers that act in training only."""
        return self.output_storage(facts)

    def settings(self, *first: str) -> str:
        """`first`, then the arguments that differ from their defaults, as written:
        `96, eps=1e-06`."""
        return ", ".join([*first, *(f"{f.name}={literal(getattr(self, f.name))}"
                                    for f in dataclasses.fields(self)
                                    if f.name != "frozen" and getattr(self, f.name) != f.default)])

    def describe(self, facts: Facts) -> str:
        """One line for the row: the arguments that differ from their defaults."""
        changed = self.settings()
        return f"{self.dsl_name}({changed})" if changed else self.dsl_name

    def explain(self, facts: Facts) -> dict:
        """The layer's arithmetic with the numbers filled in, as text: `shape` (lines: the
        output size's formula per spatial axis, or a sentence), `params`, `macs` and `buffers`
        (None where there are none). Layers with a formula override the parts they know."""
        shapes, out = facts.inputs, facts.output
        return {
            "shape": ["shape unchanged" if all(shape == out for shape in shapes) else
                      f"{' and '.join(format_shape(s) for s in shapes)} → {format_shape(out)}"],
            "params": count_formula(facts.parameters),
            "macs": f"{facts.macs:,}",
            "buffers": count_formula(facts.buffers) if facts.buffers else None,
        }

    def torch_call(self, facts: Facts) -> TorchCall:
        """The torch module for inputs of these facts' shapes, as its constructor call: what
        build instantiates and the Python export writes."""
        raise NotImplementedError

    def build(self, facts: Facts):
        """The torch module for inputs of these facts' shapes."""
        return self.torch_call(facts).instantiate()

    def python_expression(self, facts: Facts, inputs: list[str]) -> str | None:
        """The layer as an expression in the exported forward over its inputs' Python
        expressions (`a + b`), for layers without tensors; None: a module (torch_call)."""
        return None

    def given(self, name: str) -> Given:
        """The argument `name`, tagged for the export to write as the spec gives it."""
        return Given(name, getattr(self, name))

    @classmethod
    def from_torch_module(cls, module, shape: Shape) -> dict:
        """This layer's arguments (field: value) for `module`, one of torch_modules, on an
        input of archdsl's shape `shape` (channels first); a ValueError names the setting that
        archdsl cannot express. Read by PyTorch's names (torch_keywords); layers whose torch
        module keeps a setting otherwise override this."""
        return importing.module_arguments(cls, module, shape)

    @classmethod
    def from_torch_call(cls, function: str, settings: dict, shape: Shape) -> dict | None:
        """This layer's arguments for a call of `function` (a name of torch_functions) with
        `settings` (PyTorch's argument names: values) on an input of shape `shape`; None where
        the call is not this layer (x.mean() over the channels is no GlobalAvgPool)."""
        return importing.translated(cls, settings)

    @classmethod
    def written(cls, values: dict) -> tuple[tuple[str | None, object], ...]:
        """`values` (field: value) as a person writes the call: only those that differ from
        the defaults, positional first where archdsl takes them by position."""
        return importing.written(cls, values)

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
    if not hasattr(cls, "kind"):
        raise ValueError(f"layer {name!r} declares no kind (conv, linear, pool, activation, …)")
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
        # The whole list only where no name is close: with three dozen layers it is noise
        # beside "did you mean 'Conv'?".
        suggestion = suggest(call.name, _REGISTRY)
        raise UnknownLayerError(f"unknown layer {call.name!r}{suggestion}", call.name_span,
                                hint=None if suggestion else "layers: " + ", ".join(layer_names()))
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
