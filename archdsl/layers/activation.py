"""Element-wise activations: the output has the input's shape and there are no weights."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import ArgumentError
from .base import Facts, Layer, register
from .geometry import Shape


class _Elementwise(Layer):
    """Builds torch.nn.<same name>(**arguments)."""

    kind = "activation"

    def _torch_arguments(self) -> dict:
        return {}

    def build(self, facts: Facts):
        from torch import nn
        return getattr(nn, self.dsl_name)(**self._torch_arguments())


def _plain(name: str, doc: str) -> type[Layer]:
    return register(dataclass(frozen=True)(type(name, (_Elementwise,), {"__doc__": doc})))


ReLU = _plain("ReLU", "max(0, x).")
ReLU6 = _plain("ReLU6", "min(max(0, x), 6).")
SiLU = _plain("SiLU", "x · sigmoid(x), also called swish.")
Sigmoid = _plain("Sigmoid", "1 / (1 + exp(−x)).")
Tanh = _plain("Tanh", "Hyperbolic tangent.")
Identity = _plain("Identity", "Passes its input through unchanged.")


@register
@dataclass(frozen=True)
class LeakyReLU(_Elementwise):
    """max(0, x) + slope · min(0, x)."""

    slope: float = 0.01

    def _torch_arguments(self) -> dict:
        return {"negative_slope": self.slope}


@register
@dataclass(frozen=True)
class GELU(_Elementwise):
    """Gaussian error linear unit, exact or with the tanh approximation."""

    approximate: Literal["none", "tanh"] = "none"

    def _torch_arguments(self) -> dict:
        return {"approximate": self.approximate}


@register
@dataclass(frozen=True)
class Softmax(_Elementwise):
    """Softmax along `dim`, counted as in PyTorch with the batch axis as 0."""

    probabilities = True

    dim: int = 1

    def output_shape(self, shape: Shape) -> Shape:
        if not (1 <= self.dim <= len(shape) or -len(shape) <= self.dim <= -1):
            raise ArgumentError(f"Softmax: dim {self.dim} is not a feature axis of a "
                                f"{len(shape)}-axis input (1 to {len(shape)}; 0 is the batch)")
        return shape

    def _torch_arguments(self) -> dict:
        return {"dim": self.dim}
