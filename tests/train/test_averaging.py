"""The moving average of the weights (--ema, archdsl/train/averaging.py): against the formula
computed by hand from the weights after every step, BatchNorm statistics, checkpoints (old ones
without it too), exact resume, `archdsl eval --ema`, export, and the command line."""
import json
from pathlib import Path

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook
from typer.testing import CliRunner

from archdsl.cli import app
from archdsl.errors import RunError
from archdsl.train import averaging
from archdsl.train.config import TrainConfig

from training import Killed, kill_after_first, load, quiet_run

ROOT = Path(__file__).resolve().parents[2]
SPEC = "input 1x12x12\nConv(4, 3, p=1) -> ReLU -> MaxPool(2) -> Flatten -> Linear(10)\n"
NORMED = "input 1x12x12\nConv(4, 3, p=1) -> BatchNorm -> ReLU -> Flatten -> Linear(10)\n"
SETTINGS = dict(dataset="synthetic", subset=160, batch_size=32, epochs=2, optimizer="sgd",
                lr=0.05, seed=1, ema=0.8)


run = quiet_run


def test_the_average_is_the_formula_over_the_weights_after_every_step(tmp_path):
    steps = []
    handle = register_optimizer_step_post_hook(lambda optimizer, args, kwargs: steps.append(
        [p.detach().clone() for group in optimizer.param_groups for p in group["params"]]))
    try:
        result = run(SPEC, tmp_path / "run", **SETTINGS)
    finally:
        handle.remove()
    assert len(steps) == 2 * 5
    want = steps[0]  # the first step copies the weights
    for weights in steps[1:]:
        want = [0.8 * average + 0.2 * w for average, w in zip(want, weights)]
    got = list(result.ema_model.parameters())
    assert len(got) == len(want)
    for average, expected, last in zip(got, want, steps[-1]):
        torch.testing.assert_close(average, expected, rtol=1e-6, atol=1e-7)
        assert not torch.equal(average, last)  # an average, not the weights
    plain = run(SPEC, tmp_path / "plain", **{**SETTINGS, "ema": 0.0}).model.state_dict()
    for name, tensor in result.model.state_dict().items():  # the model itself trains as before
        assert torch.equal(tensor, plain[name]), name
    assert load(tmp_path / "run" / "last.pt")["ema"]["updates"] == 10


def test_batchnorm_statistics_are_averaged_with_the_weights():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    average = averaging.averaged(model, 0.5)
    means = []
    for shift in (1.0, 3.0, 5.0):
        model(torch.randn(8, 1, 6, 6) + shift)
        means.append(model[1].running_mean.clone())
        average.update_parameters(model)
    want = 0.5 * (0.5 * means[0] + 0.5 * means[1]) + 0.5 * means[2]
    torch.testing.assert_close(average.module[1].running_mean, want)
    assert averaging.averaged(model, 0.0) is None


def test_checkpoints_hold_it_beside_the_weights_and_resume_restores_it_exactly(tmp_path):
    settings = {**SETTINGS, "epochs": 3, "val_split": 0.2}
    whole = run(NORMED, tmp_path / "whole", **settings)
    with pytest.raises(Killed):
        run(NORMED, tmp_path / "split", echo=kill_after_first, **settings)
    run(NORMED, tmp_path / "split", resume=True)
    a, b = load(tmp_path / "whole" / "last.pt"), load(tmp_path / "split" / "last.pt")
    assert a["ema"]["updates"] == b["ema"]["updates"] == 3 * 4
    assert a["ema"]["weights"].keys() == a["model"].keys()  # the model's own keys
    for name, tensor in a["ema"]["weights"].items():
        assert torch.equal(tensor, b["ema"]["weights"][name]), name
    for name, tensor in whole.ema_model.state_dict().items():
        assert torch.equal(tensor, a["ema"]["weights"][name]), name
    assert "ema" in load(tmp_path / "whole" / "best.pt")


def test_a_checkpoint_without_it_loads_and_resumes_with_a_fresh_average(tmp_path):
    out = tmp_path / "old"
    run(SPEC, out, **{**SETTINGS, "ema": 0.0, "epochs": 1})
    state = load(out / "last.pt")
    assert "ema" not in state
    resumed = run(SPEC, out, resume=True, epochs=2, ema=0.9)
    assert load(out / "last.pt")["ema"]["updates"] == 5  # the second epoch's steps
    assert resumed.ema_test is not None
    with pytest.raises(RunError, match="holds no averaged weights"):
        averaging.weights(state, out / "last.pt")


def test_decay_one_or_more_is_refused():
    with pytest.raises(RunError, match="'ema' must be a decay below 1, got 1"):
        TrainConfig(ema=1)
    assert TrainConfig(ema=None).ema == 0.0 and TrainConfig(ema=0.999).ema == 0.999


# --- the command line ----------------------------------------------------------------------------

def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_trains_evaluates_and_exports_with_the_average(tmp_path):
    spec, out = ROOT / "specs" / "simple_cnn.spec", tmp_path / "run"
    result = invoke("train", spec, "--dataset", "synthetic", "--subset", "128", "--epochs", "1",
                    "--ema", "0.9", "--tta", "flip", "--out", out)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    plain = next(line for line in lines if line.startswith("test accuracy"))
    averaged = next(line for line in lines if line.startswith("EMA weights (decay 0.9): test "
                                                              "accuracy "))
    assert ", with flip TTA " in plain and ", with flip TTA " in averaged
    assert json.loads((out / "config.json").read_text())["ema"] == 0.9

    both = {}
    for flag in ((), ("--ema",)):
        shown = invoke("eval", out, "--format", "json", *flag)
        assert shown.exit_code == 0, shown.output
        both[flag] = json.loads(shown.stdout)
    assert both[("--ema",)]["weights"] == "ema" and "weights" not in both[()]
    assert f"{both[()]['accuracy']:.2%}" in plain
    assert f"{both[('--ema',)]['accuracy']:.2%}" in averaged
    table = invoke("eval", out, "--ema")
    assert "its EMA weights" in table.output

    exported = invoke("export", out, "-o", tmp_path / "net.pt")
    assert exported.exit_code == 0, exported.output
    assert "matches PyTorch" in exported.output


def test_cli_eval_ema_of_a_run_without_it_and_a_decay_of_one_are_clear_errors(tmp_path):
    spec, out = ROOT / "specs" / "simple_cnn.spec", tmp_path / "run"
    assert invoke("train", spec, "--dataset", "synthetic", "--subset", "64", "--epochs", "1",
                  "--out", out).exit_code == 0
    result = invoke("eval", out, "--ema")
    assert result.exit_code == 2, result.output
    assert "holds no averaged weights: its run trained without --ema" in result.stderr
    result = invoke("train", spec, "--dataset", "synthetic", "--ema", "1", "--out",
                    tmp_path / "other")
    assert result.exit_code == 2 and "must be a decay below 1" in result.stderr, result.output
    assert "Traceback" not in result.output
