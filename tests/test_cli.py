"""The commands through typer's CliRunner: exit codes, golden output, JSON, stdin."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archdsl import __version__
from archdsl.cli import app
from conftest import ROOT

runner = CliRunner()
SIMPLE = str(ROOT / "specs/simple_cnn.spec")
MLP = str(ROOT / "specs/mlp.spec")


def invoke(*args, **kwargs):
    return runner.invoke(app, list(args), **kwargs)


def test_check_golden(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = invoke("check", "specs/simple_cnn.spec")
    assert result.exit_code == 0
    assert result.stdout == (ROOT / "tests/data/golden/simple_cnn.check.txt").read_text()


def test_check_json_carries_the_totals():
    result = invoke("check", SIMPLE, "--format", "json", "--batch", "64")
    data = json.loads(result.stdout)
    assert data["schema"] == "archdsl.analysis/1"
    assert data["input"] == [1, 28, 28] and data["output"] == [10]
    totals = data["totals"]
    assert totals["params"] == 206_922 and totals["macs"] == 1_218_048
    assert totals["trainable"] == 206_922 and totals["non_trainable"] == 0
    for key in ("params", "weights", "biases", "buffers", "macs"):
        assert totals[key] == sum(layer[key] for layer in data["layers"])
    assert totals["param_bytes"] == 4 * 206_922
    assert totals["activation_bytes"] == 64 * 4 * sum(
        __import__("math").prod(layer["output"]) for layer in data["layers"])
    first = data["layers"][0]
    assert {"name", "type", "args", "input", "output", "params", "macs"} <= set(first)
    assert first["args"]["padding"] == 1 and first["output"] == [16, 28, 28]


def test_check_markdown():
    result = invoke("check", SIMPLE, "--format", "markdown")
    assert result.exit_code == 0
    assert "| conv1 " in result.stdout and "|   206,922 |" in result.stdout


def test_check_reads_stdin_with_input_option():
    result = invoke("check", "-", "--input", "1x28x28",
                    input="[Conv(16,3,p=1) -> ReLU -> MaxPool(2)]*2 -> Flatten -> Linear(10)")
    assert result.exit_code == 0, result.output
    assert "10,330" in result.stdout and "block2.maxpool" in result.stdout


def test_compare_reproduces_the_tutorial():
    result = invoke("compare", SIMPLE, MLP, "--baseline", "mlp:128")
    assert result.exit_code == 0, result.output
    rows = {cells[0]: cells[1:] for cells in
            (re.split(r"\s{2,}", line.strip()) for line in result.stdout.splitlines())}
    assert result.stdout.split()[:4] == ["simple_cnn", "mlp", "mlp:128", "baseline"]
    assert rows["parameters"] == ["206,922", "101,770", "101,770"]
    assert rows["weights"] == ["206,736", "101,632", "101,632"]
    assert rows["biases"] == ["186", "138", "138"]
    assert rows["· in Conv layers"] == ["4,752", "0", "0"]  # the CNN's two conv layers


def test_compare_json_and_deeper_baseline():
    result = invoke("compare", SIMPLE, "--baseline", "mlp:256,64", "--format", "json")
    specs = json.loads(result.stdout)["specs"]
    baseline = specs[1]["totals"]
    assert baseline["params"] == (784 * 256 + 256) + (256 * 64 + 64) + (64 * 10 + 10)
    assert specs[1]["params_ratio"] == baseline["params"] / 206_922


def test_compare_bad_baseline_exits_2():
    result = invoke("compare", SIMPLE, "--baseline", "cnn:3")
    assert result.exit_code == 2


def test_version_and_help():
    assert invoke("--version").stdout.strip() == f"archdsl {__version__}"
    assert invoke("--help").exit_code == 0


@pytest.mark.parametrize("command, expected", [
    (["check", "specs/simple_cnn.spec"], "206,922"),
    (["compare", "specs/simple_cnn.spec", "specs/mlp.spec"], "101,770"),
    (["explain", "specs/simple_cnn.spec"], "H_out = ⌊(28 + 2·1 − 3)/1⌋ + 1 = 28"),
    (["sweep", "specs/simple_cnn.spec", "--input", "1x32x32"], "1×32×32"),
    (["fmt", "specs/zoo/resnet18.spec"], "def Basic(c) = [Body(c, 1) + Identity -> ReLU]"),
])
def test_static_commands_never_import_torch(command, expected):
    code = ("import sys; from archdsl.cli import app; "
            f"sys.argv = ['archdsl', *{command!r}]\n"
            "try: app()\nexcept SystemExit: pass\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def test_compare_baseline_width_beyond_the_integer_limit_is_an_option_error():
    result = invoke("compare", SIMPLE, "--baseline", "mlp:1234567890123456789012345")
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.exc_info
    assert "hidden widths must have at most 18 digits" in result.output


def test_draw_to_a_directory_is_one_message(tmp_path):
    (tmp_path / "net.dot").mkdir()
    result = invoke("draw", SIMPLE, "-o", str(tmp_path / "net.dot"))
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.exc_info
    assert f"error: {tmp_path / 'net.dot'} is a directory; -o names the file to write" \
        in result.output


@pytest.mark.parametrize("spec, code, stream", [
    ("specs/simple_cnn.spec", 0, "stdout"),  # the table
    ("specs/no_such.spec", 2, "stderr"),     # the error, with its exit status
])
def test_the_console_script_and_python_m_keep_output_and_exit_status(spec, code, stream):
    # Both go through archdsl.cli.main, which freezes the garbage collector as the process
    # ends; what the command printed and its exit status must come through unchanged.
    script = Path(sys.executable).with_name("archdsl")  # where pip installed it, if it did
    for command in [[sys.executable, "-m", "archdsl"]] + [[str(script)]] * script.exists():
        result = subprocess.run([*command, "check", spec], cwd=ROOT, capture_output=True,
                                text=True)
        assert result.returncode == code, result.stderr
        expected = "206,922" if code == 0 else f"{spec}:1:1: spec file does not exist"
        assert expected in getattr(result, stream)


def test_check_batch_adds_the_training_step_memory():
    from archdsl.memory import training_memory

    result = invoke("check", SIMPLE, "--batch", "32")
    assert result.exit_code == 0, result.output
    memory = training_memory(archdsl_analysis(SIMPLE), 32)
    assert "training memory at batch 32, float32, Adam" in result.stdout
    assert f"{memory.total:,} B" in result.stdout
    assert f"what autograd keeps for backward, {memory.activations:,} B" in result.stdout
    assert "Adam: 2 copies of the trainable parameters, and 8 step counters" in result.stdout
    plain = invoke("check", SIMPLE)
    assert "training memory" not in plain.stdout


def archdsl_analysis(path):
    import archdsl
    return archdsl.analyze(archdsl.parse(Path(path).read_text(), path))


@pytest.mark.parametrize("options, optimizer, precision", [
    ([], "adam", "float32"), (["--optimizer", "sgd"], "sgd", "float32"),
    (["--amp", "bf16"], "adam", "bf16"), (["--optimizer", "adamw", "--amp", "bf16"], "adamw",
                                          "bf16")])
def test_check_json_carries_the_memory_figures(options, optimizer, precision):
    from archdsl.memory import training_memory

    result = invoke("check", SIMPLE, "--batch", "8", "--format", "json", *options)
    data = json.loads(result.stdout)
    assert data["memory"] == training_memory(archdsl_analysis(SIMPLE), 8, optimizer, 0.9,
                                             precision).to_dict()
    assert data["memory"]["precision"] == precision
    assert set(data) == {"schema", "name", "input", "output", "layers", "totals", "memory"}


def test_check_fit_finds_the_largest_batch_in_the_budget():
    from archdsl.memory import training_memory

    result = invoke("check", SIMPLE, "--fit", "64MiB", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    batch = data["fit"]["batch"]
    assert data["fit"]["budget"] == 64 * 2 ** 20 and data["memory"]["batch"] == batch
    analysis = archdsl_analysis(SIMPLE)
    assert training_memory(analysis, batch).total <= 64 * 2 ** 20 < \
        training_memory(analysis, batch + 1).total
    text = invoke("check", SIMPLE, "--fit", "64MiB").stdout
    assert f"training memory at batch {batch:,}, float32, Adam: the largest batch that fits in " \
           f"64.0 MiB" in text


def test_check_fit_where_nothing_fits_exits_1():
    from archdsl.memory import training_memory

    result = invoke("check", SIMPLE, "--fit", "1MiB")
    assert result.exit_code == 1
    assert "not even one example fits in 1.0 MiB" in result.stdout
    one = training_memory(archdsl_analysis(SIMPLE), 1).total
    assert f"error: not even one example fits in 1MiB: a training step at batch 1 takes " \
           f"{one:,} bytes" in result.output


def test_check_fit_refuses_a_size_it_cannot_read():
    result = invoke("check", SIMPLE, "--fit", "lots")
    assert result.exit_code == 2
    assert "not a size: 'lots'; write 16GiB, 8G or 512MiB" in result.output
