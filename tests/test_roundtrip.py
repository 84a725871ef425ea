"""Round trips through PyTorch code: every shipped spec exported to Python as `archdsl export
--format python` writes it, and that file imported back as `archdsl import FILE.py:Class` reads
it. The imported spec must count what the spec counts (parameters, buffers, MACs, output
shape), and with the same weights give the same outputs."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import archdsl
from archdsl.codegen import default_class_name, python_source
from archdsl.compiler import build, load_state_dict_by_order
from archdsl.fmt import format_spec
from archdsl.importer.targets import load_target
from conftest import ROOT, SPECS
from test_codegen import exported, small_input

ARCHDSL = str(Path(sys.executable).with_name("archdsl"))  # the console script a user runs


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_export_then_import_gives_the_spec_back(spec, tmp_path):
    # The smallest input keeps the forward passes cheap; the counts are the spec's at that input.
    input = small_input(spec)
    analysis = archdsl.analyze(archdsl.parse(spec.read_text(), str(spec)), input)
    network, model, source = exported(spec.read_text(), str(spec), input)
    path = tmp_path / f"{spec.stem}.py"
    path.write_text(source)

    loaded, origin = load_target(f"{path}:{default_class_name(str(spec))}")
    loaded.load_state_dict(network.state_dict(), strict=True)
    text = archdsl.from_module(loaded.eval(), analysis.input, origin)
    back = archdsl.analyze(archdsl.parse(text, "imported.spec"))
    assert (back.totals.params, back.totals.buffers, back.totals.macs, back.output) == \
        (analysis.totals.params, analysis.totals.buffers, analysis.totals.macs, analysis.output)
    assert [r.type for r in back.rows if r.params] == [r.type for r in analysis.rows if r.params]

    assert format_spec(text) == text

    rebuilt = build(back).eval()
    load_state_dict_by_order(rebuilt, loaded.state_dict())
    x = torch.randn(2, *analysis.input, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, got = network(x), rebuilt(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_export_then_import_counts_the_spec_at_its_own_input(spec, tmp_path):
    """At the input the spec declares (U-Net's 572×572, whose crops depend on it), on the meta
    device: the file's class is built and traced, no weights are drawn or run."""
    analysis = archdsl.analyze(archdsl.parse(spec.read_text(), str(spec)))
    path = tmp_path / f"{spec.stem}.py"
    path.write_text(python_source(analysis))
    with torch.device("meta"):
        loaded, origin = load_target(f"{path}:{default_class_name(str(spec))}")
    back = archdsl.analyze(archdsl.parse(archdsl.from_module(loaded, analysis.input, origin)))
    assert (back.totals.params, back.totals.buffers, back.totals.macs, back.output) == \
        (analysis.totals.params, analysis.totals.buffers, analysis.totals.macs, analysis.output)


def test_the_command_line_round_trip(tmp_path):
    """As the README walks it: export a shipped spec as Python, import the file back, and
    `check` and `fmt --check` the spec that comes out."""
    def archdsl_command(*arguments):
        done = subprocess.run([ARCHDSL, *arguments], cwd=tmp_path, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    archdsl_command("export", str(ROOT / "specs/zoo/resnet50.spec"), "-o", "resnet50.py",
                    "--no-verify")
    archdsl_command("import", "resnet50.py:Resnet50", "--input", "3x224x224", "-o", "back.spec")
    archdsl_command("fmt", "--check", "back.spec")
    original, back = (json.loads(archdsl_command("check", str(path), "--format", "json"))
                      for path in (ROOT / "specs/zoo/resnet50.spec", tmp_path / "back.spec"))
    assert back["totals"] == original["totals"]
    assert [(r["type"], r["output"]) for r in back["layers"]] == \
        [(r["type"], r["output"]) for r in original["layers"]]
