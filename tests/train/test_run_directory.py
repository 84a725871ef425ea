"""The run directory's figures and per-step records (archdsl/train/run_directory.py, plot.py)
through `archdsl train` as the README tells a user to run it: confusion.png beside curves.png,
the training loss within epochs in metrics.jsonl and curves.png, and resume keeping it whole."""
import re

import pytest
from PIL import Image

import archdsl
from archdsl.train.data import FASHION_CLASSES
from archdsl.train.plot import confusion_figure, curves_figure
from conftest import ROOT, assert_plain
from test_cli_train import SMALL, SYNTHETIC, invoke, records, spec_file

STEPS = 256 // 64  # SYNTHETIC in the default batch of 64


def loss_points(figure) -> int:
    """The training-loss points on the figure's loss axis: those of the line per epoch, or of the
    stairs within epochs where there are any (matplotlib's StepPatch, one a stretch of steps)."""
    from matplotlib.patches import StepPatch

    loss_axis = figure.axes[0]
    assert loss_axis.get_title() == "loss"
    stairs = [patch for patch in loss_axis.patches if isinstance(patch, StepPatch)]
    if stairs:
        return sum(len(patch.get_data().values) for patch in stairs)
    (line,) = loss_axis.get_lines()
    return len(line.get_xdata())


def assert_png(path, size=None):
    with Image.open(path) as image:
        image.verify()  # PIL's own check of the file's chunks and checksums
    with Image.open(path) as image:
        assert image.format == "PNG"
        if size:
            assert image.size == size


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("one")
    spec = spec_file(folder, SMALL)
    result = invoke("train", spec, *SYNTHETIC, "--epochs", "1", "--out", folder / "run")
    assert result.exit_code == 0, result.output
    return spec, folder / "run"


def test_a_one_epoch_run_records_and_draws_the_loss_within_the_epoch(one_epoch):
    _, run = one_epoch
    (record,) = records(run)
    assert [step for step, _ in record["step_losses"]] == list(range(1, STEPS + 1))
    assert_plain(record["step_losses"])
    # the steps' losses, weighted by their (equal) batches, average to the epoch's loss
    assert sum(loss for _, loss in record["step_losses"]) / STEPS == \
        pytest.approx(record["train_loss"], rel=1e-6)
    assert loss_points(archdsl.load_run(run).plot()) == STEPS  # curves.png's, from the records
    assert loss_points(curves_figure([{k: v for k, v in record.items() if k != "step_losses"}])) \
        == 1  # what a one-epoch run drew before
    assert_png(run / "curves.png", (1000, 400))


def test_confusion_png_is_a_valid_png_beside_curves_png(one_epoch):
    _, run = one_epoch
    assert_png(run / "confusion.png")
    assert (run / "confusion.png").stat().st_mode & 0o777 == 0o600


def test_a_long_epoch_keeps_at_most_50_points_ending_at_its_last_step(tmp_path):
    spec = spec_file(tmp_path, SMALL)
    result = invoke("train", spec, "--dataset", "synthetic", "--batch-size", "8", "--epochs", "1",
                    "--out", tmp_path / "run")  # 2048 images: 256 steps
    assert result.exit_code == 0, result.output
    (record,) = records(tmp_path / "run")
    steps = [step for step, _ in record["step_losses"]]
    assert steps == list(range(6, 256, 6)) + [256]  # stretches of ceil(256 / 50) = 6 steps
    assert all(0 < loss < 10 for _, loss in record["step_losses"])


def test_resume_keeps_each_epochs_step_losses_once_and_as_a_straight_run_has_them(tmp_path):
    spec = spec_file(tmp_path, SMALL)
    straight = invoke("train", spec, *SYNTHETIC, "--epochs", "2", "--out", tmp_path / "straight")
    assert straight.exit_code == 0, straight.output
    first = invoke("train", spec, *SYNTHETIC, "--epochs", "1", "--out", tmp_path / "split")
    assert first.exit_code == 0, first.output
    resumed = invoke("train", spec, "--resume", tmp_path / "split", "--epochs", "2")
    assert resumed.exit_code == 0, resumed.output
    split = records(tmp_path / "split")
    assert [r["epoch"] for r in split] == [1, 2]
    for record in split:
        assert [step for step, _ in record["step_losses"]] == list(range(1, STEPS + 1))
    assert [r["step_losses"] for r in split] == \
        [r["step_losses"] for r in records(tmp_path / "straight")]
    assert loss_points(archdsl.load_run(tmp_path / "split").plot()) == 2 * STEPS


def test_overwrite_deletes_confusion_png_with_the_runs_other_files(tmp_path):
    spec = spec_file(tmp_path, SMALL)
    run = tmp_path / "run"
    assert invoke("train", spec, *SYNTHETIC, "--epochs", "1", "--out", run).exit_code == 0
    assert (run / "confusion.png").is_file()
    failed = invoke("train", spec, *SYNTHETIC, "--optimizer", "sgd", "--lr", "1e30",
                    "--epochs", "2", "--out", run, "--overwrite")  # NaN in its first epoch
    assert failed.exit_code == 1, failed.output
    assert not (run / "confusion.png").exists() and not (run / "curves.png").exists()


def test_the_confusion_figure_names_the_classes_and_counts_every_cell():
    confusion = [[0] * 10 for _ in range(10)]
    for i in range(10):
        confusion[i][i], confusion[i][(i + 1) % 10] = 90, 10
    axis = confusion_figure(confusion, FASHION_CLASSES).axes[0]
    assert [t.get_text() for t in axis.get_xticklabels()] == FASHION_CLASSES
    assert [t.get_text() for t in axis.get_yticklabels()] == FASHION_CLASSES
    assert "900 of 1,000 right (90.00%)" in axis.get_title()
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
             for t in axis.texts}
    assert len(cells) == 100 and cells[(3, 3)] == "90" and cells[(3, 4)] == "10"
    assert cells[(3, 5)] == "0"


def test_the_readme_names_confusion_png_where_it_describes_the_run_directory():
    text = (ROOT / "README.md").read_text()
    paragraph = next(p for p in re.split(r"\n\s*\n", text) if "`curves.png`" in p)
    assert "`confusion.png`" in paragraph, paragraph


def test_a_record_from_before_step_losses_still_draws():
    old = {"epoch": 1, "train_loss": 0.5, "train_accuracy": 0.8, "val_loss": None,
           "val_accuracy": None, "seconds": 1.0, "images_per_s": 10.0, "lr": 0.001}
    assert loss_points(curves_figure([old, {**old, "epoch": 2}])) == 2
