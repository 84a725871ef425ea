"""The shipped specs with a train(...) block, as the README walks a new user through them: train
on a subset, interrupt and resume, eval from the checkpoint, export in both formats, and load
both checkpoints with torch.load(weights_only=True). The spec's own train block is kept (its
`scheduler=` bare word included); only --epochs, --subset and the data folder are given."""
import json
import os
import signal

import pytest
import torch
from typer.testing import CliRunner

from archdsl import parse
from archdsl.cli import app
from archdsl.train import checkpoint
from archdsl.train.config import TrainConfig
from conftest import ROOT, assert_plain
from fashion import SHARED, needs_fashion

SHIPPED = [ROOT / "specs" / name for name in
           ("simple_cnn.spec", "simple_cnn_fast.spec", "fashion_mnist_best.spec")]
OPTIONS = ["--subset", "512", "--data-dir", str(SHARED)]

runner = CliRunner()
pytestmark = needs_fashion


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


def interrupt_after_first_epoch(save):
    """checkpoint.save_atomically, pressing Ctrl-C once epoch 1's checkpoints are written: the
    run stops at the first step of epoch 2, with last.pt and best.pt of epoch 1 on disk."""
    def saving(state, path):
        save(state, path)
        if path.name == "best.pt" and state["epoch"] == 1:
            os.kill(os.getpid(), signal.SIGINT)
    return saving


@pytest.fixture(scope="module", params=SHIPPED, ids=lambda path: path.stem)
def run(request, tmp_path_factory):
    """A run of the spec planned for 2 epochs, stopped after the first, then resumed."""
    spec, out = request.param, tmp_path_factory.mktemp(request.param.stem) / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(checkpoint, "save_atomically",
                      interrupt_after_first_epoch(checkpoint.save_atomically))
        first = invoke("train", spec, "--epochs", "2", *OPTIONS, "--out", out)
    assert first.exit_code == 130, first.output
    assert f"resume with: archdsl train {spec} --resume {out}" in first.stderr
    first_state = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert first_state["epoch"] == 1
    resumed = invoke("train", spec, "--resume", out)
    assert resumed.exit_code == 0, resumed.output
    assert f"resuming {out} after epoch 1" in resumed.stdout and "epoch 2/2" in resumed.stdout
    return spec, out


def test_both_checkpoints_load_with_weights_only_and_hold_the_plain_config(run):
    spec, out = run
    saved = json.loads((out / "config.json").read_text())
    expected = TrainConfig.from_spec(parse(spec.read_text()))
    for name in ("last.pt", "best.pt"):
        state = torch.load(out / name, map_location="cpu", weights_only=True)
        assert_plain(state["config"], f"{name} config")
        assert_plain(state["history"], f"{name} history")
        assert state["config"] == {k: v for k, v in saved.items() if k in state["config"]}
        assert set(state["config"]) == set(TrainConfig().to_dict())
        # the spec's own settings, bare words as plain str
        assert type(state["config"]["scheduler"]) is str
        assert state["config"]["scheduler"] == expected.scheduler
        assert state["config"]["lr"] == expected.lr
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 2


def test_eval_reads_the_checkpoint(run):
    spec, out = run
    result = invoke("eval", spec, "--checkpoint", out / "best.pt", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["examples"] == 10_000 and report["epoch"] in (1, 2)
    assert 0.0 <= report["accuracy"] <= 1.0


@pytest.mark.parametrize("fmt, suffix", [("onnx", "onnx"), ("torchscript", "pt")])
def test_export_of_the_checkpoint(run, fmt, suffix, tmp_path):
    spec, out = run
    target = tmp_path / f"{spec.stem}.{suffix}"
    result = invoke("export", spec, "--checkpoint", out / "best.pt", "--format", fmt,
                    "-o", target)
    assert result.exit_code == 0, result.output
    assert f"{target}: {fmt}, input N×1×28×28" in result.stdout
    assert "matches PyTorch on 3 random inputs" in result.stdout and target.is_file()
