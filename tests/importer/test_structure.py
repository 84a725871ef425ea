"""write_spec on graphs written out by hand, as tracing gives them, for small torch modules
defined here: a residual network with three widths of one block class, a U-Net's long skips,
DenseNet's growing concatenations, squeeze-and-excitation. Each spec is checked against its
module: fmt's layout, parameters, buffers, MACs and output shape, and the module's weights
loaded by order giving the same outputs."""
import pytest
import torch
from torch import nn

from archdsl import analyze, parse
from archdsl.compiler import build, load_state_dict_by_order
from archdsl.errors import ArchDSLError
from archdsl.fmt import format_spec
from archdsl.importer.graph import INPUT, ImportedGraph, ImportedNode
from archdsl.importer.structure import write_spec
from test_zoo import UNet, hooked_macs


class Graph:
    """Nodes appended in call order, each reading the previous one unless told otherwise."""

    def __init__(self):
        self.nodes, self.last = [], INPUT

    def add(self, layer, *positional, inputs=None, scope=(), attribute=None, **keywords):
        name = f"n{len(self.nodes)}"
        arguments = tuple((None, v) for v in positional) + tuple(keywords.items())
        place = ".".join([a for a, _ in scope] + ([attribute] if attribute else []))
        self.nodes.append(ImportedNode(name, layer, arguments, tuple(inputs or (self.last,)),
                                       tuple(scope), attribute, f"{place} ({layer})"))
        self.last = name
        return name

    def graph(self, input, origin="a test module") -> ImportedGraph:
        return ImportedGraph(tuple(input), tuple(self.nodes), origin)


def imported(module: nn.Module, graph: ImportedGraph) -> str:
    """The spec written for `graph`, checked against `module`, which it describes."""
    text = write_spec(graph)
    assert format_spec(text) == text
    analysis = analyze(parse(text))
    module.eval()
    assert analysis.totals.params == sum(p.numel() for p in module.parameters())
    assert analysis.totals.buffers == sum(b.numel() for b in module.buffers())
    torch.manual_seed(0)
    x = torch.randn(1, *graph.input)
    with torch.no_grad():
        assert hooked_macs(module, x) == (analysis.totals.macs, analysis.output)
        ours = build(analysis).eval()
        load_state_dict_by_order(ours, module.state_dict())
        torch.testing.assert_close(ours(x), module(x))
    return text


def flat(text: str) -> str:
    """The spec with fmt's line breaks inside steps undone."""
    return " ".join(text.split())


class Block(nn.Module):
    def __init__(self, c_in, c, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.downsample = None
        if stride != 1 or c_in != c:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c, 1, stride, bias=False),
                                            nn.BatchNorm2d(c))

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResidualNet(nn.Module):
    BLOCKS = ((8, 8, 1), (8, 16, 2), (16, 16, 1), (16, 32, 1))

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.layer = nn.Sequential(*(Block(*b) for b in self.BLOCKS))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.layer(self.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def residual_graph() -> ImportedGraph:
    g = Graph()
    g.add("Conv", 8, 3, p=1, bias=False, attribute="conv")
    g.add("BatchNorm", attribute="bn")
    g.add("ReLU", attribute="relu")
    for index, (c_in, c, stride) in enumerate(ResidualNet.BLOCKS):
        scope = (("layer", "Sequential"), (str(index), "Block"))
        x = g.last
        stride_keyword = {"s": stride} if stride != 1 else {}
        g.add("Conv", c, 3, **stride_keyword, p=1, bias=False, scope=scope, attribute="conv1")
        g.add("BatchNorm", scope=scope, attribute="bn1")
        g.add("ReLU", scope=scope, attribute="relu")
        g.add("Conv", c, 3, p=1, bias=False, scope=scope, attribute="conv2")
        out = g.add("BatchNorm", scope=scope, attribute="bn2")
        identity = x
        if stride != 1 or c_in != c:
            shortcut = scope + (("downsample", "Sequential"),)
            g.add("Conv", c, 1, **stride_keyword, bias=False, inputs=(x,), scope=shortcut,
                  attribute="0")
            identity = g.add("BatchNorm", scope=shortcut, attribute="1")
        g.add("Add", inputs=(out, identity), scope=scope)
        g.add("ReLU", scope=scope, attribute="relu")
    g.add("AdaptiveAvgPool", 1, attribute="pool")
    g.add("Flatten")
    g.add("Linear", 10, attribute="fc")
    return g.graph((3, 16, 16))


def test_instances_of_a_block_class_become_definitions_with_parameters():
    text = imported(ResidualNet(), residual_graph())
    assert text.startswith("# imported from a test module by archdsl import\ninput 3x16x16\n")
    text = flat(text)
    # the residual branch both structures share is a definition of its own
    assert "def BlockBody(c, s=1) = [Conv(c, 3, s=s, p=1, bias=false) -> BatchNorm -> ReLU " \
           "-> Conv(c, 3, p=1, bias=false) -> BatchNorm]" in text
    assert "def Block(c) = [BlockBody(c) + Identity -> ReLU]" in text
    assert "def BlockDownsample(c, s=1) = [BlockBody(c, s) + [Conv(c, 1, s=s, bias=false) -> " \
           "BatchNorm] as downsample -> ReLU]" in text
    assert "[Block(8) -> BlockDownsample(16, 2) -> Block(16) -> BlockDownsample(32)] as " \
           "layer" in text


def unet_graph(widths) -> ImportedGraph:
    """As tests/test_zoo.py's UNet.forward calls its modules; the crop before each
    concatenation is the Concat's own (crop=true)."""
    g = Graph()

    def double(scope, c):
        for index in range(2):
            g.add("Conv", c, 3, scope=scope, attribute=str(2 * index))
            g.add("ReLU", scope=scope, attribute=str(2 * index + 1))
        return g.last

    skips = []
    for index, c in enumerate(widths):
        skips.append(double((("down", "ModuleList"), (str(index), "Sequential")), c))
        g.add("MaxPool", 2)
    double((("bottom", "Sequential"),), 2 * widths[-1])
    for index, (c, skip) in enumerate(zip(reversed(widths), reversed(skips))):
        place = (("up", "ModuleList"), (str(index), "ModuleList"))
        up = g.add("ConvTranspose", c, 2, s=2, scope=place, attribute="0")
        g.add("Concat", crop=True, inputs=(up, skip))
        double(place + (("1", "Sequential"),), c)
    g.add("Conv", 2, 1, attribute="out")
    return g.graph((1, 44, 44))


def test_long_skips_are_named_results():
    text = flat(imported(UNet(widths=(4, 8)), unet_graph((4, 8))))
    assert "[Conv(4, 3) -> ReLU]*2 as down0 " in text and "]*2 as down1 " in text
    assert "Concat(down1, crop=true)" in text and "Concat(down0, crop=true)" in text
    assert "Identity" not in text  # no branches: the skips are read by name


class DenseLayer(nn.Module):
    def __init__(self, c_in, growth):
        super().__init__()
        self.norm1, self.relu1 = nn.BatchNorm2d(c_in), nn.ReLU()
        self.conv1 = nn.Conv2d(c_in, 4 * growth, 1, bias=False)
        self.norm2, self.relu2 = nn.BatchNorm2d(4 * growth), nn.ReLU()
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, features):
        x = torch.cat(features, 1)
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.ModuleDict):
    def __init__(self, c_in, growth, layers):
        super().__init__({f"denselayer{i + 1}": DenseLayer(c_in + i * growth, growth)
                          for i in range(layers)})

    def forward(self, x):
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class DenseNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.block = DenseBlock(8, 4, 3)
        self.norm = nn.BatchNorm2d(20)

    def forward(self, x):
        return self.norm(self.block(self.conv0(x)))


def dense_graph() -> ImportedGraph:
    g = Graph()
    features = [g.add("Conv", 8, 3, p=1, bias=False, attribute="conv0")]
    block = (("block", "DenseBlock"),)
    for index in range(3):
        scope = block + ((f"denselayer{index + 1}", "DenseLayer"),)
        g.add("Concat", inputs=tuple(features), scope=scope)  # torch.cat of one: no layer
        g.add("BatchNorm", scope=scope, attribute="norm1")
        g.add("ReLU", scope=scope, attribute="relu1")
        g.add("Conv", 16, 1, bias=False, scope=scope, attribute="conv1")
        g.add("BatchNorm", scope=scope, attribute="norm2")
        g.add("ReLU", scope=scope, attribute="relu2")
        features.append(g.add("Conv", 4, 3, p=1, bias=False, scope=scope, attribute="conv2"))
    g.add("Concat", inputs=tuple(features), scope=block)
    g.add("BatchNorm", attribute="norm")
    return g.graph((3, 8, 8))


def test_growing_concatenations_are_nested_branches():
    text = flat(imported(DenseNet(), dense_graph()))
    # cat(x, a, b) is cat(cat(x, a), b): each layer adds its features to what came before
    assert "Identity | [BatchNorm -> ReLU -> Conv(16, 1, bias=false)" in text
    assert "DenseLayer*3 as block" in text or "]*3 as block" in text


class SqueezeExcitation(nn.Module):
    def __init__(self, c, squeeze):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.fc2 = nn.Conv2d(c, squeeze, 1), nn.Conv2d(squeeze, c, 1)
        self.relu, self.gate = nn.ReLU(), nn.Sigmoid()

    def forward(self, x):
        return self.gate(self.fc2(self.relu(self.fc1(self.avgpool(x))))) * x


def test_a_gate_multiplies_its_input():
    module = nn.Sequential(nn.Conv2d(3, 16, 3), SqueezeExcitation(16, 4), nn.Conv2d(16, 8, 1),
                           SqueezeExcitation(8, 2))
    g = Graph()
    for index, (c, squeeze) in enumerate(((16, 4), (8, 2))):
        g.add("Conv", c, 3 if index == 0 else 1, attribute=str(2 * index))
        x = g.last
        scope = ((str(2 * index + 1), "SqueezeExcitation"),)
        g.add("AdaptiveAvgPool", 1, scope=scope, attribute="avgpool")
        g.add("Conv", squeeze, 1, scope=scope, attribute="fc1")
        g.add("ReLU", scope=scope, attribute="relu")
        g.add("Conv", c, 1, scope=scope, attribute="fc2")
        gate = g.add("Sigmoid", scope=scope, attribute="gate")
        g.add("Multiply", inputs=(gate, x), scope=scope)
    text = flat(imported(module, g.graph((3, 10, 10))))
    # the gate's width is four times the squeeze in both: one parameter
    assert "def SqueezeExcitation(c) = [Identity * [AdaptiveAvgPool(1) -> Conv(c, 1) -> " \
           "ReLU -> Conv(c*4, 1) -> Sigmoid]]" in text
    assert "SqueezeExcitation(4) -> Conv(8, 1) -> SqueezeExcitation(2)" in text


def test_a_layer_whose_result_is_never_used_is_named():
    g = Graph()
    x = g.add("Conv", 4, 3, attribute="conv")
    g.add("ReLU", attribute="unused")
    g.add("Flatten", inputs=(x,))
    with pytest.raises(ArchDSLError, match=r"unused \(ReLU\) \(never used\)"):
        write_spec(g.graph((1, 8, 8)))
