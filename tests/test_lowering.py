"""Definitions, branches, named results and the names rows get."""
import pytest

from archdsl import analyze, parse
from archdsl.errors import ArchDSLError, ArgumentError, ShapeError, SpecSyntaxError
from archdsl.compiler import build

BLOCK = "def Double(c, s=1) = [Conv(c, 3, s=s, p=1) -> ReLU -> Conv(c*2, 3, p=1) -> ReLU]\n"


def names(text, **kwargs):
    return [row.name for row in analyze(text, **kwargs).rows]


def test_definition_expands_with_arguments_defaults_and_arithmetic():
    rows = analyze(BLOCK + "input 3x32x32\nDouble(8) -> Double(c=4, s=2)").rows
    assert [r.layer for r in rows if r.type == "Conv"] == [
        "Conv2d(3→8, k=3, s=1, p=1)", "Conv2d(8→16, k=3, s=1, p=1)",
        "Conv2d(16→4, k=3, s=2, p=1)", "Conv2d(4→8, k=3, s=1, p=1)"]
    assert rows[0].name == "double1.conv1" and rows[-1].name == "double2.relu2"


def test_definitions_may_use_later_definitions_and_repeat_by_parameter():
    text = ("def Stage(c, n) = [Unit(c)*n -> MaxPool(2)]\n"
            "def Unit(c) = [Conv(c, 3, p=1) -> ReLU]\n"
            "input 1x16x16\nStage(4, 2) -> Stage(8, 3)")
    rows = analyze(text).rows
    assert sum(r.type == "Conv" for r in rows) == 5
    assert rows[-1].output == (8, 4, 4)


@pytest.mark.parametrize("text, line, column, fragment", [
    ("def A(c) = [B(c)]\ndef B(c) = [A(c)]\ninput 1x8x8\nA(2)", 2, 13, "A -> B -> A"),
    ("def A(c) = [ReLU -> A(c)]\ninput 1x8x8\nA(2)", 1, 21, "uses itself: A -> A"),
])
def test_recursion_is_an_error_at_the_call(text, line, column, fragment):
    with pytest.raises(ArchDSLError) as caught:
        analyze(text)
    assert (caught.value.span.line, caught.value.span.column) == (line, column)
    assert fragment in caught.value.message


def test_definition_argument_errors_point_into_the_spec():
    with pytest.raises(ArgumentError, match="Double has no argument 'k'") as caught:
        analyze(BLOCK + "input 3x8x8\nDouble(8, k=3)")
    assert caught.value.span.line == 3
    with pytest.raises(ArgumentError, match="missing its argument 'c'"):
        analyze(BLOCK + "input 3x8x8\nDouble")
    with pytest.raises(ArgumentError, match="arithmetic needs numbers"):
        analyze("def A(c) = [Conv(c*2, 3)]\ninput 1x8x8\nA(same)")


def test_an_error_inside_a_definition_names_the_call_that_got_there():
    text = ("def Block(c) = [Conv(c, 3) -> MaxPool(2)]\n"
            "def Stage(c) = [Block(c) -> Block(c - 10)]\n"
            "input 1x64x64\nStage(16) -> Stage(8)")
    with pytest.raises(ArgumentError, match="'out' must be a positive integer, got -2") as caught:
        analyze(text)
    assert (caught.value.span.line, caught.value.span.column) == (1, 22)  # the `c` of Conv(c, 3)
    # innermost first: Block(c - 10) inside Stage, then the Stage(8) that ran it
    assert caught.value.notes == ["expanded from Block(c - 10) at 2:29",
                                  "expanded from Stage(8) at 4:14"]
    assert "note: expanded from Block(c - 10) at 2:29\n" in caught.value.render(text)


@pytest.mark.parametrize("text, fragment", [
    ("def A(c=1, d) = [ReLU]\ninput 1x8x8\nReLU", "without a default follows"),
    ("def Conv(c) = [ReLU]\ninput 1x8x8\nReLU", "is a layer"),
    ("def A(c) = [ReLU]\ndef A(d) = [ReLU]\ninput 1x8x8\nA(1)", "defined twice"),
])
def test_bad_definitions(text, fragment):
    with pytest.raises((ArchDSLError, SpecSyntaxError), match=fragment):
        analyze(text)


def test_residual_sum_and_its_shape_check():
    ok = analyze("input 8x16x16\n[Conv(8, 3, p=1) -> BatchNorm] + Identity -> ReLU")
    assert [r.name for r in ok.rows] == ["branch.conv", "branch.batchnorm", "identity", "add",
                                         "relu"]
    assert ok.rows[3].inputs == ("branch.batchnorm", "identity")
    with pytest.raises(ShapeError) as caught:
        analyze("input 8x16x16\nReLU ->\n  [Conv(16, 3, s=2, p=1)] + Identity")
    assert "16×8×8 and 8×16×16" in caught.value.message
    assert (caught.value.span.line, caught.value.span.column) == (3, 3)


def test_concat_branches_and_named_skip_with_crop():
    inception = analyze("input 16x8x8\n[Conv(4, 1)] | [Conv(8, 3, p=1)] | [MaxPool(3, s=1, p=1)]")
    assert inception.output == (4 + 8 + 16, 8, 8)
    unet = analyze("input 1x20x20\nConv(4, 3) as skip -> MaxPool(2) -> Conv(8, 3)\n"
                   "  -> ConvTranspose(4, 2, s=2) -> Concat(skip, crop=true) -> Conv(2, 1)")
    concat = next(r for r in unet.rows if r.type == "Concat")
    assert concat.input_shapes == ((4, 14, 14), (4, 18, 18)) and concat.output == (8, 14, 14)
    with pytest.raises(ArgumentError, match="no result is named 'skp' \\(did you mean 'skip'"):
        analyze("input 1x20x20\nConv(4, 3) as skip -> Concat(skp)")


def test_receptive_field_takes_the_largest_path():
    rows = analyze("input 1x32x32\n[Conv(4, 3, p=1) -> Conv(4, 3, p=1)] + [Conv(4, 1)]").rows
    assert rows[-1].rf == (5, 5)


def test_graph_compiles_and_runs():
    import torch
    analysis = analyze("input 2x12x12\nConv(4, 3) as a -> [Conv(4, 3, p=1)] + Identity\n"
                       "  -> Conv(6, 3) -> Concat(a, crop=true) -> Flatten -> Linear(3)")
    model = build(analysis)
    assert model(torch.randn(5, 2, 12, 12)).shape == (5, 3)
    assert sum(p.numel() for p in model.parameters()) == analysis.totals.params


def test_negative_numbers_and_arrows_lex_apart():
    assert analyze("input 4\nLinear(3) -> LeakyReLU(slope=-0.5)").rows[1].args["slope"] == -0.5
    with pytest.raises(SpecSyntaxError, match="unexpected '->'"):
        parse("input 4\nLinear(3 -> ReLU")


def test_a_user_name_never_collides_with_a_generated_one():
    # `as conv1` beside two unnamed Convs: the generated names step past the user's.
    text = "input 1x8x8\nConv(2, 3, p=1) as conv1 -> Conv(3, 3, p=1) -> Conv(4, 3, p=1) -> Flatten"
    analysis = analyze(text)
    assert [r.name for r in analysis.rows] == ["conv1", "conv2", "conv3", "flatten"]
    model = build(analysis)
    assert sum(p.numel() for p in model.parameters()) == analysis.totals.params == 20 + 57 + 112
    # A later reference reads the named result, not a generated row of the same name.
    unet = analyze("input 1x8x8\nConv(2, 3, p=1) as conv1 -> Conv(5, 3, p=1) -> Conv(4, 3, p=1)"
                   " -> Concat(conv1)")
    assert unet.rows[-1].inputs == ("conv3", "conv1") and unet.output == (6, 8, 8)
    assert names("input 1x8x8\nConv(2, 3) as flatten -> Flatten") == ["flatten", "flatten1"]


@pytest.mark.parametrize("text, column, message", [
    ("input 1x8x8\nConv(2, 3) as x -> ReLU as x", 28, "the name 'x' is used twice in this scope"),
    ("input 1x8x8\nConv(2, 3) as input -> Flatten", 15,
     "'input' names the network's input; choose another name"),
])
def test_names_that_would_hide_a_row_or_the_input_are_errors(text, column, message):
    with pytest.raises(ArchDSLError) as caught:
        analyze(text)
    assert caught.value.message == message
    assert (caught.value.span.line, caught.value.span.column) == (2, column)


def test_a_twice_used_name_notes_where_it_was_first_used():
    with pytest.raises(ArchDSLError) as caught:
        analyze("input 1x8x8\nConv(2, 3) as x\n-> ReLU as x")
    assert caught.value.notes == ["first used at 2:15"]


def test_the_same_name_in_different_scopes_is_fine():
    text = "input 1x8x8\n[Conv(2, 3, p=1) as c] -> [Conv(2, 3, p=1) as c] -> Flatten"
    assert names(text) == ["block1.c", "block2.c", "flatten"]


SE = ("def SE(c, squeeze) = [Identity * [AdaptiveAvgPool(1) -> Conv(squeeze, 1) -> ReLU\n"
      "                                  -> Conv(c, 1) -> Sigmoid]]\n")


def test_a_product_of_branches_gates_a_map_by_broadcasting():
    analysis = analyze(SE + "input 8x6x6\nConv(8, 3, p=1) -> SE(8, 2)")
    multiply = analysis.rows[-1]
    assert [r.name for r in analysis.rows][1:3] == ["se.identity", "se.branch.adaptiveavgpool"]
    assert multiply.name == "se.multiply" and multiply.type == "Multiply"
    assert multiply.input_shapes == ((8, 6, 6), (8, 1, 1)) and multiply.output == (8, 6, 6)
    assert multiply.inputs == ("se.identity", "se.branch.sigmoid")


@pytest.mark.parametrize("text, message, hint", [
    ("input 8x6x6\nIdentity * [GlobalAvgPool -> Linear(8) -> Sigmoid]",
     "different ranks: 8×6×6 and 8", "AdaptiveAvgPool(1)"),
    ("input 8x6x6\nIdentity * [AdaptiveAvgPool(1) -> Conv(4, 1)]",
     "do not broadcast: 8×6×6 and 4×1×1", "or 1 in one"),
])
def test_a_product_that_does_not_broadcast_names_both_shapes(text, message, hint):
    with pytest.raises(ShapeError, match=message) as caught:
        analyze(text)
    assert hint in caught.value.hint


def test_a_word_after_star_repeats_and_the_error_says_how_to_multiply():
    with pytest.raises(ArgumentError, match="repeat count must be an integer") as caught:
        analyze("input 8x6x6\nIdentity * Sigmoid")
    assert "bracket it: * [Sigmoid]" in caught.value.hint


def test_the_repeat_index_counts_copies_from_zero_in_arithmetic():
    rows = analyze("input 4x8x8\nDropout(0.1*k/4)*3 for k -> Conv(2, 1)*2 for i").rows
    ps = [r.args["p"] for r in rows if r.type == "Dropout"]
    assert ps == [0.1 * k / 4 for k in range(3)] and all(type(p) is float for p in ps)
    stage = ("def Stage(c, first, n) = [Conv(c, 1, p=first + k)*n for k]\n"
             "input 4x8x8\nStage(4, 0, 2) -> Stage(4, 2, 1)")
    assert [r.args["padding"] for r in analyze(stage).rows] == [0, 1, 2]


def test_the_repeat_index_may_not_hide_a_parameter():
    with pytest.raises(ArchDSLError, match="the repeat index 'c' hides the parameter"):
        analyze("def B(c) = [Conv(c, 1)*2 for c]\ninput 4x8x8\nB(4)")
    with pytest.raises(ArchDSLError, match="the repeat index 'k' hides the parameter or outer"):
        analyze("input 4x8x8\n[Conv(4, 1, p=k)*2 for k]*2 for k")
    nested = analyze("input 4x8x8\n[Conv(4, 1, p=i + j)*2 for j]*2 for i").rows
    assert [r.args["padding"] for r in nested] == [0, 1, 1, 2]


def test_true_division_gives_a_float_and_an_integer_argument_says_so():
    with pytest.raises(ArgumentError, match=r"got 2\.0 \('/' divides into a fraction; '//'"):
        analyze("input 4x8x8\nConv(4/2, 1)")
    assert analyze("input 4x8x8\nConv(5//2, 1)").rows[0].output == (2, 8, 8)


def test_a_definition_without_parameters_needs_no_parentheses():
    analysis = analyze("def Head = [Flatten -> Linear(10)]\ninput 4x2x2\nHead")
    assert [r.name for r in analysis.rows] == ["head.flatten", "head.linear"]
    assert analyze("def Head() = [Flatten]\ninput 4x2x2\nHead()").output == (16,)


def test_products_compile_and_gate_as_torch_computes():
    import torch
    analysis = analyze(SE + "input 8x6x6\nSE(8, 2)")
    model = build(analysis).eval()
    x = torch.randn(3, 8, 6, 6)
    gate = model.layer("se.branch.sigmoid")(model.layer("se.branch.conv2")(
        model.layer("se.branch.relu")(model.layer("se.branch.conv1")(x.mean((2, 3), True)))))
    torch.testing.assert_close(model(x), x * gate)
