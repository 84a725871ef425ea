"""`archdsl import` as the README shows it: a torchvision model, a class in a file with
keyword arguments, and what cannot be imported (exit 2, no traceback)."""
import subprocess
import sys

import torchvision
from typer.testing import CliRunner

from archdsl import analyze, parse
from archdsl.cli import app
from archdsl.fmt import format_spec
from conftest import ROOT

runner = CliRunner()

MODEL_FILE = '''
import torch
from torch import nn


class SimpleCNN(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, classes))

    def forward(self, x):
        return self.classifier(self.conv_block(x))


class Odd(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3)
        self.embed = nn.Embedding(10, 8)

    def forward(self, x):
        return torch.sin(self.conv(x)) * 2
'''


def test_a_torchvision_model_to_a_file(tmp_path):
    path = tmp_path / "resnet18.spec"
    result = runner.invoke(app, ["import", "torchvision:resnet18", "--input", "3x224x224",
                                 "-o", str(path)])
    assert result.exit_code == 0, result.output
    params = sum(p.numel() for p in torchvision.models.resnet18().parameters())
    assert result.output == (f"{path}: torchvision.models.resnet18(), input 3×224×224, "
                             f"{len(path.read_text().splitlines())} lines, {params:,} "
                             f"parameters\n")
    text = path.read_text()
    assert format_spec(text) == text
    assert runner.invoke(app, ["fmt", "--check", str(path)]).exit_code == 0
    checked = runner.invoke(app, ["check", str(path)])
    assert checked.exit_code == 0
    assert f"\nparameters            {params:,}  trainable" in checked.output


def test_a_class_in_a_file_with_arguments_to_standard_output(tmp_path):
    (tmp_path / "model.py").write_text(MODEL_FILE)
    result = runner.invoke(app, ["import", f"{tmp_path / 'model.py'}:SimpleCNN", "--input",
                                 "1x28x28", "--arg", "classes=7"])
    assert result.exit_code == 0, result.output
    analysis = analyze(parse(result.output))
    assert analysis.output == (7,)
    shipped = analyze(parse((ROOT / "specs" / "simple_cnn.spec").read_text()))
    assert [r.layer for r in analysis.rows][:-1] == [r.layer for r in shipped.rows][:-1]
    assert analysis.rows[-1].layer == "Linear(128→7)"
    assert "SimpleCNN(classes=7)" in result.output.splitlines()[0]


def test_what_cannot_be_imported_is_listed_and_exits_2(tmp_path):
    (tmp_path / "model.py").write_text(MODEL_FILE)
    result = runner.invoke(app, ["import", f"{tmp_path / 'model.py'}:Odd", "--input", "1x8x8"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.exc_info
    assert "torch.sin" in result.output and "Traceback" not in result.output
    unknown = runner.invoke(app, ["import", "torchvision:resnet5", "--input", "3x224x224"])
    assert unknown.exit_code == 2 and "torchvision has no model 'resnet5'" in unknown.output
    bad = runner.invoke(app, ["import", "torchvision:resnet18", "--input", "3x224x224",
                              "--arg", "num_classes"])
    assert bad.exit_code == 2 and "expected name=value, got 'num_classes'" in bad.output


def test_import_archdsl_imports_no_torch_until_from_module_runs():
    code = ("import sys, archdsl\n"
            "assert callable(archdsl.from_module) and 'from_module' in archdsl.__all__\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
