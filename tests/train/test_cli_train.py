"""`archdsl train` and `archdsl eval` end to end: resume, Ctrl-C, NaN, data and device errors,
evaluation output."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from archdsl.cli import app
from archdsl.train import data, loop
from archdsl.train.data import FASHION_CLASSES

ROOT = Path(__file__).resolve().parents[2]
from fashion import HAVE_FASHION, NO_FASHION, SHARED, needs_fashion

SMALL = "input 1x28x28\nConv(8, 3, p=1) -> ReLU -> MaxPool(2) -> Flatten -> Linear(10)\n"
DROPOUT = ("input 1x28x28\nConv(8, 3, p=1) -> ReLU -> MaxPool(2) -> Dropout(0.3) -> Flatten "
           "-> Linear(10)\n")
SYNTHETIC = ["--dataset", "synthetic", "--subset", "256"]

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def spec_file(tmp_path: Path, text: str, name: str = "net.spec") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def without_timing(history):
    return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in history]


def assert_clean_failure(result, code: int):
    """Exit `code` with a message on stderr and no traceback anywhere."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.stderr.strip()


def assert_same_weights(a: Path, b: Path):
    first, second = load(a), load(b)
    assert first["model"].keys() == second["model"].keys()
    for name, tensor in first["model"].items():
        assert torch.equal(tensor, second["model"][name]), name


# --- 3. resume through the command line ----------------------------------------------------------

def test_cli_resume_with_more_epochs_gives_identical_weights(tmp_path):
    spec = spec_file(tmp_path, DROPOUT)
    common = [*SYNTHETIC, "--val-split", "0.25", "--scheduler", "step",
              "--seed", "7", "--batch-size", "32"]
    whole = invoke("train", spec, *common, "--epochs", "3", "--out", tmp_path / "whole")
    assert whole.exit_code == 0, whole.output
    first = invoke("train", spec, *common, "--epochs", "1", "--out", tmp_path / "split")
    assert first.exit_code == 0, first.output
    after_one = load(tmp_path / "split" / "last.pt")
    resumed = invoke("train", spec, "--resume", tmp_path / "split", "--epochs", "3")
    assert resumed.exit_code == 0, resumed.output
    assert f"resuming {tmp_path / 'split'} after epoch 1" in resumed.stdout
    assert "epoch 1/" not in resumed.stdout and "epoch 3/3" in resumed.stdout

    assert load(tmp_path / "split" / "last.pt")["epoch"] == 3
    assert_same_weights(tmp_path / "whole" / "last.pt", tmp_path / "split" / "last.pt")
    assert not torch.equal(after_one["model"]["conv.weight"],
                           load(tmp_path / "split" / "last.pt")["model"]["conv.weight"])
    assert without_timing(records(tmp_path / "whole")) == without_timing(records(tmp_path / "split"))
    config = json.loads((tmp_path / "split" / "config.json").read_text())
    assert config["epochs"] == 3 and config["scheduler"] == "step" and config["seed"] == 7
    assert config["val_split"] == 0.25 and config["batch_size"] == 32  # kept from the first run
    assert whole.stdout.splitlines()[-2] == resumed.stdout.splitlines()[-2]  # same test accuracy


def test_cli_resume_that_would_stretch_a_onecycle_schedule_is_refused(tmp_path):
    spec = spec_file(tmp_path, SMALL)
    run = tmp_path / "run"
    assert invoke("train", spec, *SYNTHETIC, "--scheduler", "onecycle", "--epochs", "1",
                  "--out", run).exit_code == 0
    result = invoke("train", spec, "--resume", run, "--epochs", "3")
    assert_clean_failure(result, 2)
    assert "onecycle schedule was planned for 4 steps" in result.stderr
    assert load(run / "last.pt")["epoch"] == 1 and len(records(run)) == 1


def test_cli_resume_of_a_run_without_checkpoint_is_a_clear_error(tmp_path):
    spec = spec_file(tmp_path, SMALL)
    (tmp_path / "empty").mkdir()
    result = invoke("train", spec, "--resume", tmp_path / "empty")
    assert_clean_failure(result, 2)
    assert "no last.pt" in result.stderr


def test_cli_resume_of_a_missing_directory_says_it_does_not_exist(tmp_path):
    spec = spec_file(tmp_path, SMALL)
    result = invoke("train", spec, "--resume", tmp_path / "nothing-here")
    assert_clean_failure(result, 2)
    assert f"cannot resume {tmp_path / 'nothing-here'}: there is no such directory" \
        in result.stderr
    assert not (tmp_path / "nothing-here").exists()


def start_training(spec: Path, run: Path, options: list) -> subprocess.Popen:
    """`archdsl train` in a process of its own, for (nearly) ever."""
    return subprocess.Popen(
        [sys.executable, "-m", "archdsl", "train", str(spec), *map(str, options),
         "--epochs", "100000", "--out", str(run)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})


def wait_for_an_epoch(process: subprocess.Popen, run: Path) -> None:
    deadline = time.monotonic() + 60
    while not ((run / "metrics.jsonl").is_file() and (run / "metrics.jsonl").read_text()):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no epoch completed within 60 s"
        time.sleep(0.05)


# --- 4. Ctrl-C and SIGTERM ------------------------------------------------------------------------

@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_signal_saves_a_resumable_checkpoint_and_exits_128_plus_it(tmp_path, signum, code):
    spec = spec_file(tmp_path, DROPOUT)
    run = tmp_path / "run"
    options = [*SYNTHETIC, "--seed", "4"]
    process = start_training(spec, run, options)
    try:
        wait_for_an_epoch(process, run)
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    assert f"interrupted by {signal.Signals(signum).name} in epoch" in stderr
    assert f"archdsl train {spec} --resume {run}" in stderr
    state = load(run / "last.pt")
    done = state["epoch"]
    assert done >= 1 and len(records(run)) == done  # checkpoint and metrics agree
    assert all(torch.isfinite(t).all() for t in state["model"].values())
    assert not list(run.glob(".*.tmp"))

    # resuming continues after the saved epoch and lands where an uninterrupted run does
    resumed = invoke("train", spec, "--resume", run, "--epochs", done + 1)
    assert resumed.exit_code == 0, resumed.output
    assert f"after epoch {done}" in resumed.stdout
    assert [r["epoch"] for r in records(run)] == list(range(1, done + 2))
    straight = invoke("train", spec, *options, "--epochs", done + 1, "--out", tmp_path / "straight")
    assert straight.exit_code == 0, straight.output
    assert_same_weights(tmp_path / "straight" / "last.pt", run / "last.pt")


# --- 5. NaN --------------------------------------------------------------------------------------

class NanOnCall:
    """torch.nn.functional, except that the n-th cross_entropy is NaN (and still differentiable)."""

    def __init__(self, n: int):
        self.n, self.calls = n, 0

    def __getattr__(self, name):
        return getattr(torch.nn.functional, name)

    def cross_entropy(self, *args, **kwargs):
        self.calls += 1
        loss = torch.nn.functional.cross_entropy(*args, **kwargs)
        return loss * float("nan") if self.calls == self.n else loss


def test_nan_loss_stops_with_epoch_and_step_and_keeps_earlier_checkpoints(tmp_path, monkeypatch):
    spec = spec_file(tmp_path, SMALL)
    clean = invoke("train", spec, *SYNTHETIC, "--epochs", "1", "--out", tmp_path / "clean")
    assert clean.exit_code == 0, clean.output

    patched = NanOnCall(4 + 3)  # 256 images in batches of 64: 4 steps an epoch -> epoch 2, step 3
    monkeypatch.setattr(loop, "F", patched)
    run = tmp_path / "run"
    result = invoke("train", spec, *SYNTHETIC, "--epochs", "3", "--out", run)
    assert_clean_failure(result, 1)
    assert "epoch 2 at step 3" in result.stderr and "NaN" in result.stderr
    assert patched.calls == 7  # stopped at once, not after more steps
    assert "epoch 1/3" in result.stdout and "epoch 2/3" not in result.stdout

    for name in ("last.pt", "best.pt"):
        assert load(run / name)["epoch"] == 1
    assert_same_weights(tmp_path / "clean" / "last.pt", run / "last.pt")  # epoch 1, untouched
    assert len(records(run)) == 1 and records(run)[0]["val_loss"] is None
    assert not (run / "curves.png").exists()


def test_huge_learning_rate_ends_in_a_clean_nan_error(tmp_path):
    spec = spec_file(tmp_path, SMALL)
    result = invoke("train", spec, *SYNTHETIC, "--optimizer", "sgd", "--lr", "1e30",
                    "--epochs", "3", "--out", tmp_path / "run")
    assert_clean_failure(result, 1)
    assert "the loss became NaN or infinite in epoch" in result.stderr


# --- 6. 7. 8. errors before training -------------------------------------------------------------

def test_missing_data_lists_every_place_looked(tmp_path, monkeypatch):
    empty, env, cwd = tmp_path / "empty", tmp_path / "env", tmp_path / "cwd"
    for folder in (empty, env, cwd):
        folder.mkdir()
    monkeypatch.setenv("ARCHDSL_DATA", str(env))
    monkeypatch.chdir(cwd)
    monkeypatch.setitem(data.DEBIAN_DIRS, "fashion-mnist", tmp_path / "debian")
    attempts = []

    def no_network(root, **kwargs):
        attempts.append(root)
        raise OSError("network disabled in tests")

    import torchvision.datasets
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", no_network)
    spec = spec_file(tmp_path, SMALL)
    result = invoke("train", spec, "--dataset", "fashion-mnist", "--data-dir", empty,
                    "--epochs", "1", "--out", tmp_path / "run")
    assert_clean_failure(result, 2)
    message = result.stderr
    assert "fashion-mnist not found" in message.splitlines()[0]
    for place, origin in ((empty, "--data-dir"), (env, "$ARCHDSL_DATA"), (cwd / "data", "./data"),
                          (tmp_path / "debian", "Debian package location")):
        assert f"{place / 'FashionMNIST' / 'raw'}  [{origin}]" in message, place
    assert "network disabled in tests" in message and "hint:" in message
    assert len(attempts) == 1
    assert list(empty.iterdir()) == []  # the failed download left nothing behind
    assert not (tmp_path / "run").exists()


@needs_fashion
@pytest.mark.parametrize("text,words", [
    ("input 3x32x32\nConv(8, 3, p=1) -> ReLU -> MaxPool(2) -> Flatten -> Linear(10)\n",
     ["3×32×32", "1×28×28"]),
    ("input 1x28x28\nFlatten -> Linear(5)\n", ["5 outputs", "10 classes"]),
])
def test_spec_that_does_not_fit_the_data_fails_before_training(tmp_path, text, words):
    result = invoke("train", spec_file(tmp_path, text), "--data-dir", SHARED, "--epochs", "1",
                    "--out", tmp_path / "run")
    assert_clean_failure(result, 2)
    assert all(word in result.stderr for word in words), result.stderr
    assert "training" not in result.stdout
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_device_without_cuda_is_a_one_line_error(tmp_path):
    result = invoke("train", spec_file(tmp_path, SMALL), *SYNTHETIC, "--device", "cuda",
                    "--out", tmp_path / "run")
    assert_clean_failure(result, 2)
    first, *rest = result.stderr.strip().splitlines()
    assert first == "error: --device cuda: CUDA is not available on this machine"
    assert all(line.startswith("hint:") for line in rest)
    assert not (tmp_path / "run").exists()


# --- 9. eval -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fashion_run(tmp_path_factory):
    if not HAVE_FASHION:
        pytest.skip(NO_FASHION)
    folder = tmp_path_factory.mktemp("fashion")
    spec = spec_file(folder, SMALL)
    result = invoke("train", spec, "--data-dir", SHARED, "--subset", "2048", "--epochs", "1",
                    "--out", folder / "run")
    assert result.exit_code == 0, result.output
    return spec, folder / "run", result.stdout


def test_eval_prints_accuracy_per_class_and_confusion(fashion_run):
    spec, run, _ = fashion_run
    result = invoke("eval", spec, "--checkpoint", run / "best.pt", "--data-dir", SHARED)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("fashion-mnist test split: accuracy ")
    assert "on 10,000 images" in text and "(epoch 1)" in text
    for name in FASHION_CLASSES:
        assert name in text
    assert "Ankle boot" in text and "true \\ predicted" in text
    assert "9 Ankle boot" in text  # a confusion-matrix row


def test_eval_json_confusion_matrix_matches_accuracy(fashion_run):
    spec, run, train_output = fashion_run
    result = invoke("eval", spec, "--checkpoint", run / "best.pt", "--data-dir", SHARED,
                    "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    confusion = torch.tensor(report["confusion"])
    assert confusion.shape == (10, 10) and report["classes"] == FASHION_CLASSES
    total = int(confusion.sum())
    assert total == report["examples"] == 10_000
    assert confusion.sum(1).tolist() == [1000] * 10  # the test split is balanced
    assert report["accuracy"] == pytest.approx(int(confusion.trace()) / total, abs=1e-12)
    assert report["per_class"] == pytest.approx((confusion.diag() / 1000).tolist(), abs=1e-12)
    assert report["accuracy"] > 0.5  # one epoch on 2048 images; chance is 0.1
    assert report["epoch"] == 1
    # the same model the training run evaluated at its end (1 epoch: best.pt is last.pt)
    assert f"test accuracy {report['accuracy']:.2%} on 10,000 images" in train_output


def test_eval_of_a_missing_checkpoint_is_a_clear_error(tmp_path):
    result = invoke("eval", spec_file(tmp_path, SMALL), "--checkpoint", tmp_path / "no.pt")
    assert_clean_failure(result, 2)
    assert "does not exist" in result.stderr
    result = invoke("eval", spec_file(tmp_path, SMALL))
    assert_clean_failure(result, 2)
    assert "which checkpoint? give --checkpoint" in result.stderr


def test_eval_takes_a_run_directory_for_its_spec_and_best_checkpoint(tmp_path):
    spec = spec_file(tmp_path, DROPOUT)
    run = tmp_path / "run"
    assert invoke("train", spec, *SYNTHETIC, "--epochs", "2", "--out", run).exit_code == 0
    by_file = invoke("eval", spec, "--checkpoint", run / "best.pt", "--format", "json")
    by_checkpoint_dir = invoke("eval", spec, "--checkpoint", run, "--format", "json")
    by_run = invoke("eval", run, "--format", "json")
    for result in (by_file, by_checkpoint_dir, by_run):
        assert result.exit_code == 0, result.output
    report = json.loads(by_run.stdout)
    assert report["checkpoint"] == str(run / "best.pt")
    assert report["epoch"] == load(run / "best.pt")["epoch"]
    assert json.loads(by_file.stdout) == json.loads(by_checkpoint_dir.stdout) == report
    # the run's last.pt still comes by name, with the run's own spec
    last = invoke("eval", run, "--checkpoint", run / "last.pt", "--format", "json")
    assert json.loads(last.stdout)["epoch"] == 2


def test_eval_of_a_directory_that_is_no_run_is_a_clear_error(tmp_path):
    (tmp_path / "folder").mkdir()
    result = invoke("eval", tmp_path / "folder")
    assert_clean_failure(result, 2)
    assert f"{tmp_path / 'folder'} is a directory without spec.spec" in result.stderr
    result = invoke("eval", spec_file(tmp_path, SMALL), "--checkpoint", tmp_path / "folder")
    assert_clean_failure(result, 2)
    assert f"{tmp_path / 'folder'} has no best.pt, and it is not a run directory" in result.stderr


def test_eval_with_another_spec_is_a_clear_error(tmp_path):
    spec = spec_file(tmp_path, SMALL)
    assert invoke("train", spec, *SYNTHETIC, "--epochs", "1", "--out", tmp_path / "run").exit_code == 0
    other = spec_file(tmp_path, SMALL.replace("Linear(10)", "Linear(32) -> Linear(10)"), "other.spec")
    result = invoke("eval", other, "--checkpoint", tmp_path / "run" / "last.pt")
    assert_clean_failure(result, 2)
    assert "does not fit this spec" in result.stderr


def test_a_damaged_checkpoint_is_a_clear_error_for_eval_and_resume(tmp_path):
    spec = spec_file(tmp_path, SMALL)
    run = tmp_path / "run"
    assert invoke("train", spec, *SYNTHETIC, "--epochs", "1", "--out", run).exit_code == 0
    result = invoke("eval", spec, "--checkpoint", spec)  # a text file, not a checkpoint
    assert_clean_failure(result, 2)
    assert f"error: {spec} is not an archdsl checkpoint: it is a file not written by " \
           f"torch.save" in result.stderr
    last = run / "last.pt"
    last.write_bytes(last.read_bytes()[:4000])  # cut short
    result = invoke("train", spec, "--resume", run, "--epochs", "2")
    assert_clean_failure(result, 2)
    assert f"error: cannot read checkpoint {last}: the file is truncated or damaged" \
           in result.stderr


def test_a_final_softmax_is_a_warning_at_train(tmp_path):
    # The tutorial's point: cross-entropy applies log-softmax itself, so the network ends in
    # logits. The run goes on; `check`, which trains nothing, says nothing.
    text = "input 1x28x28\nFlatten -> Linear(10)\n  -> Softmax\n"
    path = spec_file(tmp_path, text)
    result = invoke("train", path, *SYNTHETIC, "--epochs", "1", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    lines = result.stderr.split("\n")
    assert f"{path}:3:6: warning: the network ends in Softmax, but training uses cross-entropy, " \
           f"which applies log-softmax itself: drop the final Softmax and train on the logits" \
           in lines, result.stderr
    at = lines.index(next(line for line in lines if ": warning: " in line))
    assert lines[at + 1:at + 4] == [
        "    -> Softmax", "       ^^^^^^^",
        "hint: the trained outputs are then logits; their softmax gives the probabilities"]
    assert invoke("check", path).stderr == ""


def test_softmax_before_the_end_is_no_loss_warning():
    from archdsl import analyze
    assert loop.loss_warnings(analyze("input 1x28x28\nSoftmax -> Flatten -> Linear(10)\n")) == ()
    (warning,) = loop.loss_warnings(analyze("input 4\nLinear(10) -> Softmax\n"))
    assert (warning.span.line, warning.span.column) == (2, 15)


# --- options and faults that must exit 2 with one message, never a traceback ------------------

def _clean_exit_2(result, message):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and message in result.output, result.output


def test_a_seed_out_of_range_is_refused(tmp_path):
    spec = spec_file(tmp_path, SMALL)
    _clean_exit_2(invoke("train", spec, *SYNTHETIC, "--seed", 2 ** 63, "--out", tmp_path / "r"),
                  "less than or equal to 4294967295")
    spec = spec_file(tmp_path, "train(seed=99999999999)\n" + SMALL, "seeded.spec")
    _clean_exit_2(invoke("train", spec, *SYNTHETIC, "--out", tmp_path / "r"),
                  "'seed' must be an integer from 0 to 4294967295, got 99999999999")


def test_an_empty_training_split_is_refused(tmp_path):
    spec = spec_file(tmp_path, SMALL)
    _clean_exit_2(invoke("train", spec, "--dataset", "synthetic", "--subset", 1, "--val-split",
                         0.9, "--out", tmp_path / "r"),
                  "error: no examples are left to train on: --val-split 0.9 holds out all 1 of "
                  "--subset 1")


def test_an_out_that_is_a_file_is_refused(tmp_path):
    spec, taken = spec_file(tmp_path, SMALL), tmp_path / "taken"
    taken.write_text("")
    _clean_exit_2(invoke("train", spec, *SYNTHETIC, "--epochs", 1, "--out", taken),
                  f"error: cannot make the run directory {taken}: File exists")
    _clean_exit_2(invoke("train", spec, *SYNTHETIC, "--epochs", 1, "--out", taken / "run"),
                  f"error: cannot make the run directory {taken / 'run'}: Not a directory")


def test_a_full_disk_during_a_checkpoint_write_is_one_message(tmp_path, monkeypatch):
    import errno
    from archdsl import files

    def full(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full)
    spec, out = spec_file(tmp_path, SMALL), tmp_path / "run"
    _clean_exit_2(invoke("train", spec, *SYNTHETIC, "--epochs", 1, "--out", out),
                  f"error: cannot write {out / 'spec.spec'}: No space left on device")
    assert not out.exists()  # the temporary file removed, then the directory the run made


def test_damaged_run_files_at_resume_and_eval_are_one_message(tmp_path):
    spec, out = spec_file(tmp_path, SMALL), tmp_path / "run"
    assert invoke("train", spec, *SYNTHETIC, "--epochs", 1, "--out", out).exit_code == 0
    state = torch.load(out / "last.pt", weights_only=True)
    torch.save(state["model"], tmp_path / "bare.pt")  # a bare state_dict
    evaluated = invoke("eval", spec, "--checkpoint", tmp_path / "bare.pt", "--dataset",
                       "synthetic")
    assert evaluated.exit_code == 0, evaluated.output
    del state["optimizer"]
    torch.save(state, out / "last.pt")
    resumed = invoke("train", spec, "--resume", out, "--epochs", 2)
    assert resumed.exit_code == 2 and "Traceback" not in resumed.output, resumed.output
    (out / "config.json").write_text("{not json")
    resumed = invoke("train", spec, "--resume", out, "--epochs", 2)
    assert resumed.exit_code == 2 and "Traceback" not in resumed.output, resumed.output
    (out / "config.json").unlink()
    resumed = invoke("train", spec, "--resume", out, "--epochs", 2)
    assert resumed.exit_code == 2 and "Traceback" not in resumed.output, resumed.output
