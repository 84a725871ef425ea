"""codegen.python_source: every shipped spec as a standalone PyTorch file that ruff passes,
that imports only torch, whose class takes the compiled Network's state_dict strictly and gives
its outputs; definitions as classes whose parameters reproduce every instance, with the
fallbacks where they cannot."""
import ast
import re
import subprocess
import sys

import pytest
import torch

import archdsl
from archdsl.codegen import default_class_name, python_source
from archdsl.compiler import build
from archdsl.layers import layer_names
from conftest import SPECS

# The smallest inputs the specs take (archdsl sweep): the forward passes stay cheap on 2 cores.
SMALL = {"unet": "1x188x188", "alexnet": "3x63x63"}
IMPORTS = {"collections", "torch", "torchvision.ops"}


def small_input(spec):
    if spec.stem in SMALL:
        return SMALL[spec.stem]
    shape = archdsl.parse(spec.read_text(), str(spec)).input.shape
    return "x".join(map(str, (shape[0], 32, 32))) if len(shape) == 3 else None


def exported(text, name="<spec>", input=None):
    """(the compiled network, the exported class's instance with its state_dict loaded
    strictly, the source), both in eval mode, with BatchNorm statistics that are not the
    identity."""
    analysis = archdsl.analyze(archdsl.parse(text, name), input)
    source = python_source(analysis)
    torch.manual_seed(0)
    with torch.device("meta"):  # VGG's 100M weights: drawn below, faster than nn.init's
        network = build(analysis)
    network.to_empty(device="cpu")
    for tensor in network.parameters():
        fan_in = tensor[0].numel() if tensor.dim() > 1 else 100
        tensor.data.normal_(0, fan_in ** -0.5)
    for key, buffer in network.named_buffers():
        if key.endswith("running_mean"):
            buffer.normal_(0, 0.1)
        elif key.endswith("running_var"):
            buffer.uniform_(0.5, 2.0)
        else:
            buffer.zero_()
    namespace = {}
    exec(compile(source, "exported.py", "exec"), namespace)
    with torch.device("meta"):  # the weights come from the network: no need to initialize
        model = namespace[default_class_name(name)]()
    model.load_state_dict(network.state_dict(), strict=True, assign=True)
    return network.eval(), model.eval(), source


def assert_same_outputs(network, model, batch=2):
    x = torch.randn(batch, *network.input_shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = network(x), model(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """Every shipped spec exported at its own input: name -> path."""
    folder = tmp_path_factory.mktemp("exported")
    paths = {}
    for spec in SPECS:
        analysis = archdsl.analyze(archdsl.parse(spec.read_text(), str(spec)))
        paths[spec.stem] = folder / f"{spec.stem}.py"
        paths[spec.stem].write_text(python_source(analysis))
    return paths


def test_every_exported_file_passes_ruff(shipped):
    folder = next(iter(shipped.values())).parent
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--select",
                             "E,F,W,B", "--line-length", "100", str(folder)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(shipped) == len(SPECS)


def test_every_exported_file_imports_only_torch(shipped):
    for name, path in shipped.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add(node.module)
        assert imported <= IMPORTS, (name, imported)
        assert "torch" in imported or "torch" in {i.split(".")[0] for i in imported}


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_every_shipped_spec_loads_the_state_dict_and_gives_the_outputs(spec):
    network, model, _ = exported(spec.read_text(), str(spec), small_input(spec))
    # in the same order too, which loading a foreign state_dict by order relies on
    assert list(model.state_dict()) == list(network.state_dict())
    assert_same_outputs(network, model)


def test_every_module_line_says_its_shape(shipped):
    for name, path in shipped.items():
        lines = path.read_text().splitlines()
        for index, line in enumerate(lines):
            if re.match(r"\s+(self\.\w+ = (?!nn\.Module\(\)|nn\.Parameter)|\(\")", line) and \
                    not line.rstrip().endswith("(["):
                commented = "  # " in line or lines[index - 1].strip().startswith("# ")
                assert commented, f"{name}.py:{index + 1}: {line}"


def test_the_file_runs_without_archdsl(shipped):
    # ConvNeXt's file uses the helper modules PyTorch lacks and torchvision's StochasticDepth.
    code = ("import sys; sys.modules['archdsl'] = None\n"
            f"exec(open({str(shipped['convnext_tiny'])!r}).read())\n"
            "import torch\n"
            "with torch.device('meta'):\n"
            "    ConvnextTiny()\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_resnet50_reads_as_a_person_writes_it(shipped):
    text = shipped["resnet50"].read_text()
    assert "class Body(nn.Module):\n    \"\"\"The spec's def Body(c, s).\"\"\"" in text
    assert "    def __init__(self, in_channels, c, s):\n" in text
    assert "self.conv3 = nn.Conv2d(c, c * 4, 1, bias=False)  # c*4×H/s×W/s" in text
    assert "self.batchnorm3 = nn.BatchNorm2d(c * 4)" in text
    bottleneck = text[text.index("class Bottleneck"):text.index("class Resnet50")]
    assert "def __init__(self, in_channels, c):" in bottleneck
    assert "self.body = Body(in_channels, c, 1)" in bottleneck
    assert "return self.relu(self.body(x) + x)" in bottleneck
    down = text[text.index("class Down"):text.index("class Bottleneck")]
    assert "return self.relu(self.body(x) + self.shortcut(x))" in down
    assert '("conv", nn.Conv2d(in_channels, c * 4, 1, stride=s, bias=False)),' in down
    top = text[text.index("class Resnet50"):]
    assert '("down", Down(64, 64, 1)),  # 256×56×56' in top
    assert '("bottleneck5", Bottleneck(1024, 256)),  # 1024×14×14' in top
    assert "x = self.layer1(x)  # 256×56×56" in top
    # about as long as the torchvision source it stands for, far shorter than the rows
    assert len(text.splitlines()) < 120


def test_definition_defaults_are_the_classes(shipped):
    # def ConvBN(c, k, s=1, g=1): the call ConvBN(x, 1) leaves s and g out, as the spec does
    text = shipped["efficientnet_b0"].read_text()
    assert '"""The spec\'s def ConvBN(c, k, s=1, g=1)."""' in text
    assert "    def __init__(self, in_channels, c, k, s=1, g=1):\n" in text
    assert "self.convbn1 = ConvBN(in_channels, x_, 1)  # x_×H×W" in text  # MBConv's expansion
    assert "self.convbn = ConvBN(c, c, k, s, c)" in text  # Depthwise's, with every argument


def test_a_default_computed_from_other_parameters():
    # S calls B(c): B's d is its default c*2, in S's words
    network, model, source = exported("input 3x8x8\n"
                                      "def B(c, d=c*2) = [Conv(d, 1) -> Conv(c, 1)]\n"
                                      "def S(c) = [B(c) -> Conv(c, 1)]\n"
                                      "B(4) -> B(8, d=3) -> S(4) -> S(6)")
    assert "self.b = B(in_channels, c, c * 2)" in source
    assert "self.b2 = B(4, 8, 3)" in source and "self.s2 = S(4, 6)" in source
    assert_same_outputs(network, model)


def test_a_value_no_expression_gives_becomes_a_parameter():
    # ceil(C/3) channels after the chunk are no expression over B's parameters: the conv's
    # input channels are a parameter of their own, 4 in one instance and 8 in the other.
    network, model, source = exported("input 3x8x8\n"
                                      "def B(c) = [Chunk(0, chunks=3) -> Conv(c, 1)]\n"
                                      "Conv(12, 1) -> B(4) -> Conv(24, 1) -> B(4)")
    assert "def __init__(self, c, in_channels_):" in source
    assert "self.b1 = B(4, 4)" in source and "self.b2 = B(4, 8)" in source
    assert_same_outputs(network, model)


def test_instances_of_another_structure_get_a_class_of_their_own():
    network, model, source = exported("input 3x8x8\n"
                                      "def S(c, n) = [[Conv(c, 3, p=1) -> ReLU]*n -> MaxPool(2)]\n"
                                      "S(4, 1) -> S(8, 2) -> S(8, 2)")
    assert "class S(nn.Module):" in source and "class S2(nn.Module):" in source
    assert '"""The spec\'s def S(c, n) with n=2."""' in source
    assert "self.s2 = S2(4, 8)" in source and "self.s3 = S2(8, 8)" in source
    assert_same_outputs(network, model)


def test_a_definition_parameter_used_in_arithmetic():
    network, model, source = exported("input 4x8x8\n"
                                      "def B(c, k) = [Conv(c*2, k, p=k//2) -> Conv(c, 1)]\n"
                                      "B(4, 3) -> B(8, 5) -> B(2, 1)")
    assert "nn.Conv2d(in_channels, c * 2, k, padding=k // 2)" in source
    assert "nn.Conv2d(c * 2, c, 1)" in source
    assert "self.b2 = B(4, 8, 5)" in source
    assert_same_outputs(network, model)


def test_long_skips_are_arguments_of_forward():
    network, model, source = exported(
        "input 1x16x16\n"
        "def Up(c, skip) = [ConvTranspose(c, 2, s=2) -> Concat(skip, crop=true) -> Conv(c, 1)]\n"
        "Conv(4, 3, p=1) as e1 -> MaxPool(2) -> Conv(8, 3, p=1) as e2 -> MaxPool(2)\n"
        "  -> Conv(16, 1) -> Up(8, e2) -> Up(4, e1)")
    assert "def forward(self, x, skip):" in source
    assert "e1 = self.e1(x)" in source and "return self.up2(x, e1)" in source
    assert_same_outputs(network, model)


def test_cropped_concat_slices_the_skip(shipped):
    # U-Net's first up-step crops enc4's 64×64 to the 56×56 of the up-convolution
    text = shipped["unet"].read_text()
    assert "torch.cat([self.convtranspose(x), skip[..., 4:60, 4:60]], dim=1)" in text
    assert "x = self.up1(x, enc4)  # 512×52×52" in text


def test_names_that_python_or_nn_module_has_taken():
    # `double` and `train` are nn.Module methods, `lambda` a keyword: reached via _modules.
    network, model, source = exported(
        "input 2x16\n"
        "Conv(4, 3, p=1, frozen=true) as train -> [Conv(4, 1) as double] + Identity\n"
        "  -> [ReLU] * [Sigmoid] -> Flatten -> Linear(3) as lambda")
    assert 'self._modules["double"]' in source and 'self._modules["lambda"](x)' in source
    assert not model._modules["train"].weight.requires_grad
    assert_same_outputs(network, model)


def test_a_result_read_from_inside_a_group_opens_the_group():
    # `a` is read after its group ends: the group is a container, its layers reached through it,
    # made where the compiled network makes it, so the state_dicts list their tensors alike.
    network, model, source = exported("input 1x8x8\n"
                                      "Conv(2, 1) -> [Conv(4, 3, p=1) as a -> ReLU] -> Concat(a)\n"
                                      "  -> Conv(2, 1)")
    assert "self.block = nn.Module()" in source and "x = self.block.a(x)" in source
    assert list(model.state_dict()) == list(network.state_dict())
    assert_same_outputs(network, model)


def test_writing_the_source_imports_no_torch():
    code = ("import sys, archdsl\n"
            "from archdsl.codegen import python_source\n"
            f"python_source(archdsl.analyze(open({str(SPECS[-1])!r}).read()))\n"
            "assert 'torch' not in sys.modules, 'writing the source imported torch'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_merges_of_three_branches_and_nested_products():
    network, model, source = exported(
        "input 3x8x8\n"
        "Conv(4, 1) -> [Conv(4, 1)] | Identity | [Conv(2, 3, p=1) -> ReLU]\n"
        "  -> [Identity * [AdaptiveAvgPool(1) -> Conv(10, 1) -> Sigmoid]] + Identity\n"
        "  -> GlobalAvgPool -> Linear(5)")
    assert "x = torch.cat([self.branch1(x), x, self.branch2(x)], dim=1)  # 10×8×8" in source
    assert "x = self.globalavgpool(self.branch3(x) + x)  # 10" in source
    assert "return x * self.branch(x)  # 10×8×8" in source
    assert_same_outputs(network, model)


def test_flat_inputs():
    network, model, _ = exported("input 784\n"
                                 "Linear(64) -> LayerNorm -> GELU -> Dropout(0.1) -> Linear(10)")
    assert_same_outputs(network, model)


# With the shipped specs, these write every registered layer, most with arguments that differ
# from PyTorch's defaults, at 1, 2 and 3 spatial axes.
EVERY_LAYER = [
    """input 3x16x16
Conv(8, 3, p=(1, 1)) -> GroupNorm(2, eps=0.001) -> PReLU(per_channel=true, init=0.1)
  -> Upsample(2, mode=bilinear) -> InstanceNorm(affine=true) -> LeakyReLU(0.2) -> ELU(alpha=0.5)
  -> Hardtanh(min=-2.0, max=2.0) -> ReLU6 -> Mish -> Tanh -> SiLU -> Hardswish -> Hardsigmoid
  -> AvgPool(2, s=1, p=1, count_include_pad=false, ceil_mode=true) -> MaxPool(3, s=2, p=1)
  -> ConvTranspose(4, 3, s=2, p=1, output_padding=1) -> ChannelShuffle(2)
  -> GELU(approximate=tanh) -> Dropout(0.3) -> Softmax(dim=1)""",
    """input 2x8x8x8
Conv(4, 3, p=same, bias=false) -> BatchNorm(momentum=0.2, eps=0.001) -> Upsample((1, 2, 2))
  -> AvgPool(2) -> LayerNorm(eps=1e-6, bias=false) -> LayerScale(0.5) * [Linear(4, pointwise=true)]
  -> StochasticDepth(0.1, mode=batch) -> GlobalAvgPool -> Linear(3, bias=false) -> Sigmoid""",
    """input 2x32
Conv(4, 5, s=2) -> BatchNorm -> MaxPool(2) -> Chunk(1, chunks=2) -> Flatten -> Linear(3)""",
]


@pytest.mark.parametrize("text", EVERY_LAYER, ids=["2d", "3d", "1d"])
def test_layers_with_their_arguments(text):
    network, model, _ = exported(text)
    assert_same_outputs(network, model)


def test_every_registered_layer_is_exported_by_some_test():
    written = set()
    for text in [spec.read_text() for spec in SPECS] + EVERY_LAYER:
        written |= {row.type for row in archdsl.analyze(text).rows}
    assert written == set(layer_names())


def test_class_names():
    assert default_class_name("specs/simple_cnn.spec") == "SimpleCnn"
    assert default_class_name("specs/zoo/resnet50.spec") == "Resnet50"
    assert default_class_name("runs/quick/spec.spec") == "Quick"
    assert default_class_name("<stdin>") == "Network"
    assert default_class_name("3d.spec") == "Network3d"
