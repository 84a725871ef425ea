"""`%load_ext archdsl` and the `%%archdsl` cell magic, in a real IPython shell: what a cell shows,
binds and prints, held to what the command line gives for the same spec."""
import subprocess
import sys

import pytest

pytest.importorskip("IPython")
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from IPython.utils.capture import capture_output  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from archdsl.cli import app  # noqa: E402
from conftest import ROOT  # noqa: E402
from html_tables import html_rows, markdown_rows, terminal_rows  # noqa: E402

runner = CliRunner()
SPEC = "input 1x28x28\nConv(8, 3, p=1) -> ReLU -> MaxPool(2) -> Flatten -> Linear(10)\n"
BROKEN = "input 1x4x4\nConv(8, 3) -> Conv(8, 3) -> Conv(8, 3)\n"


@pytest.fixture(scope="module")
def shell():
    shell = InteractiveShell.instance()
    assert shell.run_cell("%load_ext archdsl").success
    yield shell
    InteractiveShell.clear_instance()


def run(shell, line: str, spec: str):
    """The cell `%%archdsl LINE` over `spec`: (its result, what it displayed and printed)."""
    with capture_output() as captured:
        result = shell.run_cell(f"%%archdsl {line}".rstrip() + "\n" + spec)
    return result, captured


def check(*args, spec: str = SPEC):
    return runner.invoke(app, ["check", "-", *args], input=spec)


def displayed(captured, mime: str) -> list:
    return [output.data[mime] for output in captured.outputs if mime in output.data]


def test_a_cell_shows_checks_table(shell):
    result, captured = run(shell, "", SPEC)
    assert result.success and not captured.stderr
    (shown,) = displayed(captured, "text/html")
    assert html_rows(shown) == terminal_rows(check().stdout)


def test_input_and_batch_are_the_command_lines(shell):
    _, captured = run(shell, "--input 1x32x32 --batch 16", SPEC)
    (shown,) = displayed(captured, "text/html")
    assert html_rows(shown) == terminal_rows(check("--input", "1x32x32", "--batch", "16").stdout)
    assert "activation memory" in shown


def test_a_name_binds_the_analysis(shell):
    result, _ = run(shell, "net --input 1x32x32", SPEC)
    assert result.success
    net = shell.user_ns["net"]
    assert net.input == (1, 32, 32) and net.name == "net"
    assert net.totals.params == 8 * 9 + 8 + (8 * 16 * 16) * 10 + 10


def test_explain_shows_explains_formulas_for_every_layer_or_one(shell):
    _, captured = run(shell, "--explain", SPEC)
    (shown,) = displayed(captured, "text/html")
    explained = runner.invoke(app, ["explain", "-", "-f", "markdown"], input=SPEC).stdout
    assert html_rows(shown) == markdown_rows(explained)
    _, captured = run(shell, "--explain maxpool", SPEC)
    rows = html_rows(displayed(captured, "text/html")[0])
    assert [row[0] for row in rows[1:]] == ["maxpool"]


def test_draw_shows_the_diagram_after_the_table(shell):
    _, captured = run(shell, "--draw", SPEC)
    assert len(captured.outputs) == 2
    assert "text/html" in captured.outputs[0].data
    diagram = captured.outputs[1].data
    assert "image/svg+xml" in diagram or "needs Graphviz's `dot`" in diagram["text/plain"]


def test_a_spec_error_shows_as_the_terminal_shows_it_not_as_a_traceback(shell):
    result, captured = run(shell, "broken", BROKEN)
    assert result.success  # nothing raised: the message is the cell's output
    terminal = check(spec=BROKEN)
    assert terminal.exit_code == 2
    assert captured.stderr == terminal.stderr.replace("<stdin>", "broken")
    assert "^^^^" in captured.stderr and "Traceback" not in captured.stderr
    assert not captured.outputs and "broken" not in shell.user_ns


def test_a_syntax_error_and_a_bad_train_block_too(shell):
    for spec in ("input 1x28x28\nConv(8, 3 -> ReLU\n",
                 "input 1x28x28\ntrain(epochs=0)\nConv(8, 3)\n"):
        _, captured = run(shell, "", spec)
        assert captured.stderr == check(spec=spec).stderr.replace("<stdin>", "<cell>")
        assert captured.stderr.startswith("<cell>:2:") and not captured.outputs


def test_warnings_print_with_the_caret_and_the_analysis_shows(shell):
    spec = "input 28x28\nFlatten -> Linear(10)\n"
    _, captured = run(shell, "", spec)
    assert captured.stderr == check(spec=spec).stderr.replace("<stdin>", "<cell>")
    assert "warning:" in captured.stderr and displayed(captured, "text/html")


def test_a_failed_assertion_prints_as_check_does(shell):
    spec = "input 1x28x28\nassert params < 100\nFlatten -> Linear(10)\n"
    _, captured = run(shell, "", spec)
    terminal = check(spec=spec)
    assert terminal.exit_code == 1
    assert captured.stderr == terminal.stderr.replace("<stdin>", "<cell>")
    assert "assert params < 100" in captured.stderr


@pytest.mark.parametrize("line, message", [
    ("--input 1x", "UsageError: --input: input shape must look like 1x28x28 or 784, got '1x'"),
    ("--batch 0", "UsageError: --batch must be at least 1, got 0"),
    ("2net", "UsageError: '2net' is not a Python name to bind the analysis to"),
    ("--explain nope", "error: --explain: no layer is named 'nope'"),
])
def test_bad_options_say_which(shell, line, message):
    _, captured = run(shell, line, SPEC)
    assert captured.stderr.strip().startswith(message), captured.stderr
    assert "Traceback" not in captured.stderr


def test_the_magic_and_the_top_level_names_import_no_torch():
    code = (
        "import sys, inspect\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "import archdsl\n"
        "archdsl.train, archdsl.load_run, inspect.signature(archdsl.train)\n"
        "shell = InteractiveShell.instance()\n"
        "assert shell.run_cell('%load_ext archdsl').success\n"
        f"assert shell.run_cell('%%archdsl net --draw --explain\\n' + {SPEC!r}).success\n"
        "assert shell.user_ns['net'].totals.params > 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
