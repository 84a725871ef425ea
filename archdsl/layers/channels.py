"""Layers that pick or reorder channels: ShuffleNet's split (Chunk) and channel shuffle."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ArgumentError, ShapeError
from .arguments import NonNegativeInt, PositiveInt
from .base import Layer, register
from .geometry import groups_of, Shape, spatial_input


@register
@dataclass(frozen=True)
class Chunk(Layer):
    """One piece of torch.chunk(x, chunks, dim=1): each piece has ⌈C/chunks⌉ channels, the last
    the rest, so there may be fewer pieces than chunks (5 channels in 4 chunks: 2, 2, 1)."""

    index: NonNegativeInt
    chunks: PositiveInt = 2

    def check(self) -> None:
        if self.index >= self.chunks:
            raise ArgumentError(f"Chunk: index {self.index} is beyond {self.chunks} chunks "
                                f"(0 to {self.chunks - 1})", argument="index")

    def _sizes(self, shape: Shape) -> list[int]:
        """Every piece's channels, as torch.chunk cuts them."""
        channels = shape[0]
        size = math.ceil(channels / self.chunks)
        sizes = [min(size, channels - start) for start in range(0, channels, size)]
        if self.index >= len(sizes):
            raise ShapeError(f"Chunk: torch.chunk cuts {channels} channels into "
                             f"{len(sizes)} chunks of {' + '.join(map(str, sizes))}, not "
                             f"{self.chunks}: there is no chunk {self.index}",
                             hint=f"the chunks are numbered 0 to {len(sizes) - 1}")
        return sizes

    def output_shape(self, shape: Shape) -> Shape:
        return (self._sizes(shape)[self.index], *shape[1:])

    def explain(self, shape: Shape) -> dict:
        data = super().explain(shape)
        sizes = self._sizes(shape)
        data["shape"] = [f"torch.chunk cuts {shape[0]} channels into chunks of "
                         f"⌈{shape[0]}/{self.chunks}⌉ = {sizes[0]}: "
                         f"{' + '.join(map(str, sizes))}; chunk {self.index} has "
                         f"{sizes[self.index]}"]
        return data

    def describe(self, shape: Shape) -> str:
        sizes = self._sizes(shape)
        return f"Chunk({shape[0]}→{sizes[self.index]}, {self.index} of {len(sizes)})"

    def build(self, shape: Shape):
        from .modules import Chunk as Piece
        return Piece(self.index, self.chunks)


@register
@dataclass(frozen=True)
class ChannelShuffle(Layer):
    """nn.ChannelShuffle: the channels as `groups` groups, interleaved (ShuffleNet)."""

    groups: PositiveInt

    def output_shape(self, shape: Shape) -> Shape:
        groups_of(self, spatial_input(self, shape)[0], self.groups)
        return shape

    def explain(self, shape: Shape) -> dict:
        data = super().explain(shape)
        data["shape"] = [f"interleaves {self.groups} groups of "
                         f"{groups_of(self, shape[0], self.groups)} channels: shape unchanged"]
        return data

    def describe(self, shape: Shape) -> str:
        return f"ChannelShuffle({self.settings(str(shape[0]))})"

    def build(self, shape: Shape):
        from torch import nn
        return nn.ChannelShuffle(self.groups)
