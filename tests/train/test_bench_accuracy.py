"""bench/accuracy.py's reading of what `archdsl train` prints, on a real run's output: the bench
scores a recipe by the model its settings deliver (the moving average with --ema, its TTA score
with --tta), so a change to those lines must not leave the bench reading the wrong number."""
import re
import sys

from typer.testing import CliRunner

from archdsl.cli import app
from conftest import ROOT
from fashion import SHARED, needs_fashion

sys.path.insert(0, str(ROOT / "bench"))
from accuracy import reported_accuracy  # noqa: E402

pytestmark = needs_fashion
runner = CliRunner()


def train_lines(tmp_path, *options):
    result = runner.invoke(app, ["train", str(ROOT / "specs" / "simple_cnn.spec"), "--epochs", "1",
                                 "--subset", "256", "--data-dir", str(SHARED),
                                 "--out", str(tmp_path / "run"), *options])
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def printed(line, after):
    return round(float(re.search(after + r"([0-9.]+)%", line).group(1)) / 100, 6)


def test_plain_run_is_scored_by_its_test_line(tmp_path):
    lines = train_lines(tmp_path)
    index, accuracy, every = reported_accuracy(lines)
    assert lines[index].startswith("test accuracy ")
    assert accuracy == printed(lines[index], "test accuracy ")
    assert list(every) == ["plain"] and type(accuracy) is float


def test_ema_and_tta_run_is_scored_by_the_average_with_tta(tmp_path):
    lines = train_lines(tmp_path, "--tta", "flip", "--ema", "0.9")
    index, accuracy, every = reported_accuracy(lines)
    assert lines[index].startswith("EMA weights (decay 0.9): test accuracy ")
    assert accuracy == printed(lines[index], "with flip TTA ")
    raw = next(line for line in lines if line.startswith("test accuracy "))
    assert every == {"plain": printed(raw, "test accuracy "),
                     "tta_flip": printed(raw, "with flip TTA "),
                     "ema_plain": printed(lines[index], "test accuracy "),
                     "ema_tta_flip": accuracy}
