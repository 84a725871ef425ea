"""Run directories (archdsl/train/runs.py) through `archdsl train`: an existing run is not
overwritten by accident, two trainings cannot share a directory, a resumed run keeps its spec,
and progress shows as plain lines where standard error is not a terminal."""
import io
import json
import re
import signal

import torch

import archdsl
from archdsl.train import runs
from archdsl.train.progress import EpochProgress
from test_cli_train import (DROPOUT, SMALL, SYNTHETIC, assert_clean_failure, invoke, load,
                            records, spec_file, start_training, wait_for_an_epoch)


def test_out_naming_an_existing_run_is_refused_without_overwrite(tmp_path):
    spec = spec_file(tmp_path, SMALL)
    run = tmp_path / "run"
    assert invoke("train", spec, *SYNTHETIC, "--epochs", "1", "--out", run).exit_code == 0
    before = (run / "last.pt").read_bytes()
    result = invoke("train", spec, *SYNTHETIC, "--epochs", "1", "--out", run)
    assert_clean_failure(result, 2)
    assert result.stderr.splitlines()[0] == (
        f"error: {run} holds a run already (spec.spec, config.json, metrics.jsonl, last.pt, "
        "best.pt, curves.png); training into it would overwrite it")
    assert f"continue it with --resume {run}" in result.stderr and "--overwrite" in result.stderr
    assert (run / "last.pt").read_bytes() == before and len(records(run)) == 1


def test_overwrite_deletes_the_old_runs_files_and_nothing_else(tmp_path):
    spec = spec_file(tmp_path, SMALL)
    run = tmp_path / "run"
    assert invoke("train", spec, *SYNTHETIC, "--epochs", "2", "--out", run).exit_code == 0
    (run / "notes.txt").write_text("mine")
    # the new run fails in its first epoch: nothing of the old one may be left to resume
    result = invoke("train", spec, *SYNTHETIC, "--optimizer", "sgd", "--lr", "1e30",
                    "--epochs", "3", "--out", run, "--overwrite")
    assert_clean_failure(result, 1)
    assert sorted(p.name for p in run.iterdir()) == [".lock", "config.json", "notes.txt",
                                                     "spec.spec"]
    assert invoke("train", spec, *SYNTHETIC, "--epochs", "1", "--out", run,
                  "--overwrite").exit_code == 0
    assert [r["epoch"] for r in records(run)] == [1] and load(run / "last.pt")["epoch"] == 1


def test_an_empty_existing_directory_is_no_run_and_is_trained_into(tmp_path):
    spec = spec_file(tmp_path, SMALL)
    (tmp_path / "run").mkdir()
    assert invoke("train", spec, *SYNTHETIC, "--epochs", "1", "--out",
                  tmp_path / "run").exit_code == 0


def test_a_second_training_into_a_run_in_training_is_refused(tmp_path):
    """A real first training in its own process; the second one, of each kind, is refused
    while it runs; after SIGTERM (exit 143) the lock is free and the run resumes."""
    spec = spec_file(tmp_path, DROPOUT)
    run = tmp_path / "run"
    process = start_training(spec, run, SYNTHETIC)
    try:
        wait_for_an_epoch(process, run)
        for second in (["--resume", run], ["--out", run, "--overwrite"]):
            result = invoke("train", spec, *second)
            assert_clean_failure(result, 2)
            assert result.stderr.splitlines()[0] == \
                f"error: {run} is in use: another training holds it (it has {run / '.lock'} locked)"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 143, stderr
    done = load(run / "last.pt")["epoch"]
    resumed = invoke("train", spec, "--resume", run, "--epochs", done + 1)
    assert resumed.exit_code == 0, resumed.output
    assert [r["epoch"] for r in records(run)] == list(range(1, done + 2))


def test_the_lock_file_is_never_followed_as_a_symlink(tmp_path):
    run, target = tmp_path / "run", tmp_path / "elsewhere"
    run.mkdir()
    target.write_text("untouched")
    (run / runs.LOCK).symlink_to(target)
    result = invoke("train", spec_file(tmp_path, SMALL), *SYNTHETIC, "--epochs", "1",
                    "--out", run)
    assert_clean_failure(result, 2)
    assert f"cannot lock {run}" in result.stderr
    assert target.read_text() == "untouched" and not (run / "spec.spec").exists()


def test_resume_with_another_spec_is_refused_naming_the_layer(tmp_path):
    spec = spec_file(tmp_path, DROPOUT)
    run = tmp_path / "run"
    assert invoke("train", spec, *SYNTHETIC, "--epochs", "1", "--out", run).exit_code == 0
    other = spec_file(tmp_path, DROPOUT.replace("Dropout(0.3)", "Dropout(0.5)"), "other.spec")
    result = invoke("train", other, "--resume", run, "--epochs", "2")
    assert_clean_failure(result, 2)
    assert result.stderr.splitlines()[0] == (
        f"error: cannot resume {run} with this spec: layer dropout is Dropout(p=0.3) in the run, "
        "Dropout now (p: 0.3 → 0.5)")
    assert "--allow-spec-change" in result.stderr and load(run / "last.pt")["epoch"] == 1

    shorter = spec_file(tmp_path, SMALL, "shorter.spec")  # no Dropout: the next layer differs
    result = invoke("train", shorter, "--resume", run, "--epochs", "2")
    assert_clean_failure(result, 2)
    assert "layer maxpool is" not in result.stderr
    assert "layer dropout (now flatten) is Dropout(p=0.3) in the run" in result.stderr

    trained = spec_file(tmp_path, "train(lr=0.01)\n" + DROPOUT, "trained.spec")
    result = invoke("train", trained, "--resume", run, "--epochs", "2")
    assert_clean_failure(result, 2)
    assert "its train(...) block sets lr=0.01 now, lr=0.001 in the run" in result.stderr

    forced = invoke("train", other, "--resume", run, "--epochs", "2", "--allow-spec-change")
    assert forced.exit_code == 0, forced.output
    assert (run / "spec.spec").read_text() == other.read_text()


def test_resume_with_the_spec_in_another_layout_goes_ahead(tmp_path):
    spec = spec_file(tmp_path, DROPOUT)
    run = tmp_path / "run"
    assert invoke("train", spec, *SYNTHETIC, "--epochs", "1", "--out", run).exit_code == 0
    relaid = spec_file(tmp_path, "# the same network\ninput 1x28x28\nConv(8,3,padding=1)->ReLU\n"
                                 "  -> MaxPool(2) -> Dropout(0.3)  # kept\n  -> Flatten -> Linear(10)\n",
                       "relaid.spec")
    assert runs.spec_change(run, relaid.read_text()) is None
    result = invoke("train", relaid, "--resume", run, "--epochs", "2")
    assert result.exit_code == 0, result.output


NO_INPUT = SMALL.split("\n", 1)[1]  # the layers alone: the shape comes from --input


def test_a_run_trained_with_input_is_read_at_that_shape_by_eval_export_resume_and_load_run(
        tmp_path):
    spec = spec_file(tmp_path, NO_INPUT)
    run = tmp_path / "run"
    assert invoke("train", spec, *SYNTHETIC, "--input", "1x28x28", "--epochs", "1",
                  "--out", run).exit_code == 0
    recorded = json.loads((run / "config.json").read_text())["input"]
    assert recorded == [1, 28, 28] and all(type(size) is int for size in recorded)
    assert runs.trained_input(run) == (1, 28, 28)

    by_run = invoke("eval", run, "--format", "json")
    given = invoke("eval", spec, "--checkpoint", run, "--input", "1x28x28", "--format", "json")
    assert by_run.exit_code == 0, by_run.output
    assert json.loads(by_run.stdout) == json.loads(given.stdout)
    for output in ("net.pt", "net.py"):  # TorchScript with the weights, and the Python source
        exported = invoke("export", run, "-o", tmp_path / output)
        assert exported.exit_code == 0, exported.output
        assert "input N×1×28×28" in exported.stdout
    loaded = archdsl.load_run(run)
    assert loaded.analysis.input == (1, 28, 28)
    assert loaded.predict(torch.zeros(28, 28)).names[0] in loaded.classes

    resumed = invoke("train", spec, "--resume", run, "--epochs", "2")
    assert resumed.exit_code == 0, resumed.output
    assert [r["epoch"] for r in records(run)] == [1, 2]
    reshaped = invoke("train", spec, "--resume", run, "--epochs", "3", "--input", "1x32x32")
    assert_clean_failure(reshaped, 2)
    assert reshaped.stderr.splitlines()[0] == (f"error: cannot resume {run} with this spec: "
                                               "the input is 1×32×32 now, 1×28×28 in the run")


def test_the_input_line_counts_where_the_run_was_trained_at_its_own_shape(tmp_path):
    # --input over a spec's own line: the run is read at --input's shape, from Python too
    declared = spec_file(tmp_path, SMALL.replace("1x28x28", "3x32x32"))
    run = tmp_path / "run"
    archdsl.train(declared, input="1x28x28", out=run, dataset="synthetic", subset=256,
                  epochs=1, progress=False)
    assert runs.trained_input(run) == (1, 28, 28)
    assert invoke("eval", run, "--format", "json").exit_code == 0
    resumed = archdsl.train(declared, out=run, resume=True, epochs=2, progress=False)
    assert resumed.analysis.input == (1, 28, 28) and len(resumed.history) == 2

    # trained at the spec's own line: an edited line is a change of the spec, refused on resume
    spec = spec_file(tmp_path, SMALL, "own.spec")
    own = tmp_path / "own"
    assert invoke("train", spec, *SYNTHETIC, "--epochs", "1", "--out", own).exit_code == 0
    assert runs.trained_input(own) is None
    spec.write_text(SMALL.replace("1x28x28", "1x32x32"))
    result = invoke("train", spec, "--resume", own, "--epochs", "2")
    assert_clean_failure(result, 2)
    assert "the input is 1×32×32 now, 1×28×28 in the run" in result.stderr
    # and so is another --input over the run's own line
    spec.write_text(SMALL)
    result = invoke("train", spec, "--resume", own, "--epochs", "2", "--input", "1x32x32")
    assert_clean_failure(result, 2)
    assert "the input is 1×32×32 now, 1×28×28 in the run" in result.stderr


LINE = re.compile(r"^epoch (\d+)/(\d+)  step (\d+)/(\d+)  loss (\d+\.\d{4})  [\d,]+ img/s$")


def progress_lines(stderr: str) -> list[tuple]:
    found = [LINE.match(line) for line in stderr.splitlines()]
    return [tuple(int(g) for g in m.groups()[:4]) + (float(m.group(5)),) for m in found if m]


def test_without_a_terminal_progress_is_a_plain_line_every_n_steps(tmp_path):
    spec = spec_file(tmp_path, SMALL)
    result = invoke("train", spec, *SYNTHETIC, "--batch-size", "32", "--epochs", "2",
                    "--log-every", "3", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    lines = progress_lines(result.stderr)  # 256 images in batches of 32: 8 steps an epoch
    assert [line[:4] for line in lines] == [(e, 2, s, 8) for e in (1, 2) for s in (3, 6)]
    assert all(line[4] > 0 for line in lines)

    quiet = invoke("train", spec, *SYNTHETIC, "--epochs", "1", "--log-every", "0",
                   "--out", tmp_path / "quiet")
    assert quiet.exit_code == 0, quiet.output
    assert progress_lines(quiet.stderr) == [] and "step" not in quiet.stderr


def test_plain_progress_lines_come_every_100_steps_by_default_and_never_on_a_terminal():
    plain = io.StringIO()
    progress = EpochProgress(True, stream=plain)
    progress.start("epoch 1/3", 250 * 64, 250)
    for step in range(1, 251):
        progress.update(step, step * 64, 0.5)
    assert [line[:4] for line in progress_lines(plain.getvalue())] == \
        [(1, 3, 100, 250), (1, 3, 200, 250)]
    assert progress.due(100) and not progress.due(150)
    # A rank that shows nothing reads the loss at the same steps (under torchrun that read is a
    # collective, which every rank must join), and prints nothing.
    quiet_stream = io.StringIO()
    off = EpochProgress(False, stream=quiet_stream)
    off.start("epoch 1/3", 250 * 64, 250)
    off.update(100, 100 * 64, 0.5)
    assert off.due(100) and not off.due(150) and quiet_stream.getvalue() == ""

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    bar = EpochProgress(True, stream=terminal)
    assert bar.enabled and not bar.prints_lines  # the live bar instead
