"""Torch modules and calls as layers: each, written as a PyTorch user writes it, imports to the
archdsl call a person would write, and that call, compiled, loads the torch module's weights
and gives its outputs."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import StochasticDepth

import archdsl
from archdsl.compiler import load_state_dict_by_order
from archdsl.errors import UnsupportedModelError
from archdsl.importer.trace import trace
from archdsl.layers import layer_class
from archdsl.layers.arguments import literal
from archdsl.layers.importing import shortest_float32, written


class Call(nn.Module):
    """A function of the input, as a module's forward calls it."""

    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x):
        return self.function(x)


MODULES = [
    (nn.Conv2d(3, 8, 3), (3, 9, 9), "Conv(8, 3)"),
    (nn.Conv2d(3, 8, kernel_size=3, stride=2, padding=1, bias=False), (3, 9, 9),
     "Conv(8, 3, s=2, p=1, bias=false)"),
    (nn.Conv2d(4, 8, (1, 7), padding=(0, 3), groups=2), (4, 9, 9),
     "Conv(8, (1, 7), p=(0, 3), g=2)"),
    (nn.Conv2d(3, 4, 3, padding="same", dilation=2), (3, 9, 9), "Conv(4, 3, p='same', d=2)"),
    (nn.Conv1d(3, 4, 5, stride=2), (3, 20), "Conv(4, 5, s=2)"),
    (nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1), (8, 5, 5),
     "ConvTranspose(4, 3, s=2, p=1, output_padding=1)"),
    (nn.BatchNorm2d(3, eps=1e-3, momentum=0.01), (3, 5, 5),
     "BatchNorm(eps=0.001, momentum=0.01)"),
    (nn.BatchNorm1d(6, affine=False), (6,), "BatchNorm(affine=false)"),
    (nn.GroupNorm(2, 4), (4, 5, 5), "GroupNorm(2)"),
    (nn.InstanceNorm2d(3, affine=True), (3, 5, 5), "InstanceNorm(affine=true)"),
    (nn.LayerNorm(12, eps=1e-6), (12,), "LayerNorm(eps=1e-06)"),
    (nn.LayerNorm(12, elementwise_affine=False), (12,), "LayerNorm(affine=false)"),
    (nn.Linear(12, 5, bias=False), (12,), "Linear(5, bias=false)"),
    (nn.MaxPool2d(3, stride=2, padding=1), (3, 9, 9), "MaxPool(3, s=2, p=1)"),
    (nn.MaxPool2d(2), (3, 9, 9), "MaxPool(2)"),
    (nn.MaxPool2d(3, 2, ceil_mode=True), (3, 10, 10), "MaxPool(3, s=2, ceil_mode=true)"),
    (nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), (3, 6, 6),
     "AvgPool(3, s=1, p=1, count_include_pad=false)"),
    (nn.AdaptiveAvgPool2d((1, 1)), (3, 6, 6), "AdaptiveAvgPool(1)"),
    (nn.AdaptiveAvgPool2d((2, 3)), (3, 6, 6), "AdaptiveAvgPool((2, 3))"),
    (nn.Dropout(0.3), (12,), "Dropout(0.3)"),
    (nn.Dropout(), (12,), "Dropout"),
    (nn.ReLU(inplace=True), (12,), "ReLU"),
    (nn.ReLU6(), (12,), "ReLU6"),
    (nn.LeakyReLU(0.2), (12,), "LeakyReLU(0.2)"),
    (nn.ELU(alpha=0.5), (12,), "ELU(0.5)"),
    (nn.Hardtanh(-2.0, 2.0), (12,), "Hardtanh(-2.0, max=2.0)"),
    (nn.PReLU(), (3, 4, 4), "PReLU"),
    (nn.PReLU(3, init=0.1), (3, 4, 4), "PReLU(per_channel=true, init=0.1)"),
    (nn.GELU(approximate="tanh"), (12,), "GELU(approximate='tanh')"),
    (nn.Softmax(dim=1), (12,), "Softmax"),
    (nn.Softmax(dim=-1), (3, 4), "Softmax(dim=-1)"),
    (nn.Upsample(scale_factor=2, mode="bilinear"), (3, 4, 4), "Upsample(mode='bilinear')"),
    (nn.Upsample(scale_factor=(1, 3)), (3, 4, 4), "Upsample(scale=(1, 3))"),
    (nn.ChannelShuffle(3), (6, 4, 4), "ChannelShuffle(3)"),
    (nn.Flatten(), (3, 4, 4), "Flatten"),
    (StochasticDepth(0.2, "batch"), (3, 4, 4), "StochasticDepth(0.2, mode='batch')"),
    (nn.Conv2d(3, 4, 1).requires_grad_(False), (3, 4, 4), "Conv(4, 1, frozen=true)"),
]

FUNCTIONS = [
    (lambda x: F.relu(x, inplace=True), (3, 4, 4), "ReLU"),
    (torch.relu, (12,), "ReLU"),
    (lambda x: x.sigmoid(), (12,), "Sigmoid"),
    (lambda x: F.leaky_relu(x, 0.2), (12,), "LeakyReLU(0.2)"),
    (lambda x: F.gelu(x, approximate="tanh"), (12,), "GELU(approximate='tanh')"),
    (lambda x: F.hardtanh(x, -2.0, 2.0), (12,), "Hardtanh(-2.0, max=2.0)"),
    (F.hardswish, (12,), "Hardswish"),
    (lambda x: F.softmax(x, dim=1), (12,), "Softmax"),
    (lambda x: F.max_pool2d(x, 3, 2, 1), (3, 9, 9), "MaxPool(3, s=2, p=1)"),
    (lambda x: F.max_pool2d(x, kernel_size=3, stride=2, ceil_mode=True), (3, 10, 10),
     "MaxPool(3, s=2, ceil_mode=true)"),
    (lambda x: F.avg_pool2d(x, kernel_size=3, stride=1, padding=1), (3, 6, 6),
     "AvgPool(3, s=1, p=1)"),
    (lambda x: F.adaptive_avg_pool2d(x, (1, 1)), (3, 6, 6), "AdaptiveAvgPool(1)"),
    (lambda x: x.mean((2, 3), keepdim=True), (3, 6, 6), "AdaptiveAvgPool(1)"),
    (lambda x: x.mean([2, 3]), (3, 6, 6), "GlobalAvgPool"),
    (lambda x: torch.mean(x, dim=(-2, -1)), (3, 6, 6), "GlobalAvgPool"),
    (lambda x: F.dropout(x, 0.3, training=False), (12,), "Dropout(0.3)"),
    (lambda x: F.interpolate(x, scale_factor=2.0), (3, 4, 4), "Upsample"),
    (lambda x: F.channel_shuffle(x, 2), (4, 4, 4), "ChannelShuffle(2)"),
    (lambda x: torch.flatten(x, 1), (3, 4, 4), "Flatten"),
    (lambda x: x.view(x.size(0), -1), (3, 4, 4), "Flatten"),
    (lambda x: x.reshape(x.shape[0], -1), (3, 4, 4), "Flatten"),
    (lambda x: x.chunk(3, dim=1)[2], (7, 4, 4), "Chunk(2, chunks=3)"),
]


def call_text(node) -> str:
    arguments = ", ".join(("" if keyword is None else f"{keyword}=") + literal(value)
                          for keyword, value in node.arguments)
    return f"{node.layer}({arguments})" if arguments else node.layer


def assert_equal_outputs(torch_module, call: str, shape):
    """The call, compiled, with the torch module's weights, gives the torch module's output."""
    network = archdsl.compiler.build(f"input {'x'.join(map(str, shape))}\n{call}")
    load_state_dict_by_order(network, torch_module.state_dict())
    x = torch.randn(2, *shape)
    with torch.no_grad():
        assert torch.allclose(network.eval()(x), torch_module.eval()(x), atol=1e-6)


@pytest.mark.parametrize("module, shape, call", MODULES, ids=[c for _, _, c in MODULES])
def test_a_torch_module_imports_as_its_layer(module, shape, call):
    (node,) = trace(nn.Sequential(module), shape).nodes
    assert call_text(node) == call
    if not isinstance(module, StochasticDepth) or not module.training:
        assert_equal_outputs(module, call, shape)


@pytest.mark.parametrize("function, shape, call", FUNCTIONS, ids=[c for _, _, c in FUNCTIONS])
def test_a_torch_call_imports_as_its_layer(function, shape, call):
    (node,) = trace(Call(function), shape).nodes
    assert call_text(node) == call
    assert_equal_outputs(Call(function), call, shape)


def test_identity_leaves_no_node():
    graph = trace(nn.Sequential(nn.Conv2d(3, 4, 1), nn.Identity(), nn.ReLU()), (3, 4, 4))
    assert [node.layer for node in graph.nodes] == ["Conv", "ReLU"]
    assert graph.nodes[1].inputs == (graph.nodes[0].name,)


@pytest.mark.parametrize("module, shape, problem", [
    (nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular"), (3, 5, 5),
     "padding_mode='circular' (archdsl builds padding_mode='zeros' only)"),
    (nn.BatchNorm2d(3, momentum=None), (3, 5, 5), "momentum=none: 'momentum' must be"),
    (nn.AvgPool2d(2, divisor_override=3), (3, 4, 4), "divisor_override=3"),
    (nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), (3, 4, 4),
     "align_corners=True"),
    (nn.Upsample(size=(8, 8)), (3, 4, 4), "size=(8, 8)"),
    (nn.Flatten(0), (3, 4, 4), "start_dim=0"),
    (nn.AdaptiveAvgPool2d((None, 2)), (3, 4, 4), "output_size="),
    (nn.LayerNorm((4, 4)), (3, 4, 4), "acts on the last axis"),
])
def test_settings_archdsl_lacks_are_named(module, shape, problem):
    with pytest.raises(UnsupportedModelError) as caught:
        trace(nn.Sequential(module), shape)
    (item,) = caught.value.unsupported
    assert item.startswith(f"0 ({type(module).__name__}): ") and problem in item


def test_a_mean_over_the_channels_is_no_pool():
    with pytest.raises(UnsupportedModelError) as caught:
        trace(Call(lambda x: x.mean(1)), (3, 4, 4))
    assert caught.value.unsupported[0].startswith("Tensor.mean: with 1 is no archdsl layer")


def test_written_leaves_out_defaults_and_uses_short_keywords():
    conv = layer_class("Conv")
    assert written(conv, {"out": 64, "kernel": 7, "stride": 2, "padding": 3, "dilation": 1,
                          "groups": 1, "bias": False}) == \
        ((None, 64), (None, 7), ("s", 2), ("p", 3), ("bias", False))
    assert written(layer_class("Dropout"), {"p": 0.5}) == ()
    assert written(layer_class("Chunk"), {"index": 1, "chunks": 3}) == ((None, 1), ("chunks", 3))
    assert written(layer_class("BatchNorm"), {"eps": 1e-3, "frozen": True}) == \
        (("eps", 1e-3), ("frozen", True))


def test_shortest_float32():
    value = torch.tensor(1e-6).item()  # a float32's value: 9.999999974752427e-07
    assert value != 1e-6 and shortest_float32(value) == 1e-6
    assert shortest_float32(torch.tensor(0.1).item()) == 0.1
