"""The layer contract: every registered layer's static analysis against the real PyTorch module.

Each case is a call as written in a spec and an input shape (batch axis excluded). The expected
values come from torch alone: a forward pass for the output shape, named_parameters/named_buffers
for the parameter and buffer shapes, and forward hooks on the module's own attributes for MACs.
"""
import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.ops import StochasticDepth

import archdsl
from archdsl.layers import layer_names

SPECS = Path(__file__).resolve().parents[2] / "specs"
BATCH = 2

CASES = [
    # Conv, 2-D: stride, padding incl. 'same'/'valid', dilation, groups, rectangular, no bias.
    ("Conv(8, 3)", (1, 28, 28)),
    ("Conv(8, 7)", (1, 7, 7)),
    ("Conv(8, 3, s=2, p=1)", (3, 28, 28)),
    ("Conv(8, 3, s=2, p=1)", (3, 27, 27)),
    ("Conv(8, 3, p='same')", (3, 28, 28)),
    ("Conv(8, 4, p='same', d=2)", (3, 15, 15)),
    ("Conv(8, 3, p='valid')", (3, 10, 10)),
    ("Conv(8, 3, s=2, p='valid')", (3, 11, 11)),
    ("Conv(8, 3, d=2, p=2)", (3, 16, 16)),
    ("Conv(8, 3, s=3, p=2, d=2, bias=false)", (2, 20, 20)),
    ("Conv(8, (1, 7), p=(0, 3))", (4, 17, 17)),
    ("Conv(8, (7, 1), s=(2, 1), p=(3, 0))", (4, 17, 12)),
    ("Conv(8, (3, 5), s=(1, 2), d=(2, 1), p='valid')", (4, 12, 13)),
    ("Conv(8, 3, g=2)", (4, 10, 10)),
    ("Conv(12, 3, p=1, g=4)", (4, 8, 8)),
    ("Conv(16, 3, p=1, g=16)", (16, 8, 8)),
    ("Conv(16, 3, s=2, p=1, groups=16, bias=false)", (16, 9, 9)),
    ("Conv(8, 1, bias=false)", (4, 7, 7)),
    # Conv, 1-D and 3-D.
    ("Conv(8, 5, s=2, p=2)", (3, 50)),
    ("Conv(8, 3, p='same', d=3)", (3, 20)),
    ("Conv(6, 3, g=3, bias=false)", (3, 9)),
    ("Conv(4, 3, p=1)", (2, 6, 8, 8)),
    ("Conv(4, (1, 3, 3), s=(1, 2, 2), p=(0, 1, 1))", (2, 5, 9, 9)),
    ("Conv(4, 3, p='same')", (2, 4, 5, 6)),
    # ConvTranspose: U-Net's k=2 s=2, k=3 s=2 p=1 op=1, op below dilation, groups, rectangular.
    ("ConvTranspose(512, 2, s=2)", (1024, 4, 4)),
    ("ConvTranspose(8, 3)", (4, 5, 5)),
    ("ConvTranspose(8, 3, s=2, p=1, output_padding=1)", (4, 7, 7)),
    ("ConvTranspose(8, 4, s=2, p=1)", (4, 6, 6)),
    ("ConvTranspose(8, 3, s=3, p=2, output_padding=2)", (4, 5, 5)),
    ("ConvTranspose(8, 3, d=2, p=1)", (4, 6, 6)),
    ("ConvTranspose(8, 3, s=1, d=3, output_padding=2)", (4, 5, 5)),
    ("ConvTranspose(8, 3, s=2, d=3, output_padding=2, p=2)", (4, 5, 5)),
    ("ConvTranspose(8, 3, s=2, p=1, output_padding=1, g=2)", (4, 5, 5)),
    ("ConvTranspose(12, 3, g=4, bias=false)", (8, 5, 5)),
    ("ConvTranspose(16, 3, s=2, p=1, groups=16)", (16, 4, 4)),
    ("ConvTranspose(8, (2, 3), s=(2, 1), p=(0, 1))", (4, 5, 7)),
    ("ConvTranspose(8, (3, 1), s=(2, 1), d=(1, 2), output_padding=(1, 1), p=(1, 0))", (4, 5, 6)),
    ("ConvTranspose(8, 1, p=1)", (4, 3, 3)),
    ("ConvTranspose(8, 2, s=2, bias=false)", (4, 5, 5)),
    # ConvTranspose, 1-D and 3-D.
    ("ConvTranspose(8, 4, s=2, p=1)", (4, 25)),
    ("ConvTranspose(6, 3, s=2, output_padding=1, g=3)", (3, 9)),
    ("ConvTranspose(4, 2, s=2)", (8, 3, 4, 5)),
    ("ConvTranspose(4, 3, s=(1, 2, 2), p=1, output_padding=(0, 1, 1), bias=false)",
     (2, 3, 4, 4)),
    # Upsample: nearest at every rank, each interpolating mode at its rank, tuple scales.
    ("Upsample", (3, 8, 8)),
    ("Upsample(3)", (3, 5)),
    ("Upsample((1, 2, 2))", (2, 3, 4, 5)),
    ("Upsample(scale=(2, 3), mode='nearest')", (3, 4, 5)),
    ("Upsample(2, mode='linear')", (3, 7)),
    ("Upsample(2, mode='bilinear')", (3, 5, 6)),
    ("Upsample((2, 4), mode='bilinear')", (3, 5, 6)),
    ("Upsample(2, mode='bicubic')", (3, 5, 6)),
    ("Upsample((3, 1), mode='bicubic')", (3, 5, 6)),
    ("Upsample(2, mode='trilinear')", (2, 3, 4, 5)),
    ("Upsample((1, 2, 3), mode='trilinear')", (2, 3, 4, 5)),
    # MaxPool: floor and ceil_mode (incl. windows PyTorch drops), padding, dilation, rectangular.
    ("MaxPool(2)", (3, 28, 28)),
    ("MaxPool(2)", (3, 7, 7)),
    ("MaxPool(3, s=2)", (3, 28, 28)),
    ("MaxPool(3, s=2, p=1)", (3, 28, 28)),
    ("MaxPool(2, s=2, ceil_mode=true)", (3, 7, 7)),
    ("MaxPool(2, s=2, ceil_mode=true)", (3, 1, 1)),
    ("MaxPool(2, s=2, p=1, ceil_mode=true)", (3, 5, 5)),
    ("MaxPool(2, s=2, p=1, ceil_mode=true)", (3, 6, 6)),
    ("MaxPool(1, s=3, ceil_mode=true)", (3, 5, 5)),
    ("MaxPool((2, 3), s=(2, 3), p=(1, 1), ceil_mode=true)", (1, 5, 7)),
    ("MaxPool(3, s=1, d=2, p=1)", (2, 10, 10)),
    ("MaxPool(3, s=2, d=2, p=1, ceil_mode=true)", (2, 10, 10)),
    ("MaxPool((1, 3), s=(1, 2), p=(0, 1))", (2, 8, 9)),
    ("MaxPool(2)", (4, 9)),
    ("MaxPool(3, s=2, p=1, ceil_mode=true)", (4, 10)),
    ("MaxPool(2)", (2, 4, 6, 6)),
    ("MaxPool(2, s=2, p=1, ceil_mode=true)", (2, 5, 5, 5)),
    # AvgPool.
    ("AvgPool(2)", (3, 8, 8)),
    ("AvgPool(3, s=2, p=1)", (3, 9, 9)),
    ("AvgPool(3, s=2, p=1, count_include_pad=false)", (3, 9, 9)),
    ("AvgPool(2, s=2, p=1, ceil_mode=true)", (3, 5, 5)),
    ("AvgPool((1, 7), s=1, p=(0, 3))", (3, 7, 7)),
    ("AvgPool(4, s=2)", (3, 16)),
    ("AvgPool(2, ceil_mode=true)", (3, 7)),
    ("AvgPool(2)", (2, 4, 4, 4)),
    ("AvgPool(3, s=2, p=1, ceil_mode=true)", (2, 5, 6, 7)),
    # Adaptive and global pooling.
    ("AdaptiveAvgPool(1)", (8, 7, 7)),
    ("AdaptiveAvgPool(3)", (8, 7, 7)),
    ("AdaptiveAvgPool((2, 4))", (8, 7, 9)),
    ("AdaptiveAvgPool(9)", (2, 4, 4)),
    ("AdaptiveAvgPool(5)", (4, 17)),
    ("AdaptiveAvgPool((1, 2, 3))", (2, 4, 5, 6)),
    ("GlobalAvgPool", (8, 7, 7)),
    ("GlobalAvgPool", (4, 10)),
    ("GlobalAvgPool", (2, 3, 4, 5)),
    # Flat layers and normalization.
    ("Flatten", (1, 28, 28)),
    ("Flatten", (4, 10)),
    ("Flatten", (12,)),
    ("Linear(10)", (784,)),
    ("Linear(5, bias=false)", (20,)),
    ("Linear(12, pointwise=true)", (8, 5, 5)),
    ("Linear(6, bias=false, pointwise=true)", (8, 7)),
    ("Linear(4, pointwise=true)", (3, 2, 3, 4)),
    ("Linear(5, pointwise=true)", (20,)),
    ("BatchNorm", (16,)),
    ("BatchNorm", (8, 10)),
    ("BatchNorm", (8, 7, 7)),
    ("BatchNorm", (4, 3, 5, 5)),
    ("BatchNorm(eps=0.001, momentum=0.01)", (16,)),
    ("BatchNorm(affine=false)", (8, 7, 7)),
    ("BatchNorm(track_running_stats=false)", (8, 10)),
    ("BatchNorm(affine=false, track_running_stats=false)", (4, 3, 4, 4)),
    ("Dropout", (1, 28, 28)),
    ("Dropout(0.2)", (100,)),
    ("LayerNorm", (16,)),
    ("LayerNorm(eps=1e-6)", (8, 5, 5)),
    ("LayerNorm", (8, 10)),
    ("LayerNorm", (4, 3, 5, 5)),
    ("LayerNorm(bias=false)", (8, 5, 5)),
    ("LayerNorm(affine=false)", (8, 5, 5)),
    ("GroupNorm(4)", (8, 5, 5)),
    ("GroupNorm(1)", (6, 7)),
    ("GroupNorm(8, eps=1e-3, affine=false)", (8, 3, 3)),
    ("GroupNorm(2)", (4, 2, 3, 3)),
    ("GroupNorm(4)", (12,)),
    ("InstanceNorm", (8, 5, 5)),
    ("InstanceNorm", (8, 10)),
    ("InstanceNorm", (4, 3, 4, 4)),
    ("InstanceNorm(affine=true)", (8, 1, 2)),
    ("InstanceNorm(track_running_stats=true)", (8, 5, 5)),
    ("InstanceNorm(eps=1e-3, momentum=0.01, affine=true, track_running_stats=true)", (6, 9)),
    ("LayerScale", (8, 5, 5)),
    ("LayerScale(0.1)", (8, 10)),
    ("LayerScale(init=1.0)", (4, 3, 4, 4)),
    ("LayerScale", (16,)),
    ("StochasticDepth(0.1)", (8, 5, 5)),
    ("StochasticDepth(0.5, mode='batch')", (16,)),
    ("StochasticDepth(0)", (4, 3, 4, 4)),
    ("StochasticDepth(1)", (8, 10)),
    ("Chunk(0)", (116, 7, 7)),
    ("Chunk(1)", (116, 7, 7)),
    ("Chunk(1)", (5, 4, 4)),
    ("Chunk(2, chunks=4)", (5, 4, 4)),
    ("Chunk(0, chunks=4)", (5, 4, 4)),
    ("Chunk(2, chunks=3)", (7, 6)),
    ("Chunk(2, chunks=5)", (3, 2, 3, 3)),
    ("Chunk(0, chunks=1)", (9, 3, 3)),
    ("Chunk(1)", (10,)),
    ("ChannelShuffle(2)", (116, 7, 7)),
    ("ChannelShuffle(3)", (6, 5)),
    ("ChannelShuffle(4)", (8, 2, 3, 3)),
    ("ChannelShuffle(1)", (5, 4, 4)),
    # Activations.
    ("ReLU", (8, 5, 5)),
    ("ReLU6", (8, 5, 5)),
    ("SiLU", (16,)),
    ("Sigmoid", (4, 10)),
    ("Tanh", (2, 3, 4, 5)),
    ("Identity", (8, 5, 5)),
    ("LeakyReLU", (8, 5, 5)),
    ("LeakyReLU(slope=0.2)", (16,)),
    ("Hardswish", (8, 5, 5)),
    ("Hardsigmoid", (16,)),
    ("Mish", (4, 10)),
    ("ELU", (8, 5, 5)),
    ("ELU(alpha=0.5)", (16,)),
    ("Hardtanh", (8, 5, 5)),
    ("Hardtanh(min=0, max=6)", (16,)),
    ("Hardtanh(-2.5, 0.5)", (4, 10)),
    ("PReLU", (8, 5, 5)),
    ("PReLU(per_channel=true)", (8, 5, 5)),
    ("PReLU(true, init=0.1)", (16,)),
    ("PReLU(per_channel=true)", (4, 3, 4, 4)),
    ("GELU", (8, 5, 5)),
    ("GELU(approximate='tanh')", (16,)),
    ("Softmax", (10,)),
    ("Softmax(dim=-1)", (3, 4, 5)),
    ("Softmax(dim=2)", (3, 4, 5)),
    ("Softmax(dim=-3)", (3, 4, 5)),
]

# Cases PyTorch refuses, each with the torch module that refuses it.
BAD_CASES = [
    ("MaxPool(3, p=2)", (1, 8, 8), lambda: nn.MaxPool2d(3, padding=2)),
    ("MaxPool(3, d=2, p=2)", (1, 9, 9), lambda: nn.MaxPool2d(3, padding=2, dilation=2)),
    ("MaxPool(2, d=3, p=2)", (1, 9), lambda: nn.MaxPool1d(2, padding=2, dilation=3)),
    ("MaxPool(2, p=(0, 1, 1))", (1, 8, 8), lambda: nn.MaxPool2d(2, padding=(0, 1, 1))),
    ("MaxPool(5)", (1, 3, 3), lambda: nn.MaxPool2d(5)),
    ("MaxPool(3, s=1, ceil_mode=true)", (1, 2, 2), lambda: nn.MaxPool2d(3, 1, ceil_mode=True)),
    ("AvgPool(2, p=2)", (1, 8, 8), lambda: nn.AvgPool2d(2, padding=2)),
    ("AvgPool((1, 3), p=(1, 1))", (1, 8, 8), lambda: nn.AvgPool2d((1, 3), padding=(1, 1))),
    ("AvgPool(4)", (2, 3), lambda: nn.AvgPool1d(4)),
    ("Conv(8, 3, s=2, p='same')", (1, 8, 8), lambda: nn.Conv2d(1, 8, 3, 2, "same")),
    ("Conv(8, 3, s=(1, 2), p='same')", (1, 8, 8), lambda: nn.Conv2d(1, 8, 3, (1, 2), "same")),
    ("Conv(8, 5)", (1, 3, 3), lambda: nn.Conv2d(1, 8, 5)),
    ("Conv(8, 3, d=3)", (1, 5, 5), lambda: nn.Conv2d(1, 8, 3, dilation=3)),
    ("Conv(8, (1, 7))", (1, 7, 5), lambda: nn.Conv2d(1, 8, (1, 7))),
    ("Conv(8, 3)", (1, 2, 9, 9), lambda: nn.Conv3d(1, 8, 3)),
    ("Conv(6, 3, g=4)", (4, 8, 8), lambda: nn.Conv2d(4, 6, 3, groups=4)),
    ("Conv(8, 3, g=3)", (4, 8, 8), lambda: nn.Conv2d(4, 8, 3, groups=3)),
    ("Conv(8, 3, p=(1, 1))", (1, 10), lambda: nn.Conv1d(1, 8, 3, padding=(1, 1))),
    ("ConvTranspose(8, 3, s=2, output_padding=2)", (4, 5, 5),
     lambda: nn.ConvTranspose2d(4, 8, 3, 2, output_padding=2)),
    ("ConvTranspose(8, 3, output_padding=1)", (4, 5, 5),
     lambda: nn.ConvTranspose2d(4, 8, 3, output_padding=1)),
    ("ConvTranspose(8, 3, d=2, output_padding=2)", (4, 5, 5),
     lambda: nn.ConvTranspose2d(4, 8, 3, output_padding=2, dilation=2)),
    ("ConvTranspose(8, 3, s=2, d=3, output_padding=3)", (4, 5, 5),
     lambda: nn.ConvTranspose2d(4, 8, 3, 2, output_padding=3, dilation=3)),
    ("ConvTranspose(8, 3, s=(2, 1), output_padding=1)", (4, 5, 5),
     lambda: nn.ConvTranspose2d(4, 8, 3, (2, 1), output_padding=1)),
    ("ConvTranspose(8, 3, s=2, output_padding=2)", (4, 9),
     lambda: nn.ConvTranspose1d(4, 8, 3, 2, output_padding=2)),
    ("ConvTranspose(6, 3, g=4)", (4, 5, 5), lambda: nn.ConvTranspose2d(4, 6, 3, groups=4)),
    ("ConvTranspose(8, 3, g=4)", (6, 5, 5), lambda: nn.ConvTranspose2d(6, 8, 3, groups=4)),
    ("ConvTranspose(8, 1, p=3)", (4, 2, 2), lambda: nn.ConvTranspose2d(4, 8, 1, padding=3)),
    ("ConvTranspose(8, (1, 3), p=(2, 0))", (4, 2, 5),
     lambda: nn.ConvTranspose2d(4, 8, (1, 3), padding=(2, 0))),
    ("ConvTranspose(8, 2, s=2, output_padding=(1, 1))", (4, 9),
     lambda: nn.ConvTranspose1d(4, 8, 2, 2, output_padding=(1, 1))),
    ("Upsample(2, mode='linear')", (3, 4, 5), lambda: nn.Upsample(scale_factor=2, mode="linear")),
    ("Upsample(2, mode='bilinear')", (3, 5), lambda: nn.Upsample(scale_factor=2, mode="bilinear")),
    ("Upsample(2, mode='bilinear')", (3, 2, 4, 5),
     lambda: nn.Upsample(scale_factor=2, mode="bilinear")),
    ("Upsample(2, mode='bicubic')", (3, 5), lambda: nn.Upsample(scale_factor=2, mode="bicubic")),
    ("Upsample(2, mode='trilinear')", (3, 4, 5),
     lambda: nn.Upsample(scale_factor=2, mode="trilinear")),
    ("Upsample((2, 3))", (3, 4, 5, 6), lambda: nn.Upsample(scale_factor=(2, 3))),
    ("AdaptiveAvgPool((2, 2, 2))", (1, 8, 8), lambda: nn.AdaptiveAvgPool2d((2, 2, 2))),
    ("Softmax(dim=2)", (10,), lambda: nn.Softmax(dim=2)),
    ("BatchNorm", (1, 2, 2, 2, 2), lambda: nn.BatchNorm3d(1)),
    ("GroupNorm(3)", (8, 5, 5), lambda: nn.GroupNorm(3, 8)),
    ("GroupNorm(16)", (8, 5, 5), lambda: nn.GroupNorm(16, 8)),
    ("InstanceNorm(affine=true)", (8,), lambda: nn.InstanceNorm1d(8, affine=True)),
    ("InstanceNorm", (8, 1, 1), lambda: nn.InstanceNorm2d(8)),
    ("InstanceNorm", (8, 1), lambda: nn.InstanceNorm1d(8)),
    ("InstanceNorm", (1, 2, 2, 2, 2), lambda: nn.InstanceNorm3d(1)),
    ("ChannelShuffle(3)", (8, 5, 5), lambda: nn.ChannelShuffle(3)),
    ("ChannelShuffle(2)", (8,), lambda: nn.ChannelShuffle(2)),
    ("Chunk(3, chunks=4)", (5, 4, 4), lambda: lambda x: x.chunk(4, dim=1)[3]),
    ("Chunk(2, chunks=3)", (2, 4), lambda: lambda x: x.chunk(3, dim=1)[2]),
    ("Chunk(2)", (8, 4, 4), lambda: lambda x: x.chunk(2, dim=1)[2]),
    ("Hardtanh(1, 1)", (8,), lambda: nn.Hardtanh(1.0, 1.0)),
    ("Hardtanh(min=2, max=-2)", (8,), lambda: nn.Hardtanh(2.0, -2.0)),
    ("StochasticDepth(1.5)", (8,), lambda: StochasticDepth(1.5, "row")),
    ("StochasticDepth(0.5, mode='col')", (8,), lambda: StochasticDepth(0.5, "col")),
    ("Linear(10)", (8, 5, 5), lambda: nn.Linear(8 * 5 * 5, 10)),
]


def case_id(call, shape, *_):
    return f"{call}@{'x'.join(map(str, shape))}"


def analyze_call(call, shape):
    """(layer, row) of a one-layer spec with this input."""
    analysis = archdsl.analyze(f"input {'x'.join(map(str, shape))}\n{call}")
    (row,) = analysis.rows
    return analysis.nodes[0].layer, row


def run(module, shape):
    """Forward a batch in eval mode: (output, MACs per example, child name -> output shape).

    MACs come from the modules' own attributes: conv = output elements × in/groups × kernel
    volume, transposed conv = input elements × out/groups × kernel volume,
    linear = in × out per position (output elements / out), everything else 0.
    """
    macs, shapes = 0, {}

    def count(m, inputs, out):
        nonlocal macs
        if isinstance(m, nn.modules.conv._ConvTransposeNd):  # each input element × its windows
            macs += inputs[0][0].numel() * (m.out_channels // m.groups) * math.prod(m.kernel_size)
        elif isinstance(m, nn.modules.conv._ConvNd):
            macs += out[0].numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size)
        elif isinstance(m, nn.Linear):  # per position, for a Linear on each position's channels
            macs += m.in_features * m.out_features * (out[0].numel() // m.out_features)

    def record(name):
        return lambda m, inputs, out: shapes.__setitem__(name, tuple(out.shape[1:]))

    handles = [m.register_forward_hook(count) for m in module.modules()]
    handles += [m.register_forward_hook(record(n)) for n, m in module.named_children()]
    try:
        with torch.no_grad():
            out = module.eval()(torch.randn(BATCH, *shape))
    finally:
        for handle in handles:
            handle.remove()
    return out, macs, shapes


# Layers with several inputs: a network whose last row merges, and torch's own operation on the
# row's input shapes as the reference (center_crop from torchvision for U-Net's skips).
def _crop_cat(first, *others):
    from torchvision.transforms.functional import center_crop
    return torch.cat([first, *(center_crop(o, list(first.shape[2:])) for o in others)], dim=1)


MERGE_CASES = [
    ("input 4x8x8\n[Conv(6, 3, p=1)] + [Conv(6, 1)]", lambda a, b: a + b),
    ("input 4x8x8\n[Conv(4, 3, p=1) -> ReLU] + Identity + [Conv(4, 1)]",
     lambda a, b, c: a + b + c),
    ("input 6\nLinear(5) as x -> ReLU -> Linear(5) -> Add(x)", lambda a, b: a + b),
    ("input 3x9x9\n[Conv(2, 1)] | [Conv(5, 3, p=1)] | MaxPool(3, s=1, p=1)",
     lambda *xs: torch.cat(xs, dim=1)),
    ("input 2x12x12\nConv(3, 3) as skip -> Conv(4, 3) -> Concat(skip, crop=true)", _crop_cat),
    ("input 2x13x11\nConv(3, 1) as a -> Conv(2, 3) -> Conv(2, (3, 1)) -> Concat(a, crop=true)",
     _crop_cat),
    ("input 4x6x6\nIdentity * [AdaptiveAvgPool(1) -> Conv(4, 1) -> Sigmoid]", lambda a, b: a * b),
    ("input 4x6x5\n[Conv(4, 1)] * [AdaptiveAvgPool((6, 1))] * [AdaptiveAvgPool(1)]",
     lambda a, b, c: a * b * c),
    ("input 3x5\nConv(3, 1) as g -> Conv(1, 3, p=1) -> Multiply(g)", lambda a, b: a * b),
]
MERGE_REFUSED = [
    "input 4x8x8\n[Conv(6, 3)] + [Conv(6, 1)]",
    "input 4x8x8\n[Conv(6, 1)] + [Conv(5, 1)]",
    "input 2x12x12\nConv(3, 3) as skip -> Conv(4, 3) -> Concat(skip)",
    "input 2x12x12\nConv(3, 3) as skip -> ConvTranspose(4, 3) -> Concat(skip, crop=true)",
]


@pytest.mark.parametrize("text, reference", MERGE_CASES, ids=[t.split("\n")[1] for t, _ in
                                                              MERGE_CASES])
def test_merge_matches_torch(text, reference):
    analysis = archdsl.analyze(text)
    row, node = analysis.rows[-1], analysis.nodes[-1]
    inputs = [torch.randn(BATCH, *shape) for shape in row.input_shapes]
    out = node.layer.build(row.facts)(*inputs)
    torch.testing.assert_close(out, reference(*inputs))
    assert tuple(out.shape) == (BATCH, *row.output)
    assert (row.params, row.buffers, row.macs) == (0, 0, 0)
    assert len(row.inputs) == len(row.input_shapes) >= 2


@pytest.mark.parametrize("text", MERGE_REFUSED, ids=[t.split("\n")[1] for t in MERGE_REFUSED])
def test_merge_refusals(text):
    with pytest.raises(archdsl.errors.ShapeError, match="differ"):
        archdsl.analyze(text)


def test_a_layer_without_a_kind_is_refused():
    from dataclasses import dataclass
    from archdsl.layers import Layer, register
    with pytest.raises(ValueError, match="declares no kind"):
        register(dataclass(frozen=True)(type("Kindless", (Layer,), {})))
    assert "Kindless" not in layer_names()


def test_every_layer_has_a_case():
    covered = {call.split("(")[0] for call, _ in CASES}
    covered |= {archdsl.analyze(text).rows[-1].type for text, _ in MERGE_CASES}
    assert set(layer_names()) <= covered, f"no contract case for {set(layer_names()) - covered}"


@pytest.mark.parametrize("call, shape", CASES, ids=[case_id(*c) for c in CASES])
def test_layer_matches_torch(call, shape):
    layer, row = analyze_call(call, shape)
    module = layer.build(row.facts)
    out, macs, _ = run(module, shape)
    parameters = dict(module.named_parameters())
    buffers = dict(module.named_buffers())
    count = {name: p.numel() for name, p in parameters.items()}

    assert row.input == shape
    assert tuple(out.shape) == (BATCH, *row.output)
    assert {name: tuple(p.shape) for name, p in parameters.items()} == row.parameter_shapes
    assert {name: tuple(b.shape) for name, b in buffers.items()} == row.buffer_shapes
    assert row.buffers == sum(b.numel() for b in buffers.values())
    assert row.params == sum(count.values())
    # a weight is any parameter but a bias (LayerScale's `scale`, as torchvision's layer_scale)
    assert row.weights == sum(n for name, n in count.items() if not name.endswith("bias"))
    assert row.biases == sum(n for name, n in count.items() if name.endswith("bias"))
    assert row.macs == macs


WINDOWS = [c for c in CASES if c[0].startswith(("Conv(", "MaxPool", "AvgPool"))]
NO_WINDOW = [c for c in CASES if c[0].startswith(("ConvTranspose", "Upsample"))]


@pytest.mark.parametrize("call, shape", WINDOWS, ids=[case_id(*c) for c in WINDOWS])
def test_receptive_field_matches_torch(call, shape):
    layer, row = analyze_call(call, shape)
    module = layer.build(row.facts)
    axes = len(shape) - 1

    def per_axis(value):
        return tuple(value) if isinstance(value, (tuple, list)) else (value,) * axes

    kernel, stride = per_axis(module.kernel_size), per_axis(module.stride)
    dilation = per_axis(getattr(module, "dilation", 1))
    extent = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    assert row.facts.window == tuple(zip(extent, stride))
    assert (row.rf, row.jump) == (extent, stride)


@pytest.mark.parametrize("call, shape", NO_WINDOW, ids=[case_id(*c) for c in NO_WINDOW])
def test_no_single_window_no_receptive_field(call, shape):
    layer, row = analyze_call(call, shape)
    assert row.facts.window is None
    assert (row.rf, row.jump) == (None, None)


# Layers whose output at a position reads at most that position (element-wise, across the
# channels at each position, or none: LayerScale, the scale alone, whose window is the identity
# so that a product's other factor sets the receptive field), and layers that read every
# position's statistics (GroupNorm, InstanceNorm).
PER_POSITION = [c for c in CASES if len(c[1]) > 1 and c[0].startswith((
    "LayerNorm", "Linear", "Chunk", "ChannelShuffle", "StochasticDepth", "PReLU", "Hardswish",
    "Hardsigmoid", "Mish", "ELU", "Hardtanh", "LayerScale"))]
WHOLE_INPUT = [c for c in CASES if len(c[1]) > 1 and c[0].startswith(
    ("GroupNorm", "InstanceNorm"))]


def _positions_reached(module, shape):
    """The input positions whose change changes the output at the first position, in training
    (where InstanceNorm reads the input's statistics even with running ones)."""
    x = torch.randn(BATCH, *shape, requires_grad=True)
    out = module.train()(x)
    corner = (slice(None), slice(None), *(0 for _ in shape[1:]))
    (grad,) = torch.autograd.grad(out[corner].sum(), x, allow_unused=True)
    return set() if grad is None else {
        tuple(p) for p in (grad[0].abs().sum(0) != 0).nonzero().tolist()}


@pytest.mark.parametrize("call, shape", PER_POSITION, ids=[case_id(*c) for c in PER_POSITION])
def test_per_position_layers_keep_the_receptive_field(call, shape):
    layer, row = analyze_call(call, shape)
    assert row.facts.window == ((1, 1),) * (len(shape) - 1)
    assert _positions_reached(layer.build(row.facts), shape) <= {(0,) * (len(shape) - 1)}


@pytest.mark.parametrize("call, shape", WHOLE_INPUT, ids=[case_id(*c) for c in WHOLE_INPUT])
def test_statistics_over_positions_have_no_window(call, shape):
    layer, row = analyze_call(call, shape)
    assert row.facts.window is None
    assert (row.rf, row.jump) == (None, None)
    assert len(_positions_reached(layer.build(row.facts), shape)) > 1


def test_a_layer_scale_factor_leaves_the_receptive_field_to_its_block():
    analysis = archdsl.analyze("input 4x9x9\nLayerScale * [Conv(4, 3, p=1) -> Conv(4, 3, p=1)]")
    assert (analysis.rows[-1].rf, analysis.rows[-1].jump) == ((5, 5), (1, 1))


@pytest.mark.parametrize("call, shape, text", [
    ("ConvTranspose(512, 2, s=2)", (1024, 4, 4), "ConvTranspose2d(1024→512, k=2, s=2, p=0)"),
    ("ConvTranspose(8, 3, s=2, p=1, output_padding=1, g=2, bias=false)", (4, 5, 5),
     "ConvTranspose2d(4→8, k=3, s=2, p=1, op=1, g=2, bias=false)"),
    ("ConvTranspose(8, (3, 1), s=(2, 1), d=(1, 2), output_padding=(1, 1))", (4, 5, 6),
     "ConvTranspose2d(4→8, k=(3, 1), s=(2, 1), p=0, op=1, d=(1, 2))"),
    ("Conv(8, 3, p='same', d=2)", (4, 5, 6), "Conv2d(4→8, k=3, s=1, p='same', d=2)"),
    ("Upsample", (3, 8, 8), "Upsample2d(×2, nearest)"),
    ("Upsample((1, 2, 3), mode='trilinear')", (2, 3, 4, 5), "Upsample3d(×(1, 2, 3), trilinear)"),
    ("Linear(384, pointwise=true)", (96, 7, 7), "Linear(96→384, pointwise)"),
    ("Linear(10, pointwise=true, bias=false)", (16,), "Linear(16→10, bias=false)"),
    ("LayerNorm(eps=1e-6)", (96, 7, 7), "LayerNorm2d(96, eps=1e-06)"),
    ("LayerNorm(affine=false)", (64,), "LayerNorm(64, affine=false)"),
    ("GroupNorm(8)", (64, 7, 7), "GroupNorm(64, groups=8)"),
    ("InstanceNorm(affine=true)", (8, 10), "InstanceNorm1d(8, affine=true)"),
    ("Chunk(1)", (116, 7, 7), "Chunk(116→58, 1 of 2)"),
    ("Chunk(2, chunks=4)", (5, 4, 4), "Chunk(5→1, 2 of 3)"),
    ("ChannelShuffle(2)", (116, 7, 7), "ChannelShuffle(116, groups=2)"),
    ("LayerScale", (96, 7, 7), "LayerScale(96×1×1)"),
    ("LayerScale(0.1)", (8, 10), "LayerScale(8×1, init=0.1)"),
    ("StochasticDepth(0.1, mode='batch')", (8, 5, 5), "StochasticDepth(p=0.1, mode='batch')"),
    ("PReLU(per_channel=true)", (8, 5, 5), "PReLU(per_channel=true)"),
])
def test_describe(call, shape, text):
    assert analyze_call(call, shape)[1].layer == text


@pytest.mark.parametrize("call, shape, message", [
    ("ConvTranspose(8, 3, s=2, output_padding=2)", (4, 5, 5),
     "output_padding 2 must be smaller than the stride 2 or the dilation 1"),
    ("ConvTranspose(8, 1, p=3)", (4, 2, 2), "output would be 0×0"),
    ("ConvTranspose(8, 3, g=4)", (6, 5, 5), "input channels 6 are not divisible by groups 4"),
    ("Upsample(2, mode='bilinear')", (3, 5), "mode 'bilinear' needs 2 spatial axes"),
    ("GroupNorm(3)", (8, 5, 5), "GroupNorm: 8 channels are not divisible by 3 groups"),
    ("ChannelShuffle(3)", (8, 5, 5), "ChannelShuffle: 8 channels are not divisible by 3 groups"),
    ("ChannelShuffle(2)", (8,), "ChannelShuffle needs a channels×height×width input, got a flat "
                                "input 8"),
    ("InstanceNorm", (8,),
     "InstanceNorm needs a channels×height×width input, got a flat input 8"),
    ("InstanceNorm", (8, 1, 1), "the 8×1×1 input has one position per channel, and PyTorch "
                                "refuses it in training"),
    ("Chunk(3, chunks=4)", (5, 4, 4), re.escape("Chunk: torch.chunk cuts 5 channels into 3 "
                                                "chunks of 2 + 2 + 1, not 4: there is no chunk 3")),
    ("Chunk(2)", (8, 4, 4), re.escape("Chunk: index 2 is beyond 2 chunks (0 to 1)")),
    ("Hardtanh(1, 1)", (8,), "Hardtanh: max 1.0 must be greater than min 1.0"),
    ("StochasticDepth(1.5)", (8,), "'p' must be a number between 0 and 1, got 1.5"),
    ("Linear(10)", (8, 5, 5), "Linear needs a flat input, got 8×5×5"),
    # PyTorch's habits: the size archdsl infers, given first
    ("GroupNorm(32, 64)", (64, 8, 8), re.escape(
        "GroupNorm takes 1 positional argument, got 2; archdsl infers the channels: write "
        "GroupNorm(32), not PyTorch's GroupNorm(32, 64)")),
    ("GroupNorm(32, 64, affine=false)", (64, 8, 8),
     re.escape("write GroupNorm(32, affine=false), not PyTorch's")),
    ("GroupNorm(num_channels=64, num_groups=32)", (64, 8, 8),
     "no argument 'num_channels': archdsl infers the channels from the input; leave it out"),
    ("GroupNorm(num_groups=32)", (64, 8, 8), "'num_groups' .PyTorch's name.: write groups=32"),
    ("LayerNorm(64)", (64, 8, 8), re.escape(
        "LayerNorm takes 0 positional arguments, got 1; archdsl infers the normalized shape: "
        "write LayerNorm, not PyTorch's LayerNorm(64)")),
    ("LayerNorm(96, eps=1e-6)", (96, 8, 8),
     re.escape("write LayerNorm(eps=1e-06), not PyTorch's LayerNorm(96, eps=1e-06)")),
    ("LayerNorm(elementwise_affine=false)", (8,), "write affine=false"),
    ("InstanceNorm(64, affine=true)", (64, 8, 8),
     re.escape("write InstanceNorm(affine=true), not PyTorch's InstanceNorm(64, affine=true)")),
    ("PReLU(num_parameters=64)", (64, 8, 8),
     "PReLU has no argument 'num_parameters' .PyTorch's name.: write per_channel=true"),
    ("PReLU(num_parameters=1)", (64, 8, 8), "write per_channel=false"),
    ("PReLU(64)", (64, 8, 8), re.escape(
        "'per_channel' must be true or false, got 64; archdsl infers the channels: write "
        "PReLU(per_channel=true), not PyTorch's PReLU(64)")),
    ("Hardtanh(min_val=0, max_val=6)", (8,), "'min_val' .PyTorch's name.: write min=0"),
])
def test_refusals_say_why(call, shape, message):
    with pytest.raises(archdsl.ArchDSLError, match=message):
        analyze_call(call, shape)


@pytest.mark.parametrize("call, shape, hint", [
    ("GroupNorm(3)", (8, 5, 5), "8 channels split evenly into 2 or 4 groups"),
    ("GroupNorm(32)", (24, 5, 5), "24 channels split evenly into 24 groups"),
    ("ChannelShuffle(5)", (116, 7, 7), "116 channels split evenly into 4 or 29 groups"),
    ("Chunk(3, chunks=4)", (5, 4, 4), "the chunks are numbered 0 to 2"),
    ("Linear(10)", (8, 5, 5), "insert Flatten before Linear, or give pointwise=true to apply it "
                              "to the channels at every position"),
])
def test_refusal_hints_say_what_fits(call, shape, hint):
    with pytest.raises(archdsl.ArchDSLError) as error:
        analyze_call(call, shape)
    assert error.value.hint == hint


@pytest.mark.parametrize("call, shape, torch_module", BAD_CASES,
                         ids=[case_id(*c) for c in BAD_CASES])
def test_what_torch_refuses_archdsl_refuses(call, shape, torch_module):
    with pytest.raises(Exception):
        torch_module()(torch.randn(BATCH, *shape))
    with pytest.raises(archdsl.ArchDSLError):
        analyze_call(call, shape)


def build_network(analysis):
    return nn.Sequential(*(node.layer.build(row.facts)
                           for node, row in zip(analysis.nodes, analysis.rows)))


def test_one_liner_network_matches_torch():
    text = "input 1x28x28\n[Conv(16,3,p=1) -> ReLU -> MaxPool(2)]*2 -> Flatten -> Linear(10)"
    analysis = archdsl.analyze(text)
    network = build_network(analysis)
    out, macs, _ = run(network, (1, 28, 28))
    params = sum(p.numel() for p in network.parameters())
    assert params == analysis.totals.params == 10_330
    assert tuple(out.shape) == (BATCH, *analysis.output) == (BATCH, 10)
    assert macs == analysis.totals.macs


def test_simple_cnn_matches_torch():
    analysis = archdsl.analyze(archdsl.read_spec(str(SPECS / "simple_cnn.spec")))
    network = build_network(analysis)
    out, macs, shapes = run(network, analysis.input)
    params = sum(p.numel() for p in network.parameters())
    assert params == analysis.totals.params == 206_922
    assert macs == analysis.totals.macs == 1_218_048
    assert list(shapes.values()) == [row.output for row in analysis.rows]
    kept = [shapes[str(i)] for i, row in enumerate(analysis.rows) if row.type != "ReLU"]
    assert kept == [(16, 28, 28), (16, 14, 14), (32, 14, 14), (32, 7, 7), (1568,), (128,), (10,)]
