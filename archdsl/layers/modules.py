"""The few torch modules PyTorch lacks (several inputs, channels at each position, a scale as
an output). Imported only by build(); the Python export copies the classes it uses into its file,
so each class stands alone."""
from __future__ import annotations

import torch
from torch import nn


class Sum(nn.Module):
    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        total = inputs[0]
        for tensor in inputs[1:]:
            total = total + tensor
        return total


class Product(nn.Module):
    """Inputs multiplied in order, broadcasting (a squeeze-and-excitation gate, a layer scale)."""

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        total = inputs[0]
        for tensor in inputs[1:]:
            total = total * tensor
        return total


class ChannelConcat(nn.Module):
    """torch.cat along channels, center-cropping inputs with a window (slices per spatial axis)."""

    def __init__(self, windows: list):
        super().__init__()
        self.windows = windows

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.cat([x if w is None else x[(..., *w)] for x, w in zip(inputs, self.windows)],
                         dim=1)

    def extra_repr(self) -> str:
        return f"crops={[w is not None for w in self.windows]}"


class ChannelLayerNorm(nn.LayerNorm):
    """nn.LayerNorm over the channels of an N×C×… map at each position: torchvision's
    LayerNorm2d, for any number of spatial axes (its state_dict is nn.LayerNorm's)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.movedim(1, -1)).movedim(-1, 1)


class PointwiseLinear(nn.Linear):
    """nn.Linear on the channels of an N×C×… map at each position: ConvNeXt's Permute ->
    Linear -> Permute (its state_dict is nn.Linear's)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.movedim(1, -1)).movedim(-1, 1)


class Chunk(nn.Module):
    """One of torch.chunk's pieces along channels."""

    def __init__(self, index: int, chunks: int):
        super().__init__()
        self.index, self.chunks = index, chunks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.chunk(self.chunks, dim=1)[self.index]

    def extra_repr(self) -> str:
        return f"index={self.index}, chunks={self.chunks}"


class LayerScale(nn.Module):
    """A learnable scale of shape C×1×…, torchvision ConvNeXt's layer_scale. Its output is the
    scale itself, one per example, for a product of branches to multiply with."""

    def __init__(self, shape: tuple[int, ...], init: float):
        super().__init__()
        self.scale = nn.Parameter(torch.full(shape, init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale.expand(x.shape[0], *self.scale.shape)
