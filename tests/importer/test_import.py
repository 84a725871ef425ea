"""archdsl.from_module on torchvision's CNNs and the tutorial's SimpleCNN, end to end: the spec
it writes is in fmt's layout, analyzes to the model's parameters, buffers, MACs (counted by
forward hooks, tests/test_zoo.py) and output shape, and compiles to a module that takes the
model's state_dict by order and gives its outputs."""
import functools

import pytest
import torch
import torchvision
from torch import nn

import archdsl
from archdsl import analyze, parse
from archdsl.compiler import build, load_state_dict_by_order
from archdsl.fmt import format_spec
from conftest import ROOT
from test_trace import SimpleCNN  # the tutorial's class, as the tutorial writes it
from test_zoo import hooked_macs, stochastic_depths

# name: (the input the spec declares, the smallest input compared by a forward pass, keywords)
MODELS = {
    "alexnet": ((3, 224, 224), (3, 64, 64), {}),
    "convnext_tiny": ((3, 224, 224), (3, 32, 32), {}),
    "densenet121": ((3, 224, 224), (3, 32, 32), {}),
    "efficientnet_b0": ((3, 224, 224), (3, 32, 32), {}),
    "googlenet": ((3, 224, 224), (3, 64, 64), {"aux_logits": False, "init_weights": False}),
    "inception_v3": ((3, 299, 299), (3, 75, 75), {"aux_logits": False, "init_weights": False}),
    "mnasnet1_0": ((3, 224, 224), (3, 32, 32), {}),
    "mobilenet_v2": ((3, 224, 224), (3, 32, 32), {}),
    "mobilenet_v3_large": ((3, 224, 224), (3, 32, 32), {}),
    "mobilenet_v3_small": ((3, 224, 224), (3, 32, 32), {}),
    "resnet18": ((3, 224, 224), (3, 32, 32), {}),
    "resnet50": ((3, 224, 224), (3, 32, 32), {}),
    "resnext50_32x4d": ((3, 224, 224), (3, 32, 32), {}),
    "regnet_x_400mf": ((3, 224, 224), (3, 32, 32), {}),
    "regnet_y_400mf": ((3, 224, 224), (3, 32, 32), {}),
    "shufflenet_v2_x1_0": ((3, 224, 224), (3, 32, 32), {}),
    "squeezenet1_1": ((3, 224, 224), (3, 64, 64), {}),
    "vgg16_bn": ((3, 224, 224), (3, 32, 32), {}),
}


@functools.cache
def imported(name: str) -> tuple[nn.Module, str]:
    """The model, with running statistics unlike the defaults, and its spec: built once."""
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None, **MODELS[name][2]).eval()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model, archdsl.from_module(model, MODELS[name][0], f"torchvision.models.{name}()")


@pytest.fixture(scope="module", params=sorted(MODELS))
def model_and_spec(request):
    return request.param, *imported(request.param)


def test_the_spec_is_in_fmts_layout(model_and_spec):
    name, _, text = model_and_spec
    assert format_spec(text) == text
    assert text.startswith(f"# imported from torchvision.models.{name}() by archdsl import "
                           f"(torchvision {torchvision.__version__.split('+')[0]})\n"
                           f"input {'x'.join(map(str, MODELS[name][0]))}\n")
    assert all(len(line) <= 100 for line in text.splitlines())


def test_the_spec_counts_what_the_model_has(model_and_spec):
    name, model, text = model_and_spec
    analysis = analyze(parse(text))
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    assert analysis.totals.buffers == sum(b.numel() for b in model.buffers())
    with torch.device("meta"):  # the MACs at the declared input, computing nothing
        meta = torchvision.models.get_model(name, weights=None, **MODELS[name][2]) \
            if not name.startswith("regnet") else None
    if meta is None:  # RegNet reads its widths back from tensors: built on the CPU
        meta = torchvision.models.get_model(name, weights=None).to("meta")
    macs, output = hooked_macs(meta.eval(), torch.empty(1, *analysis.input, device="meta"))
    assert (analysis.totals.macs, analysis.output) == (macs, output)


def test_the_compiled_spec_takes_the_weights_and_gives_the_outputs(model_and_spec):
    name, model, text = model_and_spec
    analysis = analyze(parse(text), input="x".join(map(str, MODELS[name][1])))
    ours = build(analysis).eval()
    load_state_dict_by_order(ours, model.state_dict())
    x = torch.randn(2, *analysis.input)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), model(x))
        # the identity at evaluation: each drop rate, to the last bit, as the model calls them
        assert stochastic_depths(ours, x) == stochastic_depths(model, x)


def test_resnet50_is_about_as_short_as_the_zoos():
    text = imported("resnet50")[1]
    zoo = format_spec((ROOT / "specs" / "zoo" / "resnet50.spec").read_text())
    assert len(text.splitlines()) <= len(zoo.splitlines()) + 3
    assert "-> Bottleneck(128)*3] as layer2" in text


def rows(analysis):
    return [(row.type, row.layer, row.input, row.output, row.params, row.buffers, row.macs)
            for row in analysis.rows]


def test_the_tutorials_simple_cnn_imports_as_simple_cnn_spec():
    text = archdsl.from_module(SimpleCNN(), (1, 28, 28))
    assert text.startswith("# imported from test_trace.SimpleCNN() by archdsl import\n"
                           "input 1x28x28\n")
    ours = analyze(parse(text))
    shipped = analyze(parse((ROOT / "specs" / "simple_cnn.spec").read_text()))
    assert rows(ours) == rows(shipped)
    assert [row.name for row in ours.rows] == [
        "conv_block.conv1", "conv_block.relu1", "conv_block.maxpool1", "conv_block.conv2",
        "conv_block.relu2", "conv_block.maxpool2", "classifier.flatten", "classifier.linear1",
        "classifier.relu", "classifier.linear2"]
