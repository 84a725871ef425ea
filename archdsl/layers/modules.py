"""The few torch modules PyTorch lacks, for layers with several inputs. Imported only by build()."""
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
