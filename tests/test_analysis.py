"""The analyzer against the tutorial's numbers; totals against their rows."""
import math

import pytest

from archdsl import analyze, parse
from archdsl.errors import InputShapeError, ShapeError
from conftest import ROOT, SPECS

SIMPLE = (ROOT / "specs/simple_cnn.spec").read_text()
ONE_LINER = "[Conv(16,3,p=1) -> ReLU -> MaxPool(2)]*2 -> Flatten -> Linear(10)"


def test_simple_cnn_matches_the_tutorial():
    analysis = analyze(parse(SIMPLE))
    shapes = [r.output for r in analysis.rows if r.type != "ReLU"]
    assert shapes == [(16, 28, 28), (16, 14, 14), (32, 14, 14), (32, 7, 7), (1568,), (128,), (10,)]
    assert analysis.totals.params == 206_922
    assert analysis.totals.macs == 1_218_048
    conv_weights = sum(r.weights for r in analysis.rows if r.type == "Conv")
    assert conv_weights == 4_752


def test_one_liner_with_input_option():
    analysis = analyze(parse(ONE_LINER), input="1x28x28")
    assert analysis.totals.params == 10_330
    assert [r.name for r in analysis.rows][:4] == ["block1.conv", "block1.relu", "block1.maxpool",
                                                   "block2.conv"]


def test_input_option_overrides_the_spec():
    assert analyze(parse(SIMPLE), input=(1, 56, 56)).rows[6].output == (32 * 14 * 14,)


def test_missing_input_is_an_error():
    with pytest.raises(InputShapeError, match="no input shape"):
        analyze(parse(ONE_LINER))


def test_shape_error_points_at_the_layer():
    with pytest.raises(ShapeError) as caught:
        analyze(parse("input 1x28x28\nConv(8, 3) ->\n  Linear(10)"))
    assert (caught.value.span.line, caught.value.span.column) == (3, 3)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_totals_are_the_sums_of_the_rows(path):
    analysis = analyze(parse(path.read_text()), batch=3)
    rows, totals = analysis.rows, analysis.totals
    for field in ("params", "weights", "biases", "trainable", "buffers", "macs"):
        assert getattr(totals, field) == sum(getattr(r, field) for r in rows), field
    assert totals.params == totals.weights + totals.biases == totals.trainable + totals.non_trainable
    assert totals.param_bytes == 4 * totals.params
    assert totals.activation_bytes == 3 * 4 * sum(math.prod(r.output) for r in rows)
    outputs = {"input": analysis.input, **{r.name: r.output for r in rows}}
    assert all(r.input_shapes == tuple(outputs[i] for i in r.inputs) for r in rows)


def test_receptive_field_and_jump_of_the_tutorial_cnn():
    rows = analyze(parse(SIMPLE)).rows
    assert [r.rf[0] for r in rows[:6]] == [3, 3, 4, 8, 8, 10]
    assert [r.jump[0] for r in rows[:6]] == [1, 1, 2, 2, 2, 4]
    assert rows[6].rf is None  # after Flatten every output sees the whole image


def test_frozen_layers_are_non_trainable():
    totals = analyze("input 1x8x8\nConv(4, 3, frozen=true) -> Flatten -> Linear(2)").totals
    assert totals.non_trainable == 4 * 9 + 4
    assert totals.trainable == totals.params - 40


def test_batchnorm_buffers_and_depth():
    analysis = analyze("input 3x8x8\nConv(4, 3, bias=false) -> BatchNorm -> ReLU -> "
                       "GlobalAvgPool -> Linear(2)")
    # running_mean, running_var (4 each) and num_batches_tracked (1), as torch counts buffers
    assert analysis.totals.buffers == 9
    assert analysis.totals.depth == 2
    assert analysis.output == (2,)


def test_a_shape_error_in_a_repeat_names_the_repetition():
    with pytest.raises(ShapeError, match="output would be 0×0") as caught:
        analyze("input 1x28x28\n[Conv(16, 3) -> MaxPool(2)]*4 -> Flatten -> Linear(10)")
    # 28 -> 26 -> 13 -> 11 -> 5 -> 3 -> 1: the fourth Conv gets 1×1
    assert (caught.value.span.line, caught.value.span.column) == (2, 2)
    assert caught.value.notes == ["in layer block4.conv"]


def test_a_shape_error_in_a_definition_names_the_layer_and_the_calls():
    text = ("input 1x28x28\n"
            "def Block(c) = [Conv(c, 3) -> MaxPool(2)]\n"
            "def Stage(c) = [Block(c) -> Block(c*2)]\n"
            "Stage(8) -> Stage(32) -> Flatten -> Linear(10)")
    with pytest.raises(ShapeError) as caught:
        analyze(text)
    assert caught.value.notes == ["in layer stage2.block2.conv",
                                  "expanded from Block(c*2) at 3:29",
                                  "expanded from Stage(32) at 4:13"]


def test_a_layer_written_once_needs_no_note():
    with pytest.raises(ShapeError) as caught:
        analyze("input 1x2x2\nConv(4, 3)")
    assert caught.value.notes == []


def test_the_layer_says_which_parameters_are_biases(monkeypatch):
    """Row.weights and Row.biases follow the layer class's bias_parameters, not the names."""
    from archdsl.layers import layer_class
    text = "input 5\nLinear(3) -> BatchNorm"
    assert [(r.weights, r.biases) for r in analyze(parse(text)).rows] == [(15, 3), (3, 3)]
    monkeypatch.setattr(layer_class("Linear"), "bias_parameters", ())
    monkeypatch.setattr(layer_class("BatchNorm"), "bias_parameters", ("weight", "bias"))
    assert [(r.weights, r.biases) for r in analyze(parse(text)).rows] == [(18, 0), (0, 6)]


def test_each_row_is_resolved_once(monkeypatch):
    """analyze resolves each row's facts once; explain, draw and the compiler read them."""
    from archdsl.compiler import build
    from archdsl.draw import diagram
    from archdsl.explain import explain
    from archdsl.layers import layer_class
    calls = []
    for name in ("Conv", "MaxPool", "ReLU", "Linear", "Flatten", "Add"):  # leaves: one each
        cls = layer_class(name)

        def counted(self, *shapes, resolve=cls.resolve):
            calls.append(self.dsl_name)
            return resolve(self, *shapes)
        monkeypatch.setattr(cls, "resolve", counted)
    analysis = analyze(parse("input 1x8x8\n[Conv(4, 3, p=1) -> ReLU] + Conv(4, 1) -> "
                             "MaxPool(2) -> Flatten -> Linear(3)"))
    explain(analysis)
    diagram(analysis)
    build(analysis)
    assert calls == [row.type for row in analysis.rows]


def test_a_layer_scale_no_product_multiplies_by_is_warned():
    alone = analyze("input 8x8x8\nConv(8, 3, p=1) -> LayerScale -> ReLU")
    (warning,) = alone.warnings
    assert "LayerScale's output is the factor alone (8×1×1)" in warning.message
    assert "LayerScale(…) * [block]" in warning.hint
    assert (warning.span.line, warning.span.column) == (2, 20)
    assert analyze("input 8x8x8\nLayerScale(1e-6) * [Conv(8, 3, p=1)]").warnings == ()


def test_batchnorm_in_pytorchs_order_says_what_to_write():
    from archdsl.errors import ArgumentError
    with pytest.raises(ArgumentError, match="archdsl infers the channels: write BatchNorm, not "
                                            r"PyTorch's BatchNorm\(64\)"):
        analyze("input 64x8x8\nBatchNorm(64)")
    with pytest.raises(ArgumentError, match=r"write BatchNorm\(eps=0.001\), not PyTorch's"):
        analyze("input 64x8x8\nBatchNorm(64, 0.001)")
