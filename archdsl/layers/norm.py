"""Normalization over the batch, the channels, groups of channels or each channel's positions.
Their settings are keywords: a number by position reads as PyTorch's size (BatchNorm(64),
LayerNorm(64), GroupNorm(32, 64)), which archdsl infers, and is refused with the call to write
instead."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import ShapeError
from .arguments import PositiveFloat, PositiveInt, Probability
from .base import Facts, Kept, Layer, register
from .geometry import format_shape, groups_of, product, Shape, spatial_input
from .torch_call import Inferred, TorchCall


def _affine(layer: Layer, channels: int, bias: bool = True) -> dict[str, Shape]:
    """A learnable scale (weight) and shift (bias) per channel, where the layer has them."""
    if not layer.affine:
        return {}
    weights = {"weight": (channels,)}
    return {**weights, "bias": (channels,)} if bias else weights


@register
@dataclass(frozen=True)
class BatchNorm(Layer):
    """Batch normalization over the channel axis; 1d, 2d or 3d by the input's rank."""

    kind = "norm"
    # Settings by keyword only: BatchNorm(64) is PyTorch's 64 channels, which archdsl infers.
    torch_inferred = "channels"
    torch_keywords = {"num_features": None}
    torch_positional = ("num_features", "eps", "momentum", "affine", "track_running_stats")
    torch_modules = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d")

    eps: PositiveFloat = field(default=1e-5, kw_only=True)
    momentum: Probability = field(default=0.1, kw_only=True)
    affine: bool = field(default=True, kw_only=True)
    track_running_stats: bool = field(default=True, kw_only=True)

    def output_shape(self, shape: Shape) -> Shape:
        if len(shape) > 4:
            raise ShapeError(f"BatchNorm takes inputs of at most 3 spatial axes, got "
                             f"{format_shape(shape)}")
        return shape

    def parameter_shapes(self, shape: Shape) -> dict[str, Shape]:
        return {"weight": (shape[0],), "bias": (shape[0],)} if self.affine else {}

    buffer_itemsizes = {"num_batches_tracked": 8}  # int64

    def buffer_shapes(self, shape: Shape) -> dict[str, Shape]:
        if not self.track_running_stats:
            return {}
        return {"running_mean": (shape[0],), "running_var": (shape[0],),
                "num_batches_tracked": ()}

    def _torch_name(self, facts: Facts) -> str:
        return f"BatchNorm{max(1, len(facts.inputs[0]) - 1)}d"

    def kept(self, facts: Facts) -> tuple[Kept, ...]:
        # In training, the batch's mean and inverse deviation per channel: not per example.
        # The running statistics are buffers, not counted.
        # They are float32 where float32 weights or running statistics take part, else of the
        # input's type (bfloat16 under autocast).
        channels, typed = (facts.inputs[0][0],), not (self.affine or self.track_running_stats)
        return (Kept("input", facts.inputs[0]),
                Kept("save_mean", channels, per_example=False, typed=typed),
                Kept("save_invstd", channels, per_example=False, typed=typed))

    def describe(self, facts: Facts) -> str:
        return f"{self._torch_name(facts)}({facts.inputs[0][0]})"

    def torch_call(self, facts: Facts) -> TorchCall:
        return _statistics_norm(self, facts, affine=True, track_running_stats=True)


def _statistics_norm(layer: Layer, facts: Facts, **defaults) -> TorchCall:
    """BatchNorm's and InstanceNorm's constructor: the same arguments, different defaults."""
    return TorchCall.of(f"torch.nn:{layer._torch_name(facts)}",
                        ("num_features", Inferred(facts.inputs[0][0])), ("eps", layer.given("eps")),
                        ("momentum", layer.given("momentum")), ("affine", layer.given("affine")),
                        ("track_running_stats", layer.given("track_running_stats")),
                        positional=1, eps=1e-5, momentum=0.1, **defaults)


@register
@dataclass(frozen=True)
class LayerNorm(Layer):
    """Normalization over the channel axis at each position: nn.LayerNorm(F) on F flat features;
    on a C×H×W map (C×L, C×D×H×W) over the C channels at every position, as torchvision's
    LayerNorm2d does."""

    kind = "norm"
    torch_inferred = "normalized shape"
    torch_keywords = {"normalized_shape": None, "elementwise_affine": "affine"}
    torch_positional = ("normalized_shape", "eps", "elementwise_affine", "bias")
    # nn.LayerNorm(C) normalizes the last axis: the channels after a permute, or flat features;
    # torchvision's LayerNorm2d and the exported ChannelLayerNorm normalize the channels
    torch_modules = ("LayerNorm", "LayerNorm2d", "ChannelLayerNorm")
    torch_last_axis = ("LayerNorm",)

    eps: PositiveFloat = field(default=1e-5, kw_only=True)
    affine: bool = field(default=True, kw_only=True)
    bias: bool = field(default=True, kw_only=True)

    @classmethod
    def from_torch_module(cls, module, shape: Shape) -> dict:
        if tuple(module.normalized_shape) != shape[:1]:
            raise ValueError(f"normalized_shape={tuple(module.normalized_shape)} normalizes "
                             f"more than the {shape[0]} channels")
        values = super().from_torch_module(module, shape)
        if not values.get("affine", True):
            values.pop("bias", None)  # no affine, no bias either
        return values

    def parameter_shapes(self, shape: Shape) -> dict[str, Shape]:
        return _affine(self, shape[0], self.bias)

    def explain(self, facts: Facts) -> dict:
        data = super().explain(facts)
        shape, = facts.inputs
        if len(shape) > 1:
            data["shape"] = [f"normalizes the {shape[0]} channels at each of the "
                             f"{format_shape(shape[1:])} positions: shape unchanged"]
        return data

    def kept(self, facts: Facts) -> tuple[Kept, ...]:
        shape, = facts.inputs
        positions = (*shape[1:], 1)  # a mean and 1/deviation at each position of each example
        # float32 beside a float32 weight, else of the input's type
        return (Kept("input", shape), Kept("mean", positions, typed=not self.affine),
                Kept("rstd", positions, typed=not self.affine))

    def describe(self, facts: Facts) -> str:
        shape, = facts.inputs
        form = f"{len(shape) - 1}d" if len(shape) > 1 else ""
        return f"LayerNorm{form}({self.settings(str(shape[0]))})"

    def torch_call(self, facts: Facts) -> TorchCall:
        shape, = facts.inputs
        norm = "torch.nn:LayerNorm" if len(shape) == 1 else \
            "archdsl.layers.modules:ChannelLayerNorm"
        return TorchCall.of(norm, ("normalized_shape", Inferred(shape[0])),
                            ("eps", self.given("eps")),
                            ("elementwise_affine", self.given("affine")),
                            ("bias", self.given("bias")),
                            positional=1, eps=1e-5, elementwise_affine=True, bias=True)


@register
@dataclass(frozen=True)
class GroupNorm(Layer):
    """Normalization over groups of channels, each group over all its positions."""

    kind = "norm"
    mixes_positions = True  # each output reads its group's statistics over every position
    torch_inferred = "channels"
    torch_keywords = {"num_groups": "groups", "num_channels": None}
    torch_positional = ("num_groups", "num_channels", "eps", "affine")
    torch_modules = ("GroupNorm",)

    groups: PositiveInt
    eps: PositiveFloat = field(default=1e-5, kw_only=True)
    affine: bool = field(default=True, kw_only=True)

    def output_shape(self, shape: Shape) -> Shape:
        groups_of(self, shape[0], self.groups)
        return shape

    def parameter_shapes(self, shape: Shape) -> dict[str, Shape]:
        return _affine(self, shape[0])

    def explain(self, facts: Facts) -> dict:
        data = super().explain(facts)
        shape, = facts.inputs
        data["shape"] = [f"normalizes {self.groups} groups of {shape[0] // self.groups} "
                         f"channels, each over its {product((shape[0] // self.groups, *shape[1:]))}"
                         f" values: shape unchanged"]
        return data

    def kept(self, facts: Facts) -> tuple[Kept, ...]:
        groups = (self.groups,)  # the mean and 1/deviation of each example's groups
        # float32 beside a float32 weight, else of the input's type
        return (Kept("input", facts.inputs[0]), Kept("mean", groups, typed=not self.affine),
                Kept("rstd", groups, typed=not self.affine))

    def describe(self, facts: Facts) -> str:
        return f"GroupNorm({self.settings(str(facts.inputs[0][0]))})"

    def torch_call(self, facts: Facts) -> TorchCall:
        return TorchCall.of("torch.nn:GroupNorm", ("num_groups", self.given("groups")),
                            ("num_channels", Inferred(facts.inputs[0][0])),
                            ("eps", self.given("eps")), ("affine", self.given("affine")),
                            positional=2, eps=1e-5, affine=True)


@register
@dataclass(frozen=True)
class InstanceNorm(Layer):
    """Normalization of each channel over its positions, per example; 1d, 2d or 3d by the
    input's rank, with PyTorch's defaults (no affine, no running statistics)."""

    kind = "norm"
    # each output reads its channel's statistics over every position (training)
    mixes_positions = True
    torch_inferred = "channels"
    torch_keywords = {"num_features": None}
    torch_positional = ("num_features", "eps", "momentum", "affine", "track_running_stats")
    torch_modules = ("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d")

    eps: PositiveFloat = field(default=1e-5, kw_only=True)
    momentum: Probability = field(default=0.1, kw_only=True)
    affine: bool = field(default=False, kw_only=True)
    track_running_stats: bool = field(default=False, kw_only=True)

    def output_shape(self, shape: Shape) -> Shape:
        channels, spatial = spatial_input(self, shape)
        if math.prod(spatial) == 1:
            raise ShapeError(f"InstanceNorm: the {format_shape(shape)} input has one position "
                             f"per channel, and PyTorch refuses it in training (the statistics "
                             f"are over the positions)",
                             hint="LayerNorm or BatchNorm normalize a single position")
        return shape

    def parameter_shapes(self, shape: Shape) -> dict[str, Shape]:
        return _affine(self, shape[0])

    buffer_itemsizes = {"num_batches_tracked": 8}  # int64

    def buffer_shapes(self, shape: Shape) -> dict[str, Shape]:
        if not self.track_running_stats:
            return {}
        return {"running_mean": (shape[0],), "running_var": (shape[0],),
                "num_batches_tracked": ()}

    def explain(self, facts: Facts) -> dict:
        data = super().explain(facts)
        shape, = facts.inputs
        data["shape"] = [f"normalizes each of the {shape[0]} channels over its "
                         f"{format_shape(shape[1:])} positions: shape unchanged"]
        return data

    def _torch_name(self, facts: Facts) -> str:
        return f"InstanceNorm{len(facts.inputs[0]) - 1}d"

    def kept(self, facts: Facts) -> tuple[Kept, ...]:
        # torch runs batch norm on the input viewed as 1×(N·C)×…: its per-channel statistics
        # are per example and channel, and so are the affine weight and the running statistics
        # it repeats N times to match.
        channels = (facts.inputs[0][0],)
        repeated = ["save_mean", "save_invstd"] + ["weight"] * self.affine + \
            ["running_mean", "running_var"] * self.track_running_stats
        # All float32 where the float32 weight takes part; else of the input's type, the
        # running statistics repeated in it too.
        return (Kept("input", facts.inputs[0]),
                *(Kept(name, channels, typed=not self.affine) for name in repeated))

    def describe(self, facts: Facts) -> str:
        return f"{self._torch_name(facts)}({self.settings(str(facts.inputs[0][0]))})"

    def torch_call(self, facts: Facts) -> TorchCall:
        return _statistics_norm(self, facts, affine=False, track_running_stats=False)
