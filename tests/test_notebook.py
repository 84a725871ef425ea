"""examples/tutorial.ipynb, run by a real Jupyter kernel from a clean start, its outputs checked.

The kernel is this interpreter's ipykernel, through a kernel spec written for the test (so that
no kernel installed elsewhere on the machine is used). The notebook runs in a scratch copy of
examples/ beside a copy of specs/, as it would in a clone, with $ARCHDSL_DATA at the shared
Fashion-MNIST files. `python tests/test_notebook.py` executes it the same way and writes its
outputs back into examples/tutorial.ipynb.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "tutorial.ipynb"
sys.path.insert(0, str(Path(__file__).parent / "train"))
from fashion import SHARED, needs_fashion  # noqa: E402
from html_tables import html_rows, terminal_rows  # noqa: E402

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
KERNEL = "archdsl-test"


def execute(scratch: Path):
    """The notebook, executed in `scratch` (a copy of examples/ and specs/ is made there)."""
    shutil.copytree(ROOT / "examples", scratch / "examples", ignore=shutil.ignore_patterns(
        "runs", "data", ".ipynb_checkpoints"))
    shutil.copytree(ROOT / "specs", scratch / "specs")
    kernel_dir = scratch / "jupyter" / "kernels" / KERNEL
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "archdsl test", "language": "python"}))
    environment = {"JUPYTER_PATH": str(scratch / "jupyter"), "ARCHDSL_DATA": str(SHARED),
                   "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        notebook = nbformat.read(scratch / "examples" / NOTEBOOK.name, as_version=4)
        client = nbclient.NotebookClient(notebook, kernel_name=KERNEL, timeout=600,
                                         resources={"metadata": {"path":
                                                                 str(scratch / "examples")}})
        client.execute()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return notebook


@pytest.fixture(scope="module")
def executed():
    if not NOTEBOOK.is_file():
        pytest.fail(f"{NOTEBOOK} is missing")
    scratch = Path(tempfile.mkdtemp(prefix="archdsl-notebook-"))
    try:
        yield execute(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def cell_with(notebook, text: str):
    """The one code cell whose source holds `text` (a line's end written as \\n matches the
    cell's end too)."""
    (cell,) = [c for c in code_cells(notebook) if text in c.source + "\n"]
    return cell


def streams(cell, name: str) -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == name)


def rich(cell, mime: str) -> list:
    return [o.data[mime] for o in cell.outputs
            if o.output_type in ("display_data", "execute_result") and mime in o.data]


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "archdsl", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True)


@needs_fashion
def test_every_cell_runs_and_only_the_error_cell_writes_to_stderr(executed):
    for cell in code_cells(executed):
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.source
        if "input 1x4x4" not in cell.source and "archdsl.train(" not in cell.source:
            assert not streams(cell, "stderr"), (cell.source, streams(cell, "stderr"))


@needs_fashion
def test_the_magics_error_is_the_terminals_with_its_caret(executed):
    cell = cell_with(executed, "input 1x4x4")
    spec = cell.source.split("\n", 1)[1] + "\n"
    terminal = cli("check", "-", stdin=spec)
    assert terminal.returncode == 2
    assert streams(cell, "stderr") == terminal.stderr.replace("<stdin>", "<cell>")
    assert "^" in streams(cell, "stderr") and "Traceback" not in streams(cell, "stderr")
    assert not rich(cell, "text/html")


@needs_fashion
def test_explain_cells_show_the_formulas(executed):
    first = rich(cell_with(executed, "1x28x28\nConv(16, 3, p=1)\n"), "text/html")
    assert "H_out = ⌊(28 + 2·1 − 3)/1⌋ + 1 = 28" in first[0]
    strided = rich(cell_with(executed, "Conv(16, 5, s=2)"), "text/html")
    assert "⌊(28 + 2·0 − 5)/2⌋ + 1 = 12" in strided[0]
    rgb = cell_with(executed, "%%archdsl rgb")
    assert "16 × (3·3·3) + 16 = 448" in rich(rgb, "text/html")[0]
    assert rich(cell_with(executed, "rgb.totals"), "text/plain") == ["(448, 442368)"]


@needs_fashion
def test_the_analysis_shows_the_terminals_numbers(executed):
    shown = html_rows(rich(cell_with(executed, "cnn = archdsl.analyze"), "text/html")[0])
    assert shown == terminal_rows(cli("check", "specs/simple_cnn.spec").stdout)


@needs_fashion
def test_the_comparisons_show_the_terminals_numbers(executed):
    shown = html_rows(rich(cell_with(executed, "mlp_baseline(cnn"), "text/html")[0])
    data = json.loads(cli("compare", "specs/simple_cnn.spec", "--baseline", "mlp:128",
                          "-f", "json").stdout)
    params = dict((row[0], row[1:]) for row in shown)["parameters"]
    assert params == [f"{spec['totals']['params']:,}" for spec in data["specs"]]
    zoo = html_rows(rich(cell_with(executed, "compare(zoo)"), "text/html")[0])
    names = ["lenet5", "alexnet", "vgg16", "resnet18", "resnet50"]
    data = json.loads(cli("compare", *(f"specs/zoo/{n}.spec" for n in names),
                          "-f", "json").stdout)
    assert dict((row[0], row[1:]) for row in zoo)["MACs"] == \
        [f"{spec['totals']['macs']:,}" for spec in data["specs"]]


@needs_fashion
def test_the_diagram_is_svg_where_dot_is_installed(executed):
    cell = cell_with(executed, "diagram(cnn)")
    if shutil.which("dot"):
        (svg,) = rich(cell, "image/svg+xml")
        assert "conv1" in svg and "16×28×28" in svg
    else:
        assert "needs Graphviz's `dot` program" in rich(cell, "text/plain")[0]
    block = cell_with(executed, "%%archdsl block --draw")
    table, drawn = [o.data for o in block.outputs]
    assert "body.conv1" in table["text/html"] and "36,864" in table["text/html"]
    assert "image/svg+xml" in drawn if shutil.which("dot") else "digraph" in drawn["text/plain"]


@needs_fashion
def test_training_shows_a_bar_per_epoch_and_reaches_its_accuracy(executed):
    cell = cell_with(executed, "archdsl.train(")
    bars = [o for o in cell.outputs if o.output_type == "display_data" and
            "<progress" in o.data.get("text/html", "")]
    assert [b.data["text/plain"].split("  ")[0] for b in bars] == ["epoch 1/2", "epoch 2/2"]
    assert all("100%" in b.data["text/plain"] and "5,000/5,000 images" in b.data["text/plain"]
               for b in bars)
    stdout = streams(cell, "stdout")
    assert "with 5,000 fashion-mnist images" in stdout
    accuracy = float(re.search(r"test accuracy (\d+\.\d+)% on 10,000 images", stdout)[1])
    assert accuracy > 75  # two epochs on 5,000 images: 80–82% on this CPU
    (summary,) = [o.data["text/html"] for o in cell.outputs if o.output_type == "execute_result"]
    assert f"test accuracy {accuracy:.2f}%" in summary
    assert rich(cell_with(executed, "run.plot()"), "image/png")
    loaded = streams(cell_with(executed, "archdsl.load_run"), "stdout")
    assert "the same as the trained model: True" in loaded


@needs_fashion
def test_the_stored_outputs_are_those_the_notebook_gives(executed):
    """Outside the training section (whose numbers vary with the CPU), the outputs saved in
    examples/tutorial.ipynb are what it prints now: it is not stale."""
    stored = nbformat.read(NOTEBOOK, as_version=4)
    assert [c.source for c in code_cells(stored)] == [c.source for c in code_cells(executed)]
    for old, new in zip(code_cells(stored), code_cells(executed)):
        if {"training", "diagram"} & set(old.metadata.get("tags", [])):
            continue
        assert _comparable(old.outputs) == _comparable(new.outputs), old.source


def _comparable(outputs) -> list:
    return [{k: v for k, v in output.items() if k != "execution_count"} for output in outputs]


if __name__ == "__main__":
    # Rewrite the stored outputs: `python tests/test_notebook.py`.
    scratch = Path(tempfile.mkdtemp(prefix="archdsl-notebook-"))
    try:
        notebook = execute(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    nbformat.write(notebook, NOTEBOOK)
    print(f"wrote {NOTEBOOK}")
