"""Layers that pick or reorder channels: ShuffleNet's split (Chunk) and channel shuffle."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ArgumentError, ShapeError
from .arguments import NonNegativeInt, PositiveInt
from .base import Facts, Layer, register
from .geometry import groups_of, Shape, spatial_input
from .torch_call import TorchCall


@dataclass(frozen=True, kw_only=True)
class ChunkFacts(Facts):
    sizes: tuple[int, ...]  # every piece's channels, as torch.chunk cuts them


@register
@dataclass(frozen=True)
class Chunk(Layer):
    """One piece of torch.chunk(x, chunks, dim=1): each piece has ⌈C/chunks⌉ channels, the last
    the rest, so there may be fewer pieces than chunks (5 channels in 4 chunks: 2, 2, 1)."""

    kind = "shape"
    torch_modules = ("Chunk",)  # archdsl's own, as an exported file defines it

    index: NonNegativeInt
    chunks: PositiveInt = 2

    def check(self) -> None:
        if self.index >= self.chunks:
            raise ArgumentError(f"Chunk: index {self.index} is beyond {self.chunks} chunks "
                                f"(0 to {self.chunks - 1})", argument="index")

    def resolve(self, shape: Shape) -> ChunkFacts:
        channels = shape[0]
        size = math.ceil(channels / self.chunks)
        sizes = [min(size, channels - start) for start in range(0, channels, size)]
        if self.index >= len(sizes):
            raise ShapeError(f"Chunk: torch.chunk cuts {channels} channels into "
                             f"{len(sizes)} chunks of {' + '.join(map(str, sizes))}, not "
                             f"{self.chunks}: there is no chunk {self.index}",
                             hint=f"the chunks are numbered 0 to {len(sizes) - 1}")
        return self.described(ChunkFacts(
            inputs=(shape,), output=(sizes[self.index], *shape[1:]),
            window=tuple((1, 1) for _ in shape[1:]), description="", sizes=tuple(sizes)))

    def explain(self, facts: ChunkFacts) -> dict:
        data = super().explain(facts)
        shape, sizes = facts.inputs[0], facts.sizes
        data["shape"] = [f"torch.chunk cuts {shape[0]} channels into chunks of "
                         f"⌈{shape[0]}/{self.chunks}⌉ = {sizes[0]}: "
                         f"{' + '.join(map(str, sizes))}; chunk {self.index} has "
                         f"{sizes[self.index]}"]
        return data

    def describe(self, facts: ChunkFacts) -> str:
        return (f"Chunk({facts.inputs[0][0]}→{facts.output[0]}, {self.index} of "
                f"{len(facts.sizes)})")

    def output_storage(self, facts: Facts) -> str:
        return "input"  # torch.chunk's pieces are views

    def build(self, facts: ChunkFacts):
        from .modules import Chunk as Piece
        return Piece(self.index, self.chunks)

    def python_expression(self, facts: ChunkFacts, inputs: list[str]) -> str:
        return f"{inputs[0]}.chunk({self.chunks}, dim=1)[{self.index}]"


@register
@dataclass(frozen=True)
class ChannelShuffle(Layer):
    """nn.ChannelShuffle: the channels as `groups` groups, interleaved (ShuffleNet)."""

    kind = "shape"
    torch_modules = ("ChannelShuffle",)
    torch_functions = {"torch.nn.functional.channel_shuffle": ("groups",)}

    groups: PositiveInt

    def output_shape(self, shape: Shape) -> Shape:
        groups_of(self, spatial_input(self, shape)[0], self.groups)
        return shape

    def explain(self, facts: Facts) -> dict:
        data = super().explain(facts)
        channels = facts.inputs[0][0]
        data["shape"] = [f"interleaves {self.groups} groups of {channels // self.groups} "
                         f"channels: shape unchanged"]
        return data

    def describe(self, facts: Facts) -> str:
        return f"ChannelShuffle({self.settings(str(facts.inputs[0][0]))})"

    def torch_call(self, facts: Facts) -> TorchCall:
        return TorchCall.of("torch.nn:ChannelShuffle", ("groups", self.given("groups")),
                            positional=1)
