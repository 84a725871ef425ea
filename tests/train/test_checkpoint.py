"""checkpoint.load: a run's state or a bare state_dict, else a RunError saying which is wrong."""
import json
import pickle
import zipfile

import pytest
import torch

from archdsl.errors import RunError
from archdsl.ir import Name
from archdsl.train import checkpoint

WEIGHTS = {"weight": torch.ones(2, 3), "bias": torch.zeros(2)}
RUN = {"model": WEIGHTS, "optimizer": {}, "scheduler": None, "epoch": 1, "history": [],
       "best": 0.5, "stale": 0, "rng": {"torch": torch.get_rng_state()}, "config": {"lr": 1e-3}}


def saved(tmp_path, state, name="c.pt", **options):
    path = tmp_path / name
    torch.save(state, path, **options)
    return path


def refusal(path, **options) -> str:
    with pytest.raises(RunError) as caught:
        checkpoint.load(path, **options)
    return caught.value.message


def test_a_run_checkpoint_loads_and_resumes(tmp_path):
    state = checkpoint.load(saved(tmp_path, RUN), resumable=True)
    assert state["epoch"] == 1 and torch.equal(state["model"]["weight"], WEIGHTS["weight"])


def test_a_bare_state_dict_loads_as_the_model_but_cannot_resume(tmp_path):
    path = saved(tmp_path, WEIGHTS)
    assert list(checkpoint.load(path)) == ["model"]
    assert refusal(path, resumable=True) == (
        f"{path} is not an archdsl checkpoint: it is a bare state_dict, with no optimizer or "
        f"epoch to resume from")


def test_the_legacy_format_loads(tmp_path):
    path = saved(tmp_path, RUN, _use_new_zipfile_serialization=False)
    assert checkpoint.load(path, resumable=True)["epoch"] == 1


@pytest.mark.parametrize("cut, reason", [
    (lambda data: data[:len(data) // 2], "PytorchStreamReader failed reading zip archive"),
    (lambda data: b"", "the file is empty"),
    (lambda data: data[:300] + b"x" * 80 + data[380:], "its contents do not unpickle"),
])
def test_a_truncated_or_damaged_file(tmp_path, cut, reason):
    path = saved(tmp_path, RUN)
    path.write_bytes(cut(path.read_bytes()))
    message = refusal(path)
    assert message.startswith(f"cannot read checkpoint {path}: the file is truncated or "
                              f"damaged ("), message
    assert reason in message


def test_a_truncated_legacy_file(tmp_path):
    path = saved(tmp_path, RUN, _use_new_zipfile_serialization=False)
    path.write_bytes(path.read_bytes()[:60])
    assert refusal(path) == (f"cannot read checkpoint {path}: the file is truncated or damaged "
                             f"(it ends early)")


def test_files_that_are_not_checkpoints(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("hello\n")
    plain = tmp_path / "plain.pt"
    plain.write_bytes(pickle.dumps({"model": 1}))
    other_zip = tmp_path / "other.pt"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("readme.txt", "not torch")
    assert refusal(text) == f"{text} is not an archdsl checkpoint: it is a file not written by " \
                            f"torch.save"
    assert refusal(plain) == f"{plain} is not an archdsl checkpoint: it is a pickle not " \
                             f"written by torch.save"
    assert refusal(other_zip) == f"{other_zip} is not an archdsl checkpoint: it is a file not " \
                                 f"written by torch.save"


@pytest.mark.parametrize("state, reason", [
    ([1, 2, 3], "it holds a list, not a dict"),
    ({"epoch": 3, "model": {"note": "not tensors"}}, "it has no model weights"),
    ({"model": WEIGHTS, "epoch": 2}, None),
])
def test_torch_files_that_are_not_archdsl_checkpoints(tmp_path, state, reason):
    path = saved(tmp_path, state)
    if reason is None:  # weights only: export and eval take it, --resume does not
        assert checkpoint.load(path)["epoch"] == 2
        reason = "it has no 'optimizer' to resume from"
        assert refusal(path, resumable=True) == f"{path} is not an archdsl checkpoint: {reason}"
    else:
        assert refusal(path) == f"{path} is not an archdsl checkpoint: {reason}"


def test_content_that_weights_only_refuses_is_named(tmp_path):
    path = saved(tmp_path, {**RUN, "config": {"scheduler": Name("cosine")}})
    with pytest.raises(RunError) as caught:
        checkpoint.load(path)
    assert caught.value.message == (
        f"refusing to unpickle checkpoint {path}: it holds archdsl.ir.Name, a type that "
        f"torch.load(weights_only=True) does not load")
    assert "runs no code" in caught.value.hint


def test_a_missing_file(tmp_path):
    assert refusal(tmp_path / "no.pt") == \
        f"cannot read checkpoint {tmp_path / 'no.pt'}: No such file or directory"


def test_eval_of_a_bare_state_dict_through_the_cli(tmp_path):
    from typer.testing import CliRunner
    from archdsl import analyze
    from archdsl.cli import app
    from archdsl.compiler import build
    spec = tmp_path / "net.spec"
    spec.write_text("input 1x28x28\nFlatten -> Linear(10)\n")
    weights = saved(tmp_path, build(analyze(spec.read_text())).state_dict(), "weights.pt")
    result = CliRunner().invoke(app, ["eval", str(spec), "--checkpoint", str(weights),
                                      "--dataset", "synthetic", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["epoch"] is None and report["examples"] > 0
