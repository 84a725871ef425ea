"""Compiled modules against the static analysis, for every shipped spec."""
import pytest
import torch

from archdsl import analyze, parse
from archdsl.compiler import build
from conftest import SPECS


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_module_matches_the_analysis(path):
    analysis = analyze(parse(path.read_text()))
    model = build(analysis).eval()
    assert sum(p.numel() for p in model.parameters()) == analysis.totals.params
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == \
        analysis.totals.trainable
    assert sum(b.numel() for b in model.buffers()) == analysis.totals.buffers
    seen = {}

    def record(name):
        def hook(module, args, out):
            seen[name] = tuple(out.shape[1:])
        return hook

    for row in analysis.rows:
        model.layer(row.name).register_forward_hook(record(row.name))
    with torch.no_grad():
        out = model(torch.randn(2, *analysis.input))
    assert tuple(out.shape) == (2, *analysis.output)
    assert seen == {row.name: row.output for row in analysis.rows}


def test_state_dict_keys_follow_row_names():
    model = build("input 1x28x28\n[Conv(16,3,p=1) -> ReLU -> MaxPool(2)]*2 -> Flatten -> "
                  "Linear(10)")
    assert list(model.state_dict()) == ["block1.conv.weight", "block1.conv.bias",
                                        "block2.conv.weight", "block2.conv.bias",
                                        "linear.weight", "linear.bias"]
    assert "(block1): Module(" in str(model)


def test_rows_may_be_named_like_module_methods():
    model = build("input 1x8x8\ndef Double(c) = [Conv(c, 3, p=1) -> ReLU]\n"
                  "[Double(4)] as up -> Conv(2, 1) as train")
    assert list(model.state_dict()) == ["up.double.conv.weight", "up.double.conv.bias",
                                        "train.weight", "train.bias"]
    assert model.layer("up.double.conv") is model._modules["up"]._modules["double"].conv
    assert model(torch.randn(1, 1, 8, 8)).shape == (1, 2, 8, 8)


def test_frozen_layer_has_no_gradient():
    model = build("input 1x8x8\nConv(4, 3, frozen=true) -> Flatten -> Linear(2)")
    assert not model.conv.weight.requires_grad and model.linear.weight.requires_grad


def test_jit_trace_gives_the_same_outputs():
    model = build(parse((SPECS[0].parent / "simple_cnn.spec").read_text())).eval()
    x = torch.randn(3, 1, 28, 28)
    traced = torch.jit.trace(model, x)
    torch.testing.assert_close(traced(x), model(x))


def test_pytorch_default_initialization():
    torch.manual_seed(0)
    ours = build("input 1x8x8\nConv(4, 3)").conv
    torch.manual_seed(0)
    reference = torch.nn.Conv2d(1, 4, 3)
    torch.testing.assert_close(ours.weight, reference.weight)
