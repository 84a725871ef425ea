"""What a notebook shows of the Python API's values: each one's HTML holds the terminal's table cell
for cell, and its plain repr is one short line."""
import html
import shutil

import pytest
from typer.testing import CliRunner

import archdsl
from archdsl.cli import app
from archdsl.compare import compare, mlp_baseline
from archdsl.draw import diagram
from archdsl.explain import explain
from archdsl.sweep import parse_sizes, sweep
from conftest import ROOT
from html_tables import html_rows, markdown_rows, terminal_rows

runner = CliRunner()
SIMPLE = "specs/simple_cnn.spec"
WARNED = "input 28x28\nFlatten -> Linear(10)\n"  # read as 28 channels of 28: warned


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def terminal(*args) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def cnn():
    return archdsl.analyze(archdsl.read_spec(SIMPLE))


def test_an_analysis_shows_checks_table_and_totals():
    shown = cnn()._repr_html_()
    assert html_rows(shown) == terminal_rows(terminal("check", SIMPLE))
    assert "specs/simple_cnn.spec: input 1×28×28 → output 10" in shown


def test_an_analysis_at_a_batch_shows_its_activation_memory():
    analysis = archdsl.analyze(archdsl.read_spec(SIMPLE), batch=32)
    assert html_rows(analysis._repr_html_()) == \
        terminal_rows(terminal("check", SIMPLE, "--batch", "32"))


def test_an_analysis_shows_its_assertions_as_check_does():
    spec = "input 1x28x28\nassert params < 100\nassert macs < 1M\nFlatten -> Linear(10)\n"
    analysis = archdsl.analyze(archdsl.parse(spec))
    result = runner.invoke(app, ["check", "-"], input=spec)
    assert result.exit_code == 1  # one assertion fails
    assert html_rows(analysis._repr_html_()) == terminal_rows(result.stdout)
    assert "budget: 1 of 2 assertions hold" in analysis._repr_html_()


def test_an_analysis_shows_its_warnings_with_the_caret():
    analysis = archdsl.analyze(archdsl.parse(WARNED, "net.spec"))
    result = runner.invoke(app, ["check", "-"], input=WARNED)
    warning = result.stderr.replace("<stdin>", "net.spec").strip()
    assert "^" in warning
    assert f"<pre>{html.escape(warning)}</pre>" in analysis._repr_html_()


def test_a_comparison_shows_compares_table():
    first = cnn()
    comparison = compare([first, mlp_baseline(first, (128,))])
    assert html_rows(comparison._repr_html_()) == \
        terminal_rows(terminal("compare", SIMPLE, "--baseline", "mlp:128"))
    assert "MACs: multiply-accumulates" in comparison._repr_html_()


def test_a_comparison_is_a_sequence_of_entries():
    first = cnn()
    comparison = compare([first, first])
    assert len(comparison) == 2 and comparison[1].params_ratio == 1.0
    assert [entry.analysis for entry in comparison] == [first, first]


def test_an_explanation_shows_explains_formulas():
    shown = explain(cnn())._repr_html_()
    assert html_rows(shown) == markdown_rows(terminal("explain", SIMPLE, "-f", "markdown"))
    assert "H_out = ⌊(28 + 2·1 − 3)/1⌋ + 1 = 28<br>W_out" in shown


def test_a_sweep_shows_sweeps_table_and_where_sizes_break():
    result = sweep(archdsl.read_spec(SIMPLE), sizes=parse_sizes("2:30:7"))
    shown = result._repr_html_()
    text = terminal("sweep", SIMPLE, "--size", "2:30:7")
    table = text.split("\n\n")[1]
    assert html_rows(shown) == terminal_rows(table)
    assert "<li>1×2×2: maxpool2 (line 8, column 34): MaxPool: output would be 0×0" in shown
    assert "smallest valid input: 1×4×4" in shown and "smallest valid input: 1×4×4" in text


def test_html_escapes_what_the_spec_names():
    analysis = archdsl.analyze(archdsl.parse("input 1x8x8\nFlatten -> Linear(2)\n",
                                             "<b>net</b>.spec"))
    shown = analysis._repr_html_()
    assert "<b>net</b>" not in shown and "&lt;b&gt;net&lt;/b&gt;.spec" in shown


def test_plain_reprs_are_one_short_line():
    analysis = cnn()
    values = {
        "analysis": (analysis, "<Analysis specs/simple_cnn.spec: 1×28×28 → 10, 10 layers, "
                               "206,922 parameters, 1,218,048 MACs>"),
        "comparison": (compare([analysis, mlp_baseline(analysis, (128,))]),
                       "<Comparison of 2: specs/simple_cnn.spec 206,922 parameters, mlp:128 "
                       "baseline 101,770 parameters>"),
        "explanation": (explain(analysis, "conv1"),
                        "<Explanation specs/simple_cnn.spec: 1×28×28 → 10, 1 layer>"),
        "sweep": (sweep(analysis.spec, sizes=[2, 28]),
                  "<Sweep specs/simple_cnn.spec: 1 of 2 sizes valid, smallest valid 1×4×4>"),
        "diagram": (diagram(analysis),
                    "<Diagram specs/simple_cnn.spec: 10 layers, DOT source in .source>"),
    }
    for what, (value, expected) in values.items():
        assert repr(value) == expected, what


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_a_diagram_shows_as_svg_through_graphviz():
    bundle = diagram(cnn())._repr_mimebundle_()
    assert list(bundle) == ["image/svg+xml"]
    assert "<svg" in bundle["image/svg+xml"] and "16×28×28" in bundle["image/svg+xml"]


def test_without_dot_a_diagram_shows_its_dot_source_and_the_install_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on it
    graph = diagram(cnn())
    bundle = graph._repr_mimebundle_()
    assert bundle["text/plain"].startswith("showing the diagram needs Graphviz's `dot` program")
    assert "apt-get install graphviz" in bundle["text/plain"]
    assert bundle["text/plain"].endswith(graph.source)
    assert bundle["text/html"].startswith("<pre>") and "digraph" in bundle["text/html"]
