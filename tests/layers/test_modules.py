"""The torch modules archdsl's layers build where PyTorch has none, against torchvision's own:
ConvNeXt's block (LayerNorm2d, Permute -> Linear -> Permute, layer_scale) and ShuffleNetV2's
channel split and shuffle, value for value."""
import pytest
import torch
from torch import nn
from torchvision.models.convnext import CNBlock, LayerNorm2d
from torchvision.models.shufflenetv2 import channel_shuffle

import archdsl
from archdsl.compiler import build, load_state_dict_by_order


def built(call, shape):
    """The module of a one-layer spec, and its row."""
    analysis = archdsl.analyze(f"input {'x'.join(map(str, shape))}\n{call}")
    return analysis.nodes[0].layer.build(shape), analysis.rows[0]


class ScaledBlock(nn.Module):
    """`LayerScale(1e-6) * [block]` composed by hand: the product syntax is the lead's."""

    def __init__(self, scale, block):
        super().__init__()
        self.scale, self.block = scale, block

    def forward(self, x):
        return self.scale(x) * self.block(x)


def test_convnext_block_equals_torchvisions():
    theirs = CNBlock(16, layer_scale=0.5, stochastic_depth_prob=0.0).eval()
    scale, row = built("LayerScale(0.5)", (16, 9, 9))
    block = build("input 16x9x9\nConv(16, 7, p=3, g=16) -> LayerNorm(eps=1e-6) "
                  "-> Linear(64, pointwise=true) -> GELU -> Linear(16, pointwise=true)")
    ours = ScaledBlock(scale, block).eval()
    assert [tuple(t.shape) for t in ours.state_dict().values()] == \
        [tuple(t.shape) for t in theirs.state_dict().values()]
    torch.testing.assert_close(ours.scale.scale, theirs.layer_scale)  # before loading: init
    load_state_dict_by_order(ours, theirs.state_dict())
    x = torch.randn(2, 16, 9, 9)
    torch.testing.assert_close(ours(x) + x, theirs(x))
    assert row.output == (16, 1, 1) and row.params == row.weights == 16


@pytest.mark.parametrize("shape", [(8, 5, 6), (8, 7), (4, 3, 5, 5)])
def test_layer_norm_over_channels_is_torchvisions_layer_norm_2d(shape):
    ours, _ = built("LayerNorm(eps=1e-6)", shape)
    reference = LayerNorm2d(shape[0], eps=1e-6)
    for parameter in ours.parameters():  # not ones and zeros, so that they count
        nn.init.uniform_(parameter)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(2, *shape)
    if len(shape) == 3:
        torch.testing.assert_close(ours(x), reference(x))
    torch.testing.assert_close(
        ours(x), nn.functional.layer_norm(x.movedim(1, -1), (shape[0],), ours.weight, ours.bias,
                                          1e-6).movedim(-1, 1))
    assert list(ours.state_dict()) == ["weight", "bias"]


def test_pointwise_linear_is_a_linear_at_each_position():
    ours, _ = built("Linear(5, pointwise=true)", (3, 4, 6))
    x = torch.randn(2, 3, 4, 6)
    expected = torch.einsum("nchw,oc->nohw", x, ours.weight) + ours.bias[:, None, None]
    torch.testing.assert_close(ours(x), expected)
    assert isinstance(ours, nn.Linear) and list(ours.state_dict()) == ["weight", "bias"]


@pytest.mark.parametrize("call, channels, chunks, index", [
    ("Chunk(0)", 116, 2, 0), ("Chunk(1)", 116, 2, 1), ("Chunk(1)", 5, 2, 1),
    ("Chunk(2, chunks=4)", 5, 4, 2), ("Chunk(2, chunks=5)", 3, 5, 2),
])
def test_chunk_is_torch_chunk(call, channels, chunks, index):
    ours, row = built(call, (channels, 3, 3))
    x = torch.randn(2, channels, 3, 3)
    expected = x.chunk(chunks, dim=1)[index]
    torch.testing.assert_close(ours(x), expected)
    assert row.output == tuple(expected.shape[1:])


def test_channel_shuffle_is_shufflenets():
    ours, _ = built("ChannelShuffle(2)", (116, 7, 7))
    x = torch.randn(2, 116, 7, 7)
    torch.testing.assert_close(ours(x), channel_shuffle(x, 2))


def test_stochastic_depth_is_torchvisions_and_the_identity_at_evaluation():
    ours, _ = built("StochasticDepth(0.25, mode='batch')", (8, 5, 5))
    assert (type(ours).__module__, ours.p, ours.mode) == \
        ("torchvision.ops.stochastic_depth", 0.25, "batch")
    x = torch.randn(4, 8, 5, 5)
    torch.testing.assert_close(ours.eval()(x), x)


@pytest.mark.parametrize("call, slopes", [("PReLU", 1), ("PReLU(per_channel=true, init=0.1)", 8)])
def test_prelu_starts_at_init(call, slopes):
    ours, _ = built(call, (8, 5, 5))
    init = 0.1 if "init" in call else 0.25
    torch.testing.assert_close(ours.weight, torch.full((slopes,), init))
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(ours(x), torch.where(x > 0, x, init * x))
