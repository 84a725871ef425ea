"""Element-wise activations: the output has the input's shape, and only PReLU has weights (its
slopes)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from ..errors import ArgumentError
from .base import Facts, Kept, Layer, register
from .geometry import Shape
from .torch_call import Inferred, TorchCall


class _Elementwise(Layer):
    """Builds torch.nn.<same name>(keyword=argument, ...)."""

    kind = "activation"
    elementwise = True
    # Most activations' gradients are computed from the input; ReLU's, Sigmoid's, Tanh's and
    # Softmax's from the output (measured: saved_tensors_hooks, storage against input/output).
    keeps = "input"
    # (torch's keyword, this layer's field, torch's default); None: always written
    _torch_keywords: ClassVar[tuple[tuple[str, str, object], ...]] = ()

    def torch_call(self, facts: Facts) -> TorchCall:
        return TorchCall.of(f"torch.nn:{self.dsl_name}",
                            *((keyword, self.given(name)) for keyword, name, _ in
                              self._torch_keywords),
                            **{keyword: default for keyword, _, default in self._torch_keywords
                               if default is not None})


def _plain(name: str, doc: str, functions: dict[str, tuple[str, ...]],
           **attributes) -> type[Layer]:
    """A layer built as torch.nn.<name>() and imported from it or from `functions`."""
    return register(dataclass(frozen=True)(type(name, (_Elementwise,), {
        "__doc__": doc, "torch_modules": (name,), "torch_functions": functions,
        **attributes})))


def _functional(name: str, inplace: bool = True) -> dict[str, tuple[str, ...]]:
    """torch.nn.functional.<name>(x, inplace=False)."""
    return {f"torch.nn.functional.{name}": ("inplace",) if inplace else ()}


def _everywhere(name: str) -> dict[str, tuple[str, ...]]:
    """torch.<name>(x), x.<name>() and torch.nn.functional.<name>(x)."""
    return {f"torch.{name}": (), f"Tensor.{name}": (), f"torch.nn.functional.{name}": ()}


ReLU = _plain("ReLU", "max(0, x).", {**_functional("relu"), "torch.relu": (),
                                      "Tensor.relu": ()}, keeps="output")
ReLU6 = _plain("ReLU6", "min(max(0, x), 6).", _functional("relu6"))
SiLU = _plain("SiLU", "x · sigmoid(x), also called swish.", _functional("silu"))
Sigmoid = _plain("Sigmoid", "1 / (1 + exp(−x)).", _everywhere("sigmoid"), keeps="output")
Tanh = _plain("Tanh", "Hyperbolic tangent.", _everywhere("tanh"), keeps="output")
Hardswish = _plain("Hardswish", "x · ReLU6(x + 3) / 6, MobileNetV3's cheap swish.",
                   _functional("hardswish"))
Hardsigmoid = _plain("Hardsigmoid", "ReLU6(x + 3) / 6, MobileNetV3's cheap sigmoid.",
                     _functional("hardsigmoid"))
Mish = _plain("Mish", "x · tanh(softplus(x)).", _functional("mish"))


@register
@dataclass(frozen=True)
class Identity(_Elementwise):
    """Passes its input through unchanged."""

    torch_modules = ("Identity",)
    passes_through = True
    keeps = None

    def python_expression(self, facts: Facts, inputs: list[str]) -> str:
        return inputs[0]


@register
@dataclass(frozen=True)
class LeakyReLU(_Elementwise):
    """max(0, x) + slope · min(0, x)."""

    torch_keywords = {"negative_slope": "slope"}
    torch_modules = ("LeakyReLU",)
    torch_functions = {"torch.nn.functional.leaky_relu": ("negative_slope", "inplace")}

    slope: float = 0.01
    _torch_keywords = (("negative_slope", "slope", 0.01),)


@register
@dataclass(frozen=True)
class ELU(_Elementwise):
    """x where x > 0, else alpha · (exp(x) − 1)."""

    torch_modules = ("ELU",)
    torch_functions = {"torch.nn.functional.elu": ("alpha", "inplace")}

    alpha: float = 1.0
    _torch_keywords = (("alpha", "alpha", 1.0),)


@register
@dataclass(frozen=True)
class Hardtanh(_Elementwise):
    """x clamped to [min, max]."""

    torch_keywords = {"min_val": "min", "max_val": "max"}
    torch_modules = ("Hardtanh",)
    torch_functions = {"torch.nn.functional.hardtanh": ("min_val", "max_val", "inplace")}

    min: float = -1.0
    max: float = 1.0

    def check(self) -> None:
        if self.max <= self.min:
            raise ArgumentError(f"Hardtanh: max {self.max} must be greater than min {self.min} "
                                f"(PyTorch refuses it otherwise)", argument="max")

    _torch_keywords = (("min_val", "min", -1.0), ("max_val", "max", 1.0))


@register
@dataclass(frozen=True)
class PReLU(_Elementwise):
    """max(0, x) + a · min(0, x) with a learned slope `a`, initially `init`: one for the whole
    layer, or one per channel with per_channel=true."""

    torch_inferred = "channels"
    # PyTorch's count of slopes is 1 or the channels; archdsl reads the channels from the input.
    torch_keywords = {"num_parameters": lambda n: ("per_channel", n != 1)}
    torch_positional = ("num_parameters", "init")
    torch_modules = ("PReLU",)
    elementwise = False  # its slopes are per channel: the channels must be on axis 1

    per_channel: bool = False
    init: float = 0.25

    autocast = "lower"

    def parameter_shapes(self, shape: Shape) -> dict[str, Shape]:
        return {"weight": (shape[0] if self.per_channel else 1,)}

    def kept(self, facts: Facts) -> tuple[Kept, ...]:
        return (Kept("input", facts.inputs[0]),
                Kept("weight", dict(facts.parameters)["weight"], per_example=False,
                     parameter=True))

    def torch_call(self, facts: Facts) -> TorchCall:
        slopes = dict(facts.parameters)["weight"][0]
        return TorchCall.of("torch.nn:PReLU",
                            ("num_parameters", Inferred(slopes) if self.per_channel else 1),
                            ("init", self.given("init")), num_parameters=1, init=0.25)


@register
@dataclass(frozen=True)
class GELU(_Elementwise):
    """Gaussian error linear unit, exact or with the tanh approximation."""

    torch_modules = ("GELU",)
    torch_functions = {"torch.nn.functional.gelu": ("approximate",)}

    approximate: Literal["none", "tanh"] = "none"
    _torch_keywords = (("approximate", "approximate", "none"),)


@register
@dataclass(frozen=True)
class Softmax(_Elementwise):
    """Softmax along `dim`, counted as in PyTorch with the batch axis as 0."""

    probabilities = True
    elementwise = False
    keeps = "output"
    torch_modules = ("Softmax",)
    torch_functions = {"torch.nn.functional.softmax": ("dim", "_stacklevel", "dtype"),
                       "torch.softmax": ("dim", "dtype"), "Tensor.softmax": ("dim", "dtype")}
    torch_fixed = {"dtype": None}

    dim: int = 1

    def output_shape(self, shape: Shape) -> Shape:
        if not (1 <= self.dim <= len(shape) or -len(shape) <= self.dim <= -1):
            raise ArgumentError(f"Softmax: dim {self.dim} is not a feature axis of a "
                                f"{len(shape)}-axis input (1 to {len(shape)}; 0 is the batch)")
        return shape

    _torch_keywords = (("dim", "dim", None),)
