"""Tracing nn.Modules into ImportedGraphs, checked against the torch modules themselves: every
node's layer, bound by archdsl's own binder and resolved along the graph, has the parameter and
buffer shapes of the module it stands for; the graph's totals and output shape are the model's;
its merges are the additions, products and concatenations the forward pass makes.

The torchvision models are built on the meta device (no weights are made) and traced at their
real input sizes: shape propagation uses fake tensors, so no forward pass is computed.
"""
from __future__ import annotations

import collections
import copy
import dataclasses
import inspect
import operator
from collections import OrderedDict
from types import SimpleNamespace

import pytest
import torch
import torchvision
from torch import nn
from torch.overrides import TorchFunctionMode
from torchvision.ops import StochasticDepth

import archdsl
from archdsl import compiler
from archdsl.errors import UnsupportedModelError, UntraceableModelError
from archdsl.importer.graph import INPUT
from archdsl.importer.lookup import resolve
from archdsl.importer.trace import trace
from archdsl.layers import layer_class, layer_names
from archdsl.layers.arguments import bind_arguments
from archdsl.layers.modules import ChannelLayerNorm, LayerScale, PointwiseLinear
from tests.conftest import assert_plain, ROOT, SPECS

# name, input, constructor arguments; the ones that cannot be built on the meta device
# (RegNet computes its widths with torch at construction) are built on the CPU.
MODELS = {
    "resnet18": ((3, 224, 224), {}),
    "resnet50": ((3, 224, 224), {}),
    "vgg16_bn": ((3, 224, 224), {}),
    "alexnet": ((3, 224, 224), {}),
    "squeezenet1_1": ((3, 224, 224), {}),
    "googlenet": ((3, 224, 224), {"aux_logits": False, "init_weights": False}),
    "densenet121": ((3, 224, 224), {}),
    "mobilenet_v2": ((3, 224, 224), {}),
    "inception_v3": ((3, 299, 299), {"aux_logits": False, "init_weights": False}),
    "resnext50_32x4d": ((3, 224, 224), {}),
    "regnet_x_400mf": ((3, 224, 224), {}),
    "mnasnet1_0": ((3, 224, 224), {}),
    "convnext_tiny": ((3, 224, 224), {}),
    "efficientnet_b0": ((3, 224, 224), {}),
    "mobilenet_v3_small": ((3, 224, 224), {}),
    "mobilenet_v3_large": ((3, 224, 224), {}),
    "regnet_y_400mf": ((3, 224, 224), {}),
    "shufflenet_v2_x1_0": ((3, 224, 224), {}),
}
ON_CPU = {"regnet_x_400mf", "regnet_y_400mf"}
LAYER_MODULES = {kind for name in layer_names() for kind in layer_class(name).torch_modules}


def build(name: str) -> nn.Module:
    shape, arguments = MODELS[name]
    if name in ON_CPU:
        return torchvision.models.get_model(name, weights=None, **arguments)
    with torch.device("meta"):
        return torchvision.models.get_model(name, weights=None, **arguments)


@pytest.fixture(scope="module", params=sorted(MODELS))
def traced(request):
    model = build(request.param)
    shape = MODELS[request.param][0]
    return model, shape, trace(model, shape, f"torchvision.models.{request.param}()")


class SimpleCNN(nn.Module):
    """The tutorial's network, written as the tutorial writes it."""

    def __init__(self):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),  # 16×28×28
            nn.ReLU(),
            nn.MaxPool2d(2),  # 16×14×14
            nn.Conv2d(16, 32, kernel_size=3, padding=1),  # 32×14×14
            nn.ReLU(),
            nn.MaxPool2d(2),  # 32×7×7
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, 128),
            nn.ReLU(),
            nn.Linear(128, 10),
        )

    def forward(self, x):
        x = self.conv_block(x)
        return self.classifier(x)


# Reading the graph back with archdsl: each node's arguments bound as a spec's call is.

def bound(node):
    """The archdsl layer of a node, its arguments bound by the binder that binds spec calls."""
    cls = layer_class(node.layer)
    arguments = [SimpleNamespace(keyword=k, value=v, span=None) for k, v in node.arguments]
    values, _ = bind_arguments(cls, cls.dsl_name, cls.usage(), arguments, None)
    layer = cls(**values)
    layer.check()
    return layer


def resolved(graph):
    """Every node's Facts, resolved along the graph from the input shape."""
    facts = {}
    for node in graph.nodes:
        shapes = [graph.input if i == INPUT else facts[i].output for i in node.inputs]
        facts[node.name] = bound(node).resolve(*shapes)
    return facts


def module_path(node) -> str:
    return ".".join([attribute for attribute, _ in node.scope] + [node.attribute])


def torch_calls(model: nn.Module, shape) -> collections.Counter:
    """What the model's forward pass calls, counted by torch itself on a meta-device batch:
    every call of a module that some archdsl layer stands for, by its class name (forward
    hooks), tensor additions and products of two
    tensors, and concatenations of several tensors (a torch function mode)."""
    counts = collections.Counter()

    class Count(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            tensors = [a for a in args[:2] if isinstance(a, torch.Tensor)]
            name = getattr(func, "__name__", "")
            if name in ("add", "add_", "__add__", "__radd__") and len(tensors) == 2:
                counts["add"] += 1
            elif name in ("mul", "mul_", "__mul__", "__rmul__") and len(tensors) == 2:
                counts["mul"] += 1
            elif func is torch.cat and len(args[0]) > 1:
                counts["cat"] += 1
            return func(*args, **(kwargs or {}))

    def hook(module, inputs, output):
        counts[type(module).__name__] += 1

    model = on_meta(model)
    handles = [m.register_forward_hook(hook) for m in model.modules()
               if type(m).__name__ in LAYER_MODULES]
    try:
        with torch.no_grad(), Count():
            model.eval()(torch.zeros(2, *shape, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return counts


def on_meta(model: nn.Module) -> nn.Module:
    """The model on the meta device: itself where it is, else a copy."""
    if next(model.parameters()).is_meta:
        return model
    return copy.deepcopy(model).to("meta")


# The torchvision models.

def test_the_graph_is_well_formed(traced):
    _, _, graph = traced
    names = [node.name for node in graph.nodes]
    assert len(set(names)) == len(names)
    seen = {INPUT}
    for node in graph.nodes:
        assert set(node.inputs) <= seen, node
        merge = layer_class(node.layer).kind == "merge"
        assert len(node.inputs) >= 2 if merge else len(node.inputs) == 1, node
        assert_plain(node.arguments, node.name)
        seen.add(node.name)
    # the last node is the output: nothing reads it
    assert not any(graph.nodes[-1].name in node.inputs for node in graph.nodes)


def test_each_layer_has_the_weights_of_its_module(traced):
    model, _, graph = traced
    facts = resolved(graph)
    modules = [node for node in graph.nodes if node.attribute is not None and
               node.layer != "LayerScale"]
    assert modules
    for node in modules:
        module = model.get_submodule(module_path(node))
        assert [shape for _, shape in facts[node.name].parameters] == \
            [tuple(p.shape) for p in module.parameters()], node.source
        assert [shape for _, shape in facts[node.name].buffers] == \
            [tuple(b.shape) for b in module.buffers()], node.source


def test_totals_and_output_are_the_models(traced):
    model, shape, graph = traced
    facts = resolved(graph)
    assert sum(f.params for f in facts.values()) == sum(p.numel() for p in model.parameters())
    assert sum(f.buffer_count for f in facts.values()) == \
        sum(b.numel() for b in model.buffers())
    output = on_meta(model).eval()(torch.zeros(2, *shape, device="meta"))
    assert facts[graph.nodes[-1].name].output == tuple(output.shape[1:])


def test_nodes_are_the_calls_of_the_forward_pass(traced):
    model, shape, graph = traced
    calls = torch_calls(model, shape)
    by_module = collections.Counter(node.source.rpartition("(")[2].rstrip(")")
                                    for node in graph.nodes if node.attribute is not None)
    for kind, count in calls.items():
        if kind in LAYER_MODULES and kind != "Identity":  # Identity leaves no node
            assert by_module[kind] == count, kind
    layers = collections.Counter(node.layer for node in graph.nodes)
    assert layers["Add"] == calls["add"]
    assert layers["Multiply"] == calls["mul"]
    assert layers["Concat"] == calls["cat"]


def test_scope_and_source_name_the_module_path():
    model = build("resnet50")
    graph = trace(model, (3, 224, 224))
    conv = next(n for n in graph.nodes if n.source == "layer1.0.conv1 (Conv2d)")
    assert conv.scope == (("layer1", "Sequential"), ("0", "Bottleneck"))
    assert conv.attribute == "conv1"
    assert conv.arguments == ((None, 64), (None, 1), ("bias", False))
    add = next(n for n in graph.nodes if n.layer == "Add")
    assert add.scope == (("layer1", "Sequential"), ("0", "Bottleneck"))
    assert add.attribute is None and add.source == "layer1.0: operator.add"
    # the residual sum reads the block's body first, as `out += identity` does
    body, shortcut = add.inputs
    assert body == "layer1_0_bn3" and shortcut == "layer1_0_downsample_1"
    stem = graph.nodes[0]
    assert (stem.layer, stem.arguments) == (
        "Conv", ((None, 64), (None, 7), ("s", 2), ("p", 3), ("bias", False)))


def test_googlenet_keeps_its_settings():
    graph = trace(build("googlenet"), (3, 224, 224))
    norms = {n.arguments for n in graph.nodes if n.layer == "BatchNorm"}
    assert norms == {(("eps", 0.001),)}  # BasicConv2d's
    pools = [n for n in graph.nodes if n.layer == "MaxPool"]
    assert pools[0].arguments == ((None, 3), ("s", 2), ("ceil_mode", True))
    relus = [n for n in graph.nodes if n.layer == "ReLU"]
    assert relus[0].source == "conv1: torch.nn.functional.relu" and relus[0].attribute is None


def test_the_tutorials_simple_cnn_is_simple_cnn_spec():
    graph = trace(SimpleCNN(), (1, 28, 28))
    spec = archdsl.analyze((ROOT / "specs" / "simple_cnn.spec").read_text())
    assert [bound(node) for node in graph.nodes] == [node.layer for node in spec.nodes]
    assert [module_path(node) for node in graph.nodes] == \
        [f"{block}.{i}" for block, count in (("conv_block", 6), ("classifier", 4))
         for i in range(count)]
    assert graph.nodes[0].arguments == ((None, 16), (None, 3), ("p", 1))
    assert graph.input == (1, 28, 28)


def test_tracing_leaves_the_module_in_its_mode():
    model = SimpleCNN().train()
    trace(model, (1, 28, 28))
    assert all(m.training for m in model.modules())


# What cannot be imported.

class Custom(nn.Module):
    """A module with its own arithmetic, a setting archdsl lacks, a module archdsl lacks and a
    module called twice."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect")
        self.shared = nn.Conv2d(8, 8, 1)
        self.embed = nn.Embedding(10, 8)

    def forward(self, x):
        x = torch.sin(self.conv(x)) * 2
        x = self.shared(self.shared(x))
        return x / x.norm()


def line(function, offset: int) -> str:
    """Where torch.fx records a call: this file and the line `offset` lines below `def`."""
    return f"test_trace.py:{function.__code__.co_firstlineno + offset}"


def test_every_unsupported_call_is_listed_with_its_place():
    with pytest.raises(UnsupportedModelError) as caught:
        trace(Custom(), (3, 8, 8), "model.py:Custom()")
    first, second, third = (line(Custom.forward, n) for n in (1, 2, 3))
    assert caught.value.unsupported == (
        f"conv (Conv2d): padding_mode='reflect' (archdsl builds padding_mode='zeros' only) "
        f"({first})",
        f"torch.sin: no archdsl layer ({first})",
        f"operator.mul: multiplies a tensor of shape 8×8×8 and the constant 2 ({first})",
        f"shared (Conv2d): called a second time: archdsl gives every call its own weights, so "
        f"shared ones cannot be imported ({second})",
        f"Tensor.norm: no archdsl layer ({third})",
        f"operator.truediv: no archdsl layer ({third})",
        "embed (Embedding): never called in eval mode, so its 80 parameters and buffers would "
        "be lost",
    )
    message = str(caught.value)
    assert message.startswith("error: model.py:Custom() cannot be imported; archdsl has no "
                              "counterpart for:\n  conv (Conv2d): ")
    assert all(item in message for item in caught.value.unsupported)


class Inner(nn.Module):
    def forward(self, x):
        return torch.sigmoid(x) - 1


def test_a_function_in_a_submodule_names_the_submodule():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), Inner())
    with pytest.raises(UnsupportedModelError) as caught:
        trace(model, (1, 8, 8))
    assert caught.value.unsupported == (
        f"1: operator.sub: no archdsl layer ({line(Inner.forward, 1)})",)


def test_training_only_heads_are_not_dropped_in_silence():
    with torch.device("meta"):
        model = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)
    with pytest.raises(UnsupportedModelError) as caught:
        trace(model, (3, 224, 224))
    assert [item.split(":")[0] for item in caught.value.unsupported] == [
        "aux1 (InceptionAux)", "aux2 (InceptionAux)"]
    total = sum(p.numel() for p in model.aux1.parameters()) + \
        sum(b.numel() for b in model.aux1.buffers())
    assert f"its {total:,} parameters" in caught.value.unsupported[0]
    assert "aux_logits=False" in caught.value.hint


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)

    def forward(self, x):
        if x.mean() > 0:
            return self.conv(x)
        return x


def test_data_dependent_control_flow_is_a_typed_error():
    with pytest.raises(UntraceableModelError) as caught:
        trace(DataDependent(), (1, 8, 8), "model.py:DataDependent()")
    assert caught.value.message.startswith("torch.fx cannot trace model.py:DataDependent(): ")
    assert "control flow" in caught.value.message
    assert caught.value.message.endswith(f"(at {line(DataDependent.forward, 1)})")
    assert "branch" in caught.value.hint
    assert isinstance(caught.value, UnsupportedModelError)  # one class to catch, exit 2
    assert caught.value.exit_code == 2


def test_an_input_the_module_cannot_take_says_so():
    with pytest.raises(UntraceableModelError) as caught:
        trace(SimpleCNN(), (1, 32, 32))  # the classifier expects 32×7×7 features
    assert caught.value.message.startswith(
        f"{__name__}.SimpleCNN() fails on a 1×32×32 input at classifier.1 (Linear): ")


def test_a_layer_norm_over_the_width_is_not_one_over_the_channels():
    model = nn.Sequential(nn.Conv2d(3, 8, 1), nn.LayerNorm(8))  # normalizes the last axis
    with pytest.raises(UnsupportedModelError) as caught:
        trace(model, (3, 8, 8))
    assert caught.value.unsupported == (
        "1 (LayerNorm): acts on the last axis of a 8×8×8 map, not on its channels",)


# The torch names the layer classes declare.

def test_every_declared_torch_function_exists():
    for name in layer_names():
        for function in layer_class(name).torch_functions:
            if function.startswith("Tensor."):
                assert hasattr(torch.Tensor, function.removeprefix("Tensor.")), function
            else:
                assert callable(resolve(function)), function


def test_every_declared_torch_module_exists():
    from archdsl.layers import modules
    from torchvision.models.convnext import LayerNorm2d
    places = [nn, torchvision.ops, modules]
    for name in layer_names():
        for kind in layer_class(name).torch_modules:
            assert kind == LayerNorm2d.__name__ or any(
                isinstance(getattr(place, kind, None), type) for place in places), kind


def test_structure_functions_resolve():
    from archdsl.importer.reading import STRUCTURE
    for name in STRUCTURE:
        if not name.startswith("Tensor."):
            assert resolve(name) is not None, name
    assert resolve("operator.add") is operator.add
    assert resolve("torch.nn.functional.no_such_function") is None


# Networks archdsl itself writes as PyTorch: compiled specs, and the constructs of an exported
# Python file.

def canonical(layers) -> list:
    """Layers as an import reads them back: no Identity (it leaves no node), GlobalAvgPool as
    the AdaptiveAvgPool(1) -> Flatten its module is, a size repeated per axis as one number,
    and no `as` references (the spec writer names those)."""
    pool, flatten = layer_class("AdaptiveAvgPool")(1), layer_class("Flatten")()
    read = []
    for layer in layers:
        if layer.passes_through:
            continue
        if layer.dsl_name == "GlobalAvgPool":
            read += [pool, flatten]
            continue
        values = {f.name: getattr(layer, f.name) for f in dataclasses.fields(layer)}
        values = {name: value[0] if isinstance(value, tuple) and len(set(value)) == 1 else value
                  for name, value in values.items()}
        if "skip" in values:
            values["skip"] = None
        read.append(type(layer)(**values))
    return read


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_a_compiled_spec_traces_back_to_its_layers(path):
    analysis = archdsl.analyze(path.read_text())
    with torch.device("meta"):
        network = compiler.build(analysis)
    graph = trace(network, analysis.input)
    assert [bound(node) for node in graph.nodes] == canonical(n.layer for n in analysis.nodes)
    assert sum(f.params for f in resolved(graph).values()) == analysis.totals.params


class ScaledBlock(nn.Module):
    """ConvNeXt's block as archdsl export writes it: its helper modules (the classes of
    archdsl/layers/modules.py, which the file defines), an OrderedDict Sequential, the product
    and the sum in forward."""

    def __init__(self, c):
        super().__init__()
        self.layerscale = LayerScale((c, 1, 1), 0.5)  # c×1×1
        self.branch = nn.Sequential(OrderedDict([
            ("conv", nn.Conv2d(c, c, 7, padding=3, groups=c)),
            ("layernorm", ChannelLayerNorm(c, eps=1e-06)),
            ("linear1", PointwiseLinear(c, c * 4)),
            ("gelu", nn.GELU()),
            ("linear2", PointwiseLinear(c * 4, c)),
        ]))
        self.stochasticdepth = StochasticDepth(0.1, "row")

    def forward(self, x):
        return self.stochasticdepth(self.layerscale(x) * self.branch(x)) + x


class ShuffleUnit(nn.Module):
    """ShuffleNet's unit as archdsl export writes it: chunks taken in forward."""

    def __init__(self, c):
        super().__init__()
        self.branch = nn.Sequential(nn.Conv2d(c // 2, c // 2, 1, bias=False),
                                    nn.BatchNorm2d(c // 2), nn.ReLU())
        self.channelshuffle = nn.ChannelShuffle(2)

    def forward(self, x):
        return self.channelshuffle(
            torch.cat([x.chunk(2, dim=1)[0], self.branch(x.chunk(2, dim=1)[1])], dim=1))


class Up(nn.Module):
    """U-Net's step up as archdsl export writes it: a center crop of the skip in the
    concatenation, and a child named like an nn.Module method."""

    def __init__(self):
        super().__init__()
        self.convtranspose = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self._modules["double"] = nn.Sequential(nn.Conv2d(16, 8, 3, padding=1), nn.ReLU())

    def forward(self, x, skip):
        return self._modules["double"](
            torch.cat([self.convtranspose(x), skip[..., 2:10, 2:10]], dim=1))


class Exported(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Conv2d(3, 8, 1)
        self.pool = nn.MaxPool2d(2)
        self.conv = nn.Conv2d(8, 16, 3)
        self.up = Up()
        self.block = ScaledBlock(8)
        self.unit = ShuffleUnit(8)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))

    def forward(self, x):
        enc = self.enc(x)
        x = self.up(self.conv(self.pool(enc)), enc)
        return self.head(self.unit(self.block(x)))


EXPORTED_SPEC = """input 3x12x12
Conv(8, 1) as enc -> MaxPool(2) -> Conv(16, 3)
  -> ConvTranspose(8, 2, s=2) -> Concat(enc, crop=true) -> Conv(8, 3, p=1) -> ReLU
  -> [[LayerScale(0.5) * [Conv(8, 7, p=3, g=8) -> LayerNorm(eps=1e-6)
                          -> Linear(32, pointwise=true) -> GELU -> Linear(8, pointwise=true)]
       -> StochasticDepth(0.1)] + Identity]
  -> [Chunk(0) | [Chunk(1) -> Conv(4, 1, bias=false) -> BatchNorm -> ReLU] -> ChannelShuffle(2)]
  -> AdaptiveAvgPool(1) -> Flatten -> Linear(10)
"""


def test_the_constructs_of_an_exported_file():
    model = Exported()
    graph = trace(model, (3, 12, 12))
    analysis = archdsl.analyze(EXPORTED_SPEC)
    assert [bound(node) for node in graph.nodes] == canonical(n.layer for n in analysis.nodes)
    assert sum(f.params for f in resolved(graph).values()) == \
        sum(p.numel() for p in model.parameters())
    concat = next(node for node in graph.nodes if node.layer == "Concat")
    assert concat.inputs == ("up_convtranspose", "enc")  # the long skip, cropped
    scale = next(node for node in graph.nodes if node.layer == "LayerScale")
    assert (scale.arguments, scale.inputs) == (((None, 0.5),), ("up_double_1",))
    assert [node.scope[-1][0] for node in graph.nodes if node.source.startswith("up.double")] \
        == ["double", "double"]


def test_layer_scale_as_torchvision_keeps_it_a_parameter():
    graph = trace(build("convnext_tiny"), (3, 224, 224))
    scales = [node for node in graph.nodes if node.layer == "LayerScale"]
    assert len(scales) == 18
    first = scales[0]
    # a parameter of the block, read in its forward: the block's input is what it scales for
    assert (first.scope[-1], first.attribute) == (("0", "CNBlock"), "layer_scale")
    assert first.inputs == ("features_0_1",)
    product = next(node for node in graph.nodes if first.name in node.inputs)
    assert product.layer == "Multiply" and product.inputs[0] == first.name


class Linear(nn.Module):
    """A module of one's own that happens to share a name with PyTorch's."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(4))

    def forward(self, x):
        return x * 3


def test_a_class_named_like_torchs_is_not_taken_for_it():
    with pytest.raises(UnsupportedModelError) as caught:
        trace(nn.Sequential(nn.Conv2d(1, 4, 1), Linear()), (1, 4, 4))
    assert caught.value.unsupported[0].startswith(
        "1: operator.mul: multiplies a tensor of shape 4×4×4 and the constant 3")


def test_googlenets_input_transform_is_listed_where_torchvision_makes_it():
    with torch.device("meta"):
        model = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False,
                                             transform_input=True)
    with pytest.raises(UnsupportedModelError) as caught:
        trace(model, (3, 224, 224))
    items = caught.value.unsupported
    assert len(items) == 12  # per channel: pick it, unsqueeze, scale, shift
    assert items[2].startswith("operator.mul: multiplies a tensor of shape 1×224×224 and the "
                               "constant 0.458")
    source = inspect.getsource(torchvision.models.GoogLeNet._transform_input).splitlines()
    first = torchvision.models.GoogLeNet._transform_input.__code__.co_firstlineno + next(
        i for i, text in enumerate(source) if "x_ch0 =" in text)
    assert all(item.endswith(f"(googlenet.py:{first})") for item in items[:4])


class TwoInputs(nn.Module):
    def forward(self, x, y):
        return x + y


class TwoOutputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 1)

    def forward(self, x, scale=None):  # an argument with a default is traced at its default
        return self.conv(x), x


def test_a_network_takes_one_input_and_gives_one_output():
    with pytest.raises(UnsupportedModelError) as caught:
        trace(TwoInputs(), (1, 4, 4))
    assert caught.value.unsupported == (
        "forward: its argument 'y': an archdsl network takes one input",)
    with pytest.raises(UnsupportedModelError) as caught:
        trace(TwoOutputs(), (1, 4, 4))
    assert caught.value.unsupported == (
        "forward: forward returns what is no single tensor with the channels first",)


def test_tied_weights_are_refused():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4))
    model[2].weight = model[0].weight
    with pytest.raises(UnsupportedModelError) as caught:
        trace(model, (4,))
    assert caught.value.unsupported == (
        "2 (Linear): shares its weights with 0: archdsl gives every layer its own",)
