"""The value boundary: every value that leaves binding is a builtin, never an archdsl.ir type."""
from decimal import Decimal

import pytest

from archdsl import analyze, parse
from archdsl.binding import definition_values, resolve
from archdsl.errors import ArgumentError
from archdsl.ir import Argument, Name, Operation
from archdsl.layers.arguments import bind_arguments
from archdsl.lowering import lower
from archdsl.train.config import TrainConfig
from conftest import SPECS, assert_plain_fields


def test_a_bare_word_is_its_parameter_or_a_plain_str():
    assert resolve(Name("c"), {"c": 8}) == 8
    word = resolve(Name("nearest"), {"c": 8})
    assert word == "nearest" and type(word) is str


def test_arithmetic_tuples_and_bounds_become_builtins():
    span = parse("Flatten").body.span
    product = resolve(Operation("*", (Name("c"), 2), span), {"c": 3})
    assert product == 6 and type(product) is int
    pair = resolve((Name("c"), Name("same")), {"c": 3})
    assert pair == (3, "same") and type(pair[1]) is str
    assert type(resolve(Decimal("1500000"))) is int
    assert type(resolve(Decimal("1.5"))) is float and resolve(Decimal("1.5")) == 1.5
    ratio = resolve(Operation("/", (Name("k"), 4), span), {"k": 1})
    assert ratio == 0.25 and type(ratio) is float
    whole = resolve(Decimal("123456789012345678901234567890"))  # exact at any size
    assert whole == 123456789012345678901234567890 and type(whole) is int


def test_anything_else_is_refused():
    with pytest.raises(TypeError):
        resolve([1, 2])


def test_the_binder_refuses_an_unresolved_value():
    spec = parse("Flatten")
    argument = Argument(None, Name("cosine"), spec.body.span)
    with pytest.raises(TypeError, match="unresolved"):
        bind_arguments(TrainConfig, "train", "train(…)", (argument,), spec.body.span)


def test_a_default_is_computed_from_the_parameters_before_it():
    nodes = lower(parse("input 3x8x8\ndef B(c, d=c*2) = [Conv(d, 3)]\nB(4) -> B(4, d=5)"))
    assert [(n.layer.out, type(n.layer.out)) for n in nodes] == [(8, int), (5, int)]


def test_a_default_bare_word_reaches_the_layer_as_a_str():
    (node,) = lower(parse("input 3x8x8\ndef B(m=nearest) = [Upsample(mode=m)]\nB()"))
    assert node.layer.mode == "nearest" and type(node.layer.mode) is str
    assert_plain_fields(node.layer, node.name)


def test_a_default_cannot_use_a_later_parameter():
    with pytest.raises(ArgumentError, match="cannot compute '\\*' of 'c' and 2") as caught:
        analyze("input 3x8x8\ndef B(d=c*2, c=3) = [Conv(d, 3)]\nB()")
    assert (caught.value.span.line, caught.value.span.column) == (2, 9)  # at the default
    assert caught.value.notes == ["expanded from B() at 3:1"]


def test_definition_values_fill_defaults_in_order():
    (definition,) = parse("def B(c, d=c+1, e=(d, same)) = [Flatten]\nB(1)").definitions
    values = definition_values(definition, {"c": 2})
    assert values == {"c": 2, "d": 3, "e": (3, "same")}
    assert [type(v) for v in values.values()] == [int, int, tuple]
    assert type(values["e"][1]) is str


def test_the_train_block_settings_are_builtins():
    config = TrainConfig.from_spec(parse("train(scheduler=cosine, optimizer=sgd)\nFlatten"))
    assert type(config.scheduler) is str and type(config.optimizer) is str
    assert_plain_fields(config, "TrainConfig")
    assert all(type(v) is not Name for v in config.to_dict().values())


def assert_nothing_of_the_ir_leaves(text: str, input_shape=None) -> None:
    """The layers, the TrainConfig and the JSON data of `check` and `explain` hold builtins."""
    from archdsl.budget import check_budget
    from archdsl.explain import explain
    from conftest import assert_plain
    spec = parse(text)
    analysis = analyze(spec, input_shape)
    for node in analysis.nodes:
        assert_plain_fields(node.layer, node.name)
    config = TrainConfig.from_spec(spec)
    assert_plain_fields(config, "TrainConfig")
    assert_plain(config.to_dict(), "config")
    assert_plain(analysis.to_dict(), "analysis")
    assert_plain([result.to_dict() for result in check_budget(analysis)], "budget")
    assert_plain(explain(analysis).to_dict(), "explanation")


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_no_ir_value_leaves_binding_for_a_shipped_spec(path):
    assert_nothing_of_the_ir_leaves(path.read_text(encoding="utf-8"))


def test_no_ir_value_leaves_binding_through_defaults_words_and_bounds():
    assert_nothing_of_the_ir_leaves(
        "input 3x16x16\n"
        "assert params < 1.5M\nassert macs <= 2.5\n"
        "train(scheduler=cosine, optimizer=adamw, amp=bf16)\n"
        "def B(c, d=c*2, m=nearest, k=(c, 1)) = [Conv(d, k, p=same) -> Upsample(mode=m)]\n"
        "B(4) -> B(2, m=bilinear) as up -> [Conv(4, 1)] + [Conv(4, 3, p=same)]")
