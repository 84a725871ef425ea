"""`archdsl explain`: formulas with their numbers, against the tutorial and against torch.

The tutorial gives the receptive fields of the simple CNN (3, 4, 8, 10 after each conv and pool,
jumps 1, 2, 2, 4) and the worked formulas; torch gives the output sizes, parameter counts and
receptive fields (measured by back-propagating one output to the input) that each formula's
arithmetic must reproduce.
"""
import json
import math
import re

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from archdsl import analyze, parse, read_spec
from archdsl.cli import app
from archdsl.explain import explain
from conftest import ROOT, SPECS

SIMPLE = ROOT / "specs/simple_cnn.spec"
runner = CliRunner()


def explained(text: str, input=None, layer=None):
    return {e.name: e for e in explain(analyze(parse(text), input), layer).layers}


def evaluate(formula: str) -> float:
    """The arithmetic of a formula as printed, e.g. `⌊(28 + 2·1 − 3)/1⌋ + 1` or
    `16 × (1·3·3) + 16`, computed by Python."""
    python = (formula.replace("⌊", "math.floor(").replace("⌋", ")").replace("⌈", "math.ceil(")
              .replace("⌉", ")").replace("·", "*").replace("×", "*").replace("−", "-"))
    return eval(python, {"math": math})


def sides(line: str) -> tuple[str, int]:
    """`H_out = EXPR = 28 (note)` -> (EXPR, 28)."""
    match = re.fullmatch(r"\w+ = (.+) = ([\d,]+)( \(.*\))?", line)
    assert match, line
    return match[1], int(match[2].replace(",", ""))


# --- the tutorial -------------------------------------------------------------------------

def test_receptive_fields_of_the_tutorial_cnn():
    layers = explained(SIMPLE.read_text())
    windows = [e for e in layers.values() if e.type in ("Conv", "MaxPool")]
    assert [e.rf for e in windows] == [(3, 3), (4, 4), (8, 8), (10, 10)]
    assert [e.jump for e in windows] == [(1, 1), (2, 2), (2, 2), (4, 4)]
    assert layers["maxpool2"].rf_formula == "rf = 8 + (2−1)·2 = 10, jump = 2·2 = 4"
    assert layers["flatten"].rf is None and layers["linear1"].rf is None


def test_vgg16_receptive_field():
    # Araujo, Norris and Sim, "Computing Receptive Fields of Convolutional Neural Networks"
    # (Distill, 2019), table of architectures: VGG-16's last pooling layer sees 212 pixels.
    stage = "[Conv({c}, 3, p=1) -> ReLU]*{n} -> MaxPool(2)"
    text = " -> ".join(stage.format(c=c, n=n) for c, n in
                       [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)])
    layers = explained(text, "3x224x224")
    assert layers["maxpool5"].rf == (212, 212) and layers["maxpool5"].jump == (32, 32)


def test_worked_formulas_of_the_tutorial_cnn():
    layers = explained(SIMPLE.read_text())
    conv1 = layers["conv1"]
    assert conv1.shape == ("H_out = ⌊(28 + 2·1 − 3)/1⌋ + 1 = 28",
                           "W_out = ⌊(28 + 2·1 − 3)/1⌋ + 1 = 28")
    assert conv1.params_formula == "16 × (1·3·3) + 16 = 160"
    assert conv1.macs_formula == "16·28·28 × (1·3·3) = 112,896"
    assert layers["maxpool1"].shape[0] == "H_out = ⌊(28 + 2·0 − 2)/2⌋ + 1 = 14"
    assert layers["conv2"].params_formula == "32 × (16·3·3) + 32 = 4,640"
    assert layers["flatten"].shape == ("flattens 32×7×7 into 1568",)
    assert layers["linear1"].params_formula == "128 × 1568 + 128 = 200,832"
    assert layers["linear1"].macs_formula == "1568 × 128 = 200,704"
    assert layers["relu1"].shape == ("shape unchanged",)
    assert layers["relu1"].params_formula == "0"


def test_dilation_groups_batchnorm_and_no_bias():
    layers = explained("Conv(8, 3, d=2, p=2, g=2, bias=false) -> BatchNorm", "4x10x10")
    assert layers["conv"].shape[0] == "H_out = ⌊(10 + 2·2 − 2·(3−1) − 1)/1⌋ + 1 = 10"
    assert layers["conv"].params_formula == "8 × (4/2 · 3·3) = 144"
    assert layers["batchnorm"].params_formula == "2 × 8 = 16"
    assert layers["batchnorm"].buffers_formula == "2 × 8 + 1 = 17"  # + num_batches_tracked


def test_ceil_mode_shows_pytorchs_drop_rule():
    layers = explained("MaxPool(2, s=2, p=1, ceil_mode=true) -> MaxPool(3, s=2, ceil_mode=true)",
                       "1x5x5")
    first, second = layers["maxpool1"].shape[0], layers["maxpool2"].shape[0]
    assert first.startswith("H_out = ⌈(5 + 2·1 − 2)/2⌉ + 1 − 1 = 3 (PyTorch drops")
    assert second == "H_out = ⌈(3 + 2·0 − 3)/2⌉ + 1 = 1"  # nothing to drop


def test_other_layers_say_what_they_do():
    layers = explained("[Conv(4, 3, p=1)] + Identity -> [Conv(2, 1)] | [Conv(3, 1)] "
                       "-> Upsample(2) -> GlobalAvgPool", "4x6x6")
    assert layers["add"].shape == ("adds 2 inputs of shape 4×6×6 element by element: "
                                   "shape unchanged",)
    assert layers["add"].rf_formula == "largest over 2 inputs: rf max(3, 1) = 3, jump max(1, 1) = 1"
    assert layers["concat"].shape == ("concatenates channels: 2 + 3 = 5, each 6×6",)
    assert layers["upsample"].shape == ("H_out = 6·2 = 12", "W_out = 6·2 = 12")
    assert layers["globalavgpool"].shape == ("averages each of the 5 channels over its 12×12 "
                                             "positions: 5×12×12 → 5",)


def test_unet_crop_and_transposed_convolution():
    layers = explained((ROOT / "specs/zoo/unet.spec").read_text(), layer="up1")
    assert layers["up1.convtranspose"].shape[0] == \
        "H_out = (28 − 1)·2 − 2·0 + 1·(2−1) + 0 + 1 = 56"
    assert layers["up1.convtranspose"].params_formula == "1024 × (512·2·2) + 512 = 2,097,664"
    assert layers["up1.concat"].shape == (
        "concatenates channels: 512 + 512 = 1024, each 56×56",
        "center-crops 512×64×64 to 512×56×56 from offset 4×4")
    assert all(name.startswith("up1.") for name in layers)


# --- against torch -----------------------------------------------------------------------

WINDOWS = [
    ("Conv(8, 3, p=1)", (1, 28, 28)), ("Conv(8, 5, s=2, p=2)", (3, 27, 27)),
    ("Conv(8, 3, s=3, p=2, d=2, bias=false)", (2, 20, 20)), ("Conv(12, 3, p=1, g=4)", (4, 8, 9)),
    ("Conv(8, (7, 1), s=(2, 1), p=(3, 0))", (4, 17, 12)), ("Conv(4, 3, p='same', d=2)", (2, 9, 9)),
    ("Conv(4, 3, s=2)", (2, 11)), ("Conv(4, 3, p=1)", (2, 6, 7, 8)),
    ("MaxPool(2)", (1, 7, 7)), ("MaxPool(3, s=2, p=1)", (1, 112, 112)),
    ("MaxPool(2, s=2, p=1, ceil_mode=true)", (1, 5, 5)),
    ("MaxPool(3, s=2, ceil_mode=true)", (1, 6, 8)),
    ("MaxPool(3, s=2, d=2, ceil_mode=true)", (1, 10, 11)),
    ("AvgPool(3, s=2, p=1, ceil_mode=true)", (1, 6, 6)),
    ("AvgPool(2, s=3, ceil_mode=true)", (1, 7)),
    ("ConvTranspose(4, 3, s=2, p=1, output_padding=1)", (4, 7, 7)),
    ("ConvTranspose(8, 3, s=2, d=3, output_padding=2, p=2)", (4, 5, 5)),
    ("ConvTranspose(6, (2, 3), s=(2, 1), p=(0, 1), g=2)", (4, 5, 7)),
    ("Upsample((2, 3))", (1, 4, 5)), ("Linear(7)", (12,)), ("BatchNorm", (6, 4, 4)),
    ("Linear(12, pointwise=true)", (8, 5, 6)), ("Linear(3, bias=false, pointwise=true)", (4, 7)),
    ("LayerNorm", (6, 4, 4)), ("GroupNorm(2)", (6, 4, 4)), ("LayerScale", (6, 4, 4)),
    ("PReLU(per_channel=true)", (6, 4, 4)), ("Chunk(1)", (5, 4, 4)),
]


@pytest.mark.parametrize("call, shape", WINDOWS, ids=[c for c, _ in WINDOWS])
def test_formulas_compute_what_torch_gives(call, shape):
    analysis = analyze(parse(call), shape)
    (row,), (node,) = analysis.rows, analysis.nodes
    (explanation,) = explain(analysis).layers
    module = node.layer.build(row.facts)
    out = module(torch.zeros(1, *shape))
    spatial = [line for line in explanation.shape if "_out = " in line]
    if spatial:
        assert len(spatial) == len(shape) - 1
        for line, size in zip(spatial, out.shape[2:]):
            expression, result = sides(line)
            assert result == size, line
            if "same" not in line:
                assert evaluate(expression) == size, line
    expression, count = sides("x = " + explanation.params_formula) if "=" in \
        explanation.params_formula else (explanation.params_formula, None)
    torch_count = sum(p.numel() for p in module.parameters())
    assert evaluate(expression) == torch_count
    assert count in (None, torch_count)
    if row.macs:
        expression, macs = sides("x = " + explanation.macs_formula)
        assert evaluate(expression) == macs == row.macs


def _measured_field(model: nn.Module, shape, position: tuple[int, int]):
    """Back-propagate one output position to the input: the extent of the input pixels that
    reach it (rows, columns) and its top-left pixel."""
    x = torch.ones(1, *shape, requires_grad=True)
    out = model(x)
    (grad,) = torch.autograd.grad(out[0, :, position[0], position[1]].sum(), x)
    hit = grad[0].abs().sum(0) != 0
    rows, cols = hit.any(1).nonzero().flatten(), hit.any(0).nonzero().flatten()
    return (int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)), (int(rows[0]), int(cols[0]))


@pytest.mark.parametrize("text, shape", [
    (SIMPLE.read_text(), (1, 64, 64)),
    ("Conv(4, 3, d=2, p=2) -> Conv(4, 3, s=2) -> MaxPool(3, s=2) -> Conv(4, (5, 3), s=(1, 2))",
     (2, 96, 96)),
])
def test_receptive_fields_match_torch(text, shape):
    """Ones for weights, zeros for biases and average pooling for max pooling (the same window,
    with a gradient to every input) make every input pixel in a receptive field count."""
    analysis = analyze(parse(text), shape)
    explanations = explain(analysis).layers
    modules = []
    for row, node, explanation in zip(analysis.rows, analysis.nodes, explanations):
        if row.rf is None:
            break
        module = node.layer.build(row.facts)
        if isinstance(module, nn.MaxPool2d):
            module = nn.AvgPool2d(module.kernel_size, module.stride, module.padding,
                                  module.ceil_mode)
        for name, parameter in module.named_parameters():
            nn.init.constant_(parameter, 1.0 if name == "weight" else 0.0)
        modules.append(module)
        model = nn.Sequential(*modules)
        middle = (row.output[1] // 2, row.output[2] // 2)
        extent, corner = _measured_field(model, shape, middle)
        _, next_corner = _measured_field(model, shape, (middle[0] + 1, middle[1] + 1))
        assert explanation.rf == extent, row.name
        assert explanation.jump == (next_corner[0] - corner[0], next_corner[1] - corner[1])


# --- what each layer keeps for backward ---------------------------------------------------

def test_what_each_layer_keeps_adds_up_to_what_autograd_saves():
    from archdsl.compiler import build
    from saved_tensors import measured_bytes
    analysis = analyze(parse(SIMPLE.read_text()))
    layers = {e.name: e for e in explain(analysis).layers}
    # one example: a training step's input needs no grad; each storage counted by one row
    assert sum(e.saved_bytes for e in layers.values()) == \
        measured_bytes(build(analysis), torch.randn(1, *analysis.input))
    # the pool keeps the ReLU's output, which the ReLU counts, and its own int64 indices
    assert layers["maxpool1"].saved == (("input", (16, 28, 28), 16 * 28 * 28 * 4, "relu1"),
                                        ("indices", (16, 14, 14), 16 * 14 * 14 * 8, "maxpool1"))
    assert layers["maxpool1"].saved_bytes == 16 * 14 * 14 * 8
    assert layers["flatten"].saved == ()


# --- the command -------------------------------------------------------------------------

def test_explain_command_table():
    result = runner.invoke(app, ["explain", str(SIMPLE)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "H_out = ⌊(28 + 2·1 − 3)/1⌋ + 1 = 28" in out
    assert "16 × (1·3·3) + 16 = 160" in out and "128 × 1568 + 128 = 200,832" in out
    assert "rf = 8 + (2−1)·2 = 10, jump = 2·2 = 4" in out
    assert "  backward input 16×28×28, kept by relu1 already\n" \
           "           indices 16×14×14, 25,088 B\n" in out


def test_explain_command_json_and_one_layer():
    result = runner.invoke(app, ["explain", str(SIMPLE), "--format", "json"])
    data = json.loads(result.stdout)
    assert data["schema"] == "archdsl.explain/1"
    fields = [(e["rf"], e["jump"]) for e in data["layers"] if e["type"] in ("Conv", "MaxPool")]
    assert fields == [([3, 3], [1, 1]), ([4, 4], [2, 2]), ([8, 8], [2, 2]), ([10, 10], [4, 4])]
    first = data["layers"][0]
    assert first["shape"][0] == "H_out = ⌊(28 + 2·1 − 3)/1⌋ + 1 = 28"
    assert first["params"] == 160 and first["params_formula"] == "16 × (1·3·3) + 16 = 160"
    one = runner.invoke(app, ["explain", str(SIMPLE), "--layer", "linear1", "-f", "json"])
    (layer,) = json.loads(one.stdout)["layers"]
    assert layer["name"] == "linear1" and layer["rf"] is None and layer["rf_formula"] is None
    assert layer["saved"] == [{"tensor": "input", "shape": [1568], "bytes": 1568 * 4,
                               "counted_by": "linear1"}]  # maxpool2's output, a view
    markdown = runner.invoke(app, ["explain", str(SIMPLE), "-f", "markdown"])
    assert markdown.exit_code == 0 and "| `conv1`" in markdown.stdout


def test_explain_unknown_layer_exits_2_with_a_suggestion():
    result = runner.invoke(app, ["explain", str(SIMPLE), "--layer", "conv3"])
    assert result.exit_code == 2
    assert "did you mean 'conv2'?" in result.output


def test_an_unknown_scope_is_matched_against_scopes():
    analysis = analyze(read_spec(str(ROOT / "specs/zoo/resnet18.spec")))
    with pytest.raises(ValueError, match=r"'layer9' \(did you mean 'layer\d'\?\)"):
        explain(analysis, "layer9")


def test_explain_bad_spec_exits_2_with_position():
    result = runner.invoke(app, ["explain", "-", "--input", "1x28x28"],
                           input="Conv(8, 3) -> Lin(3)")
    assert result.exit_code == 2
    assert "<stdin>:1:15: unknown layer 'Lin'" in result.output


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_shipped_spec_explains(path):
    analysis = analyze(parse(path.read_text()))
    explanation = explain(analysis)
    assert [e.name for e in explanation.layers] == [r.name for r in analysis.rows]
    for e, row in zip(explanation.layers, analysis.rows):
        assert (e.rf, e.jump) == (row.rf or None, row.jump or None)
        total = e.params_formula.rsplit(" = ", 1)[-1]
        assert int(total.replace(",", "")) == row.params, e.name
        assert e.macs_formula.endswith(f"{row.macs:,}"), e.name
