"""The training loop through the library API: learning, the run directory, exact resume,
early stopping and the validation split."""
import json
import math
from pathlib import Path

import pytest
import torch

from archdsl.analysis import analyze
from archdsl.errors import RunError
from archdsl.train.config import TrainConfig, resumed_config
from archdsl.train.loop import train
from archdsl.train.setup import split_indices

from fashion import HAVE_FASHION, NO_FASHION, SHARED

SMALL = "input 1x28x28\nConv(8, 3, p=1) -> ReLU -> MaxPool(2) -> Flatten -> Linear(10)\n"
DROPOUT = ("input 1x28x28\nConv(8, 3, p=1) -> ReLU -> MaxPool(2) -> Dropout(0.3) -> Flatten "
           "-> Linear(10)\n")
PNG = b"\x89PNG\r\n\x1a\n"


def run(spec: str, out: Path, *, resume: bool = False, overwrite: bool = False, echo=None,
        **settings):
    config = resumed_config(out, settings) if resume else TrainConfig(**settings)
    lines = []
    result = train(analyze(spec), spec, config, out, resume=resume, overwrite=overwrite,
                   show_progress=False, echo=echo or lines.append)
    return result, lines


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def without_timing(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in history]


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """3 epochs on the first 4096 Fashion-MNIST images, 10% held out, every other setting default."""
    if not HAVE_FASHION:
        pytest.skip(NO_FASHION)
    out = tmp_path_factory.mktemp("learned") / "run"
    result, lines = run(SMALL, out, data_dir=str(SHARED), epochs=3, subset=4096, val_split=0.1)
    return result, lines, out


# --- 1. learning ---------------------------------------------------------------------------------

def test_a_small_real_subset_is_learned(learned):
    result, lines, _ = learned
    first, *_, last = result.history
    assert len(result.history) == 3
    assert last["train_loss"] < 0.8 * first["train_loss"]  # ~1.2 -> ~0.6 when the loop works
    assert last["val_loss"] < first["val_loss"]
    assert last["train_accuracy"] > first["train_accuracy"]
    assert last["val_accuracy"] > 0.6
    assert result.test is not None and int(result.test.confusion.sum()) == 10_000
    assert result.test.accuracy > 0.6  # chance is 0.1; a working loop reaches ~0.78
    assert result.test.loss < 1.0 < math.log(10)
    assert any(line.startswith("test accuracy") for line in lines)


# --- 2. the run directory ------------------------------------------------------------------------

def test_run_directory_holds_spec_config_metrics_checkpoints_and_curves(learned):
    result, _, out = learned
    assert (out / "spec.spec").read_text() == SMALL

    config = json.loads((out / "config.json").read_text())
    assert config["batch_size"] == 64 and config["optimizer"] == "adam" and config["lr"] == 0.001
    assert config["epochs"] == 3 and config["subset"] == 4096 and config["val_split"] == 0.1
    assert config["scheduler"] == "none" and config["seed"] == 0
    assert config["train_examples"] == 4096 - 410 and config["val_examples"] == 410
    assert config["params"] == 15_770 and config["device_used"] == "cpu"

    metrics = records(out)
    assert [r["epoch"] for r in metrics] == [1, 2, 3]
    assert without_timing(metrics) == without_timing(result.history)
    for record in metrics:
        assert 0 < record["train_loss"] < 5 and 0 <= record["train_accuracy"] <= 1
        assert 0 < record["val_loss"] < 5 and 0 <= record["val_accuracy"] <= 1
        assert record["lr"] == 0.001 and record["seconds"] > 0

    last, best = load(out / "last.pt"), load(out / "best.pt")
    for state in (last, best):
        assert {"model", "optimizer", "scheduler", "epoch", "rng", "history"} <= state.keys()
        assert state["scheduler"] is None  # no schedule in this run
        assert state["rng"]["torch"].dtype == torch.uint8
        assert state["optimizer"]["param_groups"][0]["lr"] == 0.001
        assert len(state["optimizer"]["state"]) == 4  # Adam moments for 2 weights + 2 biases
        assert set(state["model"]) == {"conv.weight", "conv.bias", "linear.weight", "linear.bias"}
    assert last["epoch"] == 3 and last["config"]["epochs"] == 3
    # best.pt is the epoch of the lowest validation loss
    assert best["epoch"] == min(metrics, key=lambda r: r["val_loss"])["epoch"]
    assert best["best"] == min(r["val_loss"] for r in metrics)

    curves = (out / "curves.png").read_bytes()
    assert curves.startswith(PNG) and len(curves) > 1000
    assert not list(out.glob(".*.tmp"))  # no temporary files left behind


# --- 3. exact resume -----------------------------------------------------------------------------

class Killed(Exception):
    pass


def kill_after(epoch: int):
    """An echo that dies right after the given epoch's line: as if the process were killed there."""
    def echo(line: str):
        if line.startswith(f"epoch {epoch}/"):
            raise Killed(line)
    return echo


RESUMABLE = dict(dataset="synthetic", subset=256, batch_size=32, val_split=0.25, epochs=3,
                 scheduler="onecycle", lr=0.01, seed=3)


def test_resume_after_a_kill_gives_identical_weights_with_dropout_and_onecycle(tmp_path):
    whole, _ = run(DROPOUT, tmp_path / "whole", **RESUMABLE)
    with pytest.raises(Killed):
        run(DROPOUT, tmp_path / "split", echo=kill_after(1), **RESUMABLE)
    after_one = load(tmp_path / "split" / "last.pt")
    assert after_one["epoch"] == 1 and len(records(tmp_path / "split")) == 1
    assert after_one["scheduler"]["total_steps"] == 3 * 6  # 192 images / 32  # planned for the whole run

    resumed, lines = run(DROPOUT, tmp_path / "split", resume=True)
    assert lines[0] == f"resuming {tmp_path / 'split'} after epoch 1"
    a, b = load(tmp_path / "whole" / "last.pt"), load(tmp_path / "split" / "last.pt")
    assert a["epoch"] == b["epoch"] == 3
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
        assert not torch.equal(tensor, after_one["model"][name]), name  # it did train on
    assert a["scheduler"] == b["scheduler"]
    for key, moments in a["optimizer"]["state"].items():
        assert torch.equal(moments["exp_avg"], b["optimizer"]["state"][key]["exp_avg"])
    assert without_timing(records(tmp_path / "whole")) == without_timing(records(tmp_path / "split"))
    assert resumed.test.accuracy == whole.test.accuracy and resumed.test.loss == whole.test.loss


def test_resume_refuses_to_stretch_a_schedule_planned_for_fewer_epochs(tmp_path):
    out = tmp_path / "run"
    run(DROPOUT, out, **{**RESUMABLE, "epochs": 1})
    before = (out / "config.json").read_text()
    with pytest.raises(RunError, match=r"onecycle schedule was planned for 6 steps.* 18"):
        run(DROPOUT, out, resume=True, epochs=3)
    with pytest.raises(RunError, match="trained with --scheduler onecycle"):
        run(DROPOUT, out, resume=True, scheduler="cosine")
    assert (out / "config.json").read_text() == before  # a refused resume changes nothing
    assert load(out / "last.pt")["epoch"] == 1


def test_resume_with_another_spec_is_a_clear_error(tmp_path):
    out = tmp_path / "run"
    run(SMALL, out, dataset="synthetic", subset=128, epochs=1)
    other = SMALL.replace("Conv(8", "Conv(4")
    with pytest.raises(RunError, match="does not fit this spec"):
        run(other, out, resume=True, epochs=2)


def test_resume_needs_a_completed_epoch(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(RunError, match="no last.pt"):
        resumed_config(tmp_path, {})


# --- 10. early stopping and the validation split -------------------------------------------------

def test_early_stopping_stops_at_the_first_epoch_without_a_better_validation_loss(tmp_path):
    # synthetic labels are random: validation loss cannot keep improving while training overfits
    patience, epochs = 2, 40
    out = tmp_path / "run"
    result, lines = run(SMALL, out, dataset="synthetic", subset=256, val_split=0.25,
                        early_stopping=patience, lr=0.01, epochs=epochs, seed=1)
    history = records(out)
    assert len(history) < epochs and len(history) == len(result.history)
    stale, best, stop = 0, math.inf, None
    for record in history:
        best, stale = (record["val_loss"], 0) if record["val_loss"] < best else (best, stale + 1)
        if stale >= patience:
            stop = record["epoch"]
            break
    assert stop == history[-1]["epoch"]  # stopped exactly when patience ran out, not before
    assert f"early stopping: validation loss has not improved for {patience} epochs" in lines
    assert load(out / "last.pt")["epoch"] == stop
    assert load(out / "best.pt")["epoch"] == min(history, key=lambda r: r["val_loss"])["epoch"]
    assert stop - load(out / "best.pt")["epoch"] == patience


def test_early_stopping_needs_a_validation_split(tmp_path):
    result, lines = run(SMALL, tmp_path / "run", dataset="synthetic", subset=128, lr=0.05,
                        early_stopping=1, epochs=4)
    assert len(result.history) == 4 and not any("early stopping" in line for line in lines)


@pytest.mark.parametrize("count,subset,fraction,held", [(1000, 0, 0.1, 100), (60000, 4096, 0.1, 410),
                                                        (50, 0, 0.001, 1), (10, 0, 0.9, 9)])
def test_split_indices_are_disjoint_complete_and_seeded(count, subset, fraction, held):
    config = TrainConfig(subset=subset, val_split=fraction, seed=5)
    train_part, val_part = split_indices(count, config)
    used = min(count, subset) if subset else count
    assert len(val_part) == held and len(train_part) == used - held
    assert sorted(torch.cat([train_part, val_part]).tolist()) == list(range(used))
    assert torch.equal(train_part, train_part.sort().values)
    again = split_indices(count, config)
    assert torch.equal(again[0], train_part) and torch.equal(again[1], val_part)
    other = split_indices(count, config.replace(seed=6))
    if 1 < held < used - 1:
        assert not torch.equal(other[1], val_part)


def test_split_indices_without_validation():
    assert split_indices(100, TrainConfig()) == (None, None)
    train_part, val_part = split_indices(100, TrainConfig(subset=30))
    assert val_part is None and train_part.tolist() == list(range(30))
    assert split_indices(20, TrainConfig(subset=30))[0].tolist() == list(range(20))


def test_links_planted_in_the_run_directory_are_replaced_not_written_through(tmp_path):
    out, victim = tmp_path / "run", tmp_path / "victim"
    out.mkdir()
    victim.write_text("precious\n")
    planted = ["spec.spec", "config.json", "metrics.jsonl", "curves.png", "last.pt", "best.pt",
               ".last.pt.tmp", ".spec.spec.tmp", ".curves.png.tmp", ".metrics.jsonl.tmp"]
    for name in planted:
        (out / name).symlink_to(victim)
    # Links named like a run's files make the directory hold a run: refused, nothing touched.
    with pytest.raises(RunError, match="holds a run already"):
        run(SMALL, out, dataset="synthetic", subset=64, epochs=1)
    assert victim.read_text() == "precious\n"
    # --overwrite deletes those names (the links, not what they point to), then writes afresh.
    run(SMALL, out, overwrite=True, dataset="synthetic", subset=64, epochs=1)
    assert victim.read_text() == "precious\n"
    for name in ["spec.spec", "config.json", "metrics.jsonl", "curves.png", "last.pt", "best.pt"]:
        assert not (out / name).is_symlink() and (out / name).stat().st_size > 0, name
        assert (out / name).stat().st_mode & 0o777 == 0o600, name  # private to the user
    assert (out / "spec.spec").read_text() == SMALL
    assert load(out / "last.pt")["epoch"] == 1
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp") and not p.is_symlink()]


def test_a_new_run_directory_is_private(tmp_path):
    run(SMALL, tmp_path / "new" / "run", dataset="synthetic", subset=64, epochs=1)
    assert (tmp_path / "new" / "run").stat().st_mode & 0o777 == 0o700
