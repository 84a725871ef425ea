"""Data-parallel training on the CPU: 2 processes with gloo, started by torchrun.

(a) after training, every parameter is identical on both ranks;
(b) the run equals, within float tolerance, one process with twice the batch over the same data
    order, tail included (the subset leaves a last batch of one example);
(c) a rank killed with SIGKILL mid-run ends the job non-zero, with a clear message, in bounded time;
(d) SIGTERM to the launcher stops every rank at the same step and exits 143, ready to resume.
Also: `--nproc` runs resume exactly (and in one process), only rank 0 prints, and --nproc with
--device cuda fails before starting anything on a machine without CUDA.

Run as a script under torchrun, this file is the worker of (a), (b) and the resume test.
"""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from archdsl.analysis import analyze
from archdsl.cli import app
from archdsl.train.config import TrainConfig, resumed_config
from archdsl.train.loop import train

SPEC = "input 1x12x12\nConv(4, 3, p=1) -> ReLU -> MaxPool(2) -> Flatten -> Linear(10)\n"
PER_PROCESS_BATCH = 16
# 534 of the 2048 synthetic images, 53 held out: 481 = 15 × 32 + 1 to train on, so the last global
# batch is one example: rank 0 takes it and rank 1 steps on an empty batch. That step must still
# equal the single process's: each rank's loss is its sum over the global batch's mean share.
SETTINGS = dict(dataset="synthetic", subset=534, val_split=0.1, epochs=2, optimizer="sgd",
                lr=0.05, momentum=0.9, device="cpu", seed=3)
WORLD = 2


def _worker(out: Path) -> None:
    """One rank of (a) and (b): train, then keep this rank's model and metrics."""
    rank = int(os.environ["RANK"])
    config = TrainConfig(batch_size=PER_PROCESS_BATCH, **SETTINGS)
    run = train(analyze(SPEC), SPEC, config, out / "run", show_progress=False)
    torch.save({"model": run.model.state_dict(), "history": run.history, "test": run.test.loss},
               out / f"rank-{rank}.pt")


CLI_SETTINGS = ["--dataset", "synthetic", "--subset", "534", "--val-split", "0.1",
                "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--device", "cpu",
                "--seed", "3", "--batch-size", str(PER_PROCESS_BATCH)]


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def without_timing(history):
    return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in history]


def clean_env() -> dict:
    """This environment without a torchrun job's variables, one thread per process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def run_job(command: list, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a launcher to its end; past the timeout, SIGTERM it, which torchrun passes on to its
    processes (they run in sessions of their own, out of reach of a kill of the launcher's)."""
    job = subprocess.Popen([str(part) for part in command], env=clean_env(), text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        stdout, stderr = job.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        job.terminate()
        stdout, stderr = job.communicate(timeout=60)
        pytest.fail(f"{command} did not finish in {timeout} s:\n{stdout}{stderr}")
    return subprocess.CompletedProcess(command, job.returncode, stdout, stderr)


def archdsl_train(*args) -> subprocess.CompletedProcess:
    return run_job([sys.executable, "-m", "archdsl", "train", *args])


@pytest.fixture(scope="module")
def ddp(tmp_path_factory):
    """Two processes started by torchrun, each running _worker."""
    out = tmp_path_factory.mktemp("ddp")
    done = run_job([sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc-per-node", WORLD, __file__, out])
    assert done.returncode == 0, done.stdout + done.stderr
    return out, done.stdout


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The same data, one process, batch = 2 × the per-process batch."""
    out = tmp_path_factory.mktemp("single") / "run"
    config = TrainConfig(batch_size=WORLD * PER_PROCESS_BATCH, **SETTINGS)
    return train(analyze(SPEC), SPEC, config, out, show_progress=False, echo=lambda line: None)


def test_a_parameters_are_identical_on_every_rank(ddp):
    out, _ = ddp
    ranks = [load(out / f"rank-{rank}.pt") for rank in range(WORLD)]
    assert ranks[0]["model"].keys() == ranks[1]["model"].keys()
    for name, tensor in ranks[0]["model"].items():
        assert torch.equal(tensor, ranks[1]["model"][name]), name
    # the metrics are sums over both ranks: the same on each, bar each one's own timing
    assert without_timing(ranks[0]["history"]) == without_timing(ranks[1]["history"])
    # rank 0 alone wrote the run directory, its checkpoint in the single-process format
    saved = load(out / "run" / "last.pt")
    for name, tensor in ranks[0]["model"].items():
        assert torch.equal(saved["model"][name], tensor), name
    assert saved["epoch"] == 2 and len(saved["rng_per_rank"]) == WORLD


def test_b_equals_one_process_with_the_global_batch(ddp, single):
    out, _ = ddp
    rank0 = load(out / "rank-0.pt")
    assert single.model is not None
    for name, tensor in single.model.state_dict().items():
        torch.testing.assert_close(rank0["model"][name], tensor, rtol=1e-4, atol=1e-6, msg=name)
    for got, want in zip(without_timing(rank0["history"]), without_timing(single.history),
                         strict=True):
        for key in ("train_loss", "val_loss"):
            assert got[key] == pytest.approx(want[key], rel=1e-5), key
        for key in ("train_accuracy", "val_accuracy"):
            assert got[key] == pytest.approx(want[key], abs=1.5 / 481), key
        assert got["lr"] == want["lr"]
    assert rank0["test"] == pytest.approx(single.test.loss, rel=1e-5)


def test_only_rank_0_prints_and_it_states_world_size_and_global_batch(ddp):
    _, stdout = ddp
    starts = [line for line in stdout.splitlines() if line.startswith("training ")]
    assert len(starts) == 1, stdout
    assert "world size 2" in starts[0]
    assert f"batch {PER_PROCESS_BATCH} per process = global batch {2 * PER_PROCESS_BATCH}" \
        in starts[0]
    assert stdout.count("epoch 2/2") == 1 and stdout.count("test accuracy") == 1


def test_nproc_runs_resume_exactly_and_single_process_resumes_them(ddp, tmp_path):
    """`--nproc 2` for one epoch, `--resume --nproc 2` for the second: the same model as the
    two-epoch run of (a); then one process continues the run with the global batch."""
    out, _ = ddp
    spec, run = tmp_path / "tiny.spec", tmp_path / "run"
    spec.write_text(SPEC)
    first = archdsl_train(spec, *CLI_SETTINGS, "--epochs", 1, "--nproc", 2, "--out", run)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "world size 2" in first.stdout and "global batch 32" in first.stdout
    second = archdsl_train(spec, "--resume", run, "--epochs", 2, "--nproc", 2)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "resuming" in second.stdout
    resumed, straight = load(run / "last.pt"), load(out / "rank-0.pt")
    for name, tensor in straight["model"].items():
        assert torch.equal(resumed["model"][name], tensor), name
    assert without_timing(resumed["history"]) == without_timing(straight["history"])
    third = train(analyze(SPEC), SPEC,
                  resumed_config(run, {"epochs": 3, "batch_size": WORLD * PER_PROCESS_BATCH}),
                  run, resume=True, show_progress=False, echo=lambda line: None)
    assert [r["epoch"] for r in third.history] == [1, 2, 3]
    assert load(run / "last.pt")["model"].keys() == straight["model"].keys()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # the command may hold spaces and parentheses: the fields follow the last ')'
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _rank_of(pid: int) -> int | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    return next((int(v[5:]) for v in environ if v.startswith(b"RANK=")), None)


def start_launcher(*arguments) -> subprocess.Popen:
    """`archdsl train ARGUMENTS` in a process of its own; its standard output read by a thread
    into `launcher.lines`, with `launcher.training` set at the first epoch's line."""
    launcher = subprocess.Popen([sys.executable, "-m", "archdsl", "train", *map(str, arguments)],
                                env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    launcher.lines, launcher.training = [], threading.Event()

    def read():
        for line in launcher.stdout:
            launcher.lines.append(line)
            if line.startswith("epoch 1/"):
                launcher.training.set()

    threading.Thread(target=read, daemon=True).start()
    return launcher


def assert_in_training(launcher: subprocess.Popen) -> None:
    assert launcher.training.wait(60), "".join(launcher.lines)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the workers in /proc")
def test_c_a_killed_rank_ends_the_job_with_a_clear_message(tmp_path):
    spec = tmp_path / "tiny.spec"
    spec.write_text(SPEC)
    launcher = start_launcher(spec, "--nproc", "2", "--device", "cpu", "--dataset", "synthetic",
                              "--epochs", "1000", "--batch-size", "16", "--out", tmp_path / "run")
    try:
        assert_in_training(launcher)
        workers = _children(launcher.pid)
        victim = next(pid for pid in workers if _rank_of(pid) == 1)
        os.kill(victim, signal.SIGKILL)
        killed = time.perf_counter()
        code = launcher.wait(timeout=60)
        assert time.perf_counter() - killed < 60
        stderr = launcher.stderr.read()
    finally:
        if launcher.poll() is None:  # the test failed with the job still running: end it
            launcher.terminate()  # torchrun stops its processes, then exits
            launcher.wait(60)
    assert code != 0
    assert "rank 1" in stderr and "killed by SIGKILL" in stderr, stderr
    assert "error: distributed training failed" in stderr.splitlines()[-1], stderr
    assert "Traceback" not in stderr, stderr
    for pid in workers:  # no process of the job is left behind
        assert not Path(f"/proc/{pid}").exists() or \
            (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the workers in /proc")
def test_d_sigterm_to_the_launcher_stops_every_rank_at_one_step_and_exits_143(tmp_path):
    """What a scheduler, `docker stop` or `timeout` does: SIGTERM to the launcher alone, which
    torchrun passes on. The ranks agree on the step (a rank stopping alone would leave the other
    in a collective, and the job would fail with exit 1), rank 0 says how to resume, and the
    run resumes."""
    spec, run = tmp_path / "tiny.spec", tmp_path / "run"
    spec.write_text(SPEC)
    launcher = start_launcher(spec, *CLI_SETTINGS, "--epochs", "1000", "--nproc", "2",
                              "--out", run)
    try:
        assert_in_training(launcher)
        workers = _children(launcher.pid)
        launcher.send_signal(signal.SIGTERM)
        code = launcher.wait(timeout=60)
        stderr = launcher.stderr.read()
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait(60)
    assert code == 143, stderr
    assert "interrupted by SIGTERM in epoch" in stderr and "Traceback" not in stderr, stderr
    assert f"resume with: archdsl train {spec} --resume {run}" in stderr
    assert "error:" not in stderr and "stopped by" not in stderr, stderr
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or \
            (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z")
    state = load(run / "last.pt")
    done = state["epoch"]
    assert done >= 1 and len(state["rng_per_rank"]) == WORLD and len(state["history"]) == done
    # (resuming with --nproc 2 is the resume test's; here one process, to keep this one short)
    resumed = train(analyze(SPEC), SPEC,
                    resumed_config(run, {"epochs": done + 1, "batch_size": WORLD * PER_PROCESS_BATCH}),
                    run, resume=True, show_progress=False, echo=lambda line: None)
    assert [r["epoch"] for r in resumed.history] == list(range(1, done + 2))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_nproc_on_cuda_without_cuda_fails_before_starting(tmp_path):
    spec = tmp_path / "tiny.spec"
    spec.write_text(SPEC)
    result = CliRunner().invoke(app, ["train", str(spec), "--nproc", "2", "--device", "cuda",
                                      "--dataset", "synthetic", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert "CUDA is not available" in result.output
    assert "starting torchrun" not in result.output
    assert not (tmp_path / "run").exists()


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
