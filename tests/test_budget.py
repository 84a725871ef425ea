"""Budget assertions: `assert params < 100k` in a spec; `check` exits 1 when one fails."""
import inspect
import json
import re
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from archdsl import ArchDSLError, analyze, parse
from archdsl.budget import METRICS, check_budget, parse_bound
from archdsl.cli import app
from conftest import ROOT

# The tutorial CNN's layers: the spec's lines from its first layer on (no input, no train).
NETWORK = re.search(r"^Conv.*", (ROOT / "specs/simple_cnn.spec").read_text(), re.M | re.S)[0]
# The tutorial CNN's totals: 206,922 parameters, 1,218,048 MACs, 4 conv and linear layers.


def runner() -> CliRunner:
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        return CliRunner(mix_stderr=False)
    return CliRunner()


def spec_with(*assertions: str) -> str:
    return "input 1x28x28\n" + "".join(a + "\n" for a in assertions) + NETWORK


def check(text: str, *options: str):
    return runner().invoke(app, ["check", "-", *options], input=text)


@pytest.mark.parametrize("text, value", [
    ("100k", 100_000), ("100K", 100_000), ("1.5M", 1_500_000), ("1.5m", 1_500_000),
    ("2G", 2_000_000_000), (".5k", 500), ("250", 250), ("1.25", Decimal("1.25")),
    ("1Ki", 1024), ("2Mi", 2 * 1024 ** 2), ("1gi", 1024 ** 3), ("3.", 3),
])
def test_bounds(text, value):
    assert parse_bound(text) == value


def test_assertions_are_parsed_in_order_and_change_nothing_else():
    spec = parse(spec_with("assert params < 250k", "assert macs >= 1.2M"))
    assert [(a.metric, a.comparator, a.bound, a.text) for a in spec.assertions] == [
        ("params", "<", 250_000, "250k"), ("macs", ">=", 1_200_000, "1.2M")]
    assert spec.assertions[1].span.line == 3
    plain = analyze(parse(spec_with()))
    assert analyze(spec).rows == plain.rows and analyze(spec).totals == plain.totals


def test_every_metric_reads_its_total():
    analysis = analyze(parse(spec_with(*(f"assert {m} >= 0" for m in METRICS))))
    values = {r.assertion.metric: r.value for r in check_budget(analysis)}
    totals = analysis.totals
    assert values["params"] == 206_922 and values["macs"] == 1_218_048 and values["depth"] == 4
    assert values["layers"] == 10 and values["output"] == 10
    assert values["param_bytes"] == 4 * 206_922 == totals.param_bytes
    for metric in ("trainable", "non_trainable", "weights", "biases", "buffers",
                   "activation_bytes"):
        assert values[metric] == getattr(totals, metric)


@pytest.mark.parametrize("assertion, passes", [
    ("assert params < 206923", True), ("assert params < 206922", False),
    ("assert params <= 206922", True), ("assert params > 206922", False),
    ("assert params >= 206922", True), ("assert params > 200k", True),
    ("assert macs < 1.2M", False), ("assert macs < 1.25M", True),
    ("assert depth <= 3", False), ("assert param_bytes < 1Mi", True),
])
def test_comparisons(assertion, passes):
    (result,) = check_budget(analyze(parse(spec_with(assertion))))
    assert result.passed is passes


def test_check_passes_and_prints_the_budget():
    result = check(spec_with("assert params < 250k", "assert macs <= 1.5M"))
    assert result.exit_code == 0, result.output
    assert "budget: 2 of 2 assertions hold" in result.stdout
    assert "params < 250k" in result.stdout and "206,922" in result.stdout
    assert result.stderr == ""


def test_check_fails_with_exit_1_at_the_assert_line():
    text = spec_with("assert params < 250k", "assert macs <= 1M  # the budget")
    result = check(text)
    assert result.exit_code == 1
    assert "206,922" in result.stdout  # the analysis is still printed
    assert "budget: 1 of 2 assertions hold" in result.stdout
    lines = result.stderr.split("\n")
    assert lines[0] == "<stdin>:3:1: assertion failed: macs is 1,218,048, not <= 1M (1,000,000)"
    assert lines[1] == "  assert macs <= 1M  # the budget"
    assert lines[2] == "  " + "^" * len("assert macs <= 1M")


def test_check_names_every_failed_bound(tmp_path):
    path = tmp_path / "tight.spec"
    path.write_text(spec_with("assert params < 1k", "assert depth > 10"))
    result = runner().invoke(app, ["check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:2:1: assertion failed: params is 206,922, not < 1k (1,000)" in result.stderr
    assert f"{path}:3:1: assertion failed: depth is 4, not > 10" in result.stderr


def test_check_json_carries_the_budget():
    result = check(spec_with("assert params < 1.5M", "assert macs < 1M"), "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["totals"]["params"] == 206_922
    assert data["budget"] == [
        {"metric": "params", "comparator": "<", "bound": 1_500_000, "bound_text": "1.5M",
         "value": 206_922, "passed": True, "line": 2, "column": 1},
        {"metric": "macs", "comparator": "<", "bound": 1_000_000, "bound_text": "1M",
         "value": 1_218_048, "passed": False, "line": 3, "column": 1}]


def test_no_assertions_no_budget_section():
    result = check(spec_with(), "--format", "json")
    assert result.exit_code == 0 and "budget" not in json.loads(result.stdout)


def test_batch_scales_activation_bytes():
    text = spec_with("assert activation_bytes < 200k")
    assert check(text).exit_code == 0
    assert check(text, "--batch", "2").exit_code == 1


@pytest.mark.parametrize("assertion, column, message", [
    ("assert parms < 100k", 8, "unknown metric 'parms' (did you mean 'params'?)"),
    ("assert params = 100k", 15, "unexpected '='"),
    ("assert params < 100kb", 17, "'100kb' ends in B, for bytes, but params counts no bytes: "
                                  "write 100k"),
    ("assert params < k", 17, "expected a number such as 100k or 1.5M"),
    ("assert params 100k", 15, "expected a comparison"),
])
def test_bad_assertions_are_spec_errors(assertion, column, message):
    result = check(spec_with(assertion))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"<stdin>:2:{column}: ")
    assert message in result.stderr.split("\n")[0]


def test_unknown_metric_lists_the_metrics():
    with pytest.raises(ArchDSLError) as caught:
        parse(spec_with("assert flops < 1G"))
    assert caught.value.hint.startswith("metrics: params, trainable")


def test_assert_after_the_network_is_a_syntax_error_with_a_hint():
    result = check(spec_with() + "assert params < 1M\n")
    assert result.exit_code == 2
    assert "unexpected 'assert'" in result.stderr
    assert "hint: assertions come before the network" in result.stderr


def test_assert_is_still_usable_inside_arguments():
    # the keyword is only a keyword where a declaration may start
    spec = parse("input 1x4x4\ndef Block(assertion) = [Conv(assertion, 1)]\nBlock(2)")
    assert analyze(spec).output == (2, 4, 4)


@pytest.mark.parametrize("text, value", [("8GiB", 8 * 2 ** 30), ("512MiB", 512 * 2 ** 20),
                                         ("2GB", 2 * 10 ** 9), ("100B", 100)])
def test_byte_bounds_may_end_in_b(text, value):
    assert parse_bound(text) == value


def test_train_memory_is_the_step_archdsl_train_would_take():
    # the spec's train(...) block's batch size and optimizer, unless the command line says
    from archdsl.memory import training_memory

    text = spec_with("assert train_memory < 8GiB").replace(
        "\nConv", "\ntrain(batch_size=32, optimizer=sgd, momentum=0)\nConv", 1)
    analysis = analyze(parse(text))
    (result,) = check_budget(analysis)
    assert result.value == training_memory(analysis, 32, "sgd", 0.0).total
    # SGD without momentum keeps no state: parameters and gradients, what backward keeps
    assert result.value == 2 * 4 * 206_922 + training_memory(analysis, 32).activations
    bound = str(result.value) + "B"
    assert check(text.replace("8GiB", bound)).exit_code == 1  # not < itself
    assert check(text.replace("< 8GiB", "<= " + bound)).exit_code == 0
    assert check(text.replace("< 8GiB", "<= " + bound), "--batch", "33").exit_code == 1


def test_bytes_bound_a_byte_metric_only():
    result = check(spec_with("assert macs < 2MB"))
    assert result.exit_code == 2
    assert "'2MB' ends in B, for bytes, but macs counts no bytes: write 2M" in result.stderr
