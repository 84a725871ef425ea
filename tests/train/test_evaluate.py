"""Evaluation with test-time augmentation (archdsl/train/evaluate.py) against logits computed
by hand from torchvision's functional flip, pad and crop, and through the command line."""
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF
from typer.testing import CliRunner

from archdsl.analysis import analyze
from archdsl.cli import app
from archdsl.train.batches import DeviceBatches, normalize
from archdsl.train.config import TrainConfig
from archdsl.train.data import Split
from archdsl.train.evaluate import evaluate, tta_logits
from archdsl.train.loop import train

ROOT = Path(__file__).resolve().parents[2]


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 5 * 6, 4)).eval()


def by_hand(model, image: torch.Tensor, tta: str) -> torch.Tensor:
    """One image's TTA logits, view by view, as airbench writes them."""
    def score(x):
        return model(x.unsqueeze(0))[0]

    def mirrored(x):
        return 0.5 * score(x) + 0.5 * score(TF.horizontal_flip(x))

    if tta == "flip":
        return mirrored(image)
    padded = TF.pad(image, [1], padding_mode="reflect")
    up_left, down_right = TF.crop(padded, 0, 0, 5, 6), TF.crop(padded, 2, 2, 5, 6)
    return 0.5 * mirrored(image) + 0.25 * mirrored(up_left) + 0.25 * mirrored(down_right)


@pytest.mark.parametrize("tta", ["flip", "flip-shift"])
def test_tta_accuracy_and_loss_are_those_of_the_mean_logits(tta):
    model = tiny_model()
    raw = torch.randint(0, 256, (37, 2, 5, 6), dtype=torch.uint8,
                        generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = torch.stack([by_hand(model, image, tta) for image in normalize(raw)])
        plain = model(normalize(raw))
        torch.testing.assert_close(tta_logits(model, normalize(raw), tta), want)
    # labels the augmented views get right for 30 images and the plain view for fewer
    labels = want.argmax(1)
    labels[30:] = (labels[30:] + 1) % 4
    batches = DeviceBatches(Split(raw, labels), None, torch.device("cpu"))
    result = evaluate(model, batches, 4, batch_size=10, tta=tta)
    assert result.accuracy == pytest.approx(30 / 37)
    assert result.loss == pytest.approx(float(F.cross_entropy(want, labels)), rel=1e-5)
    plain_result = evaluate(model, batches, 4, batch_size=10)
    assert plain_result.accuracy == pytest.approx(float((plain.argmax(1) == labels).float().mean()))
    assert plain_result.accuracy != result.accuracy


def test_a_run_reports_its_tta_accuracy_beside_the_plain_one(tmp_path):
    spec = "input 1x12x12\nConv(4, 3, p=1) -> ReLU -> Flatten -> Linear(10)\n"
    lines = []
    config = TrainConfig(dataset="synthetic", subset=128, epochs=1, tta="flip-shift", seed=2)
    run = train(analyze(spec), spec, config, tmp_path / "run", show_progress=False,
                echo=lines.append)
    assert run.test_tta is not None and 0 <= run.test_tta_accuracy <= 1
    assert int(run.test_tta.confusion.sum()) == int(run.test.confusion.sum()) == 512
    line = next(line for line in lines if line.startswith("test accuracy"))
    assert line.endswith(f", with flip-shift TTA {run.test_tta_accuracy:.2%}")
    assert "flip-shift TTA" in run._repr_html_()
    plain = train(analyze(spec), spec, config.replace(tta="off"), tmp_path / "plain",
                  show_progress=False, echo=lambda line: None)
    assert plain.test_tta is None and plain.test_tta_accuracy is None
    for name, tensor in plain.model.state_dict().items():  # TTA changes evaluation only
        assert torch.equal(tensor, run.model.state_dict()[name]), name


def test_cli_tta_on_the_shipped_spec(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "train", str(ROOT / "specs" / "simple_cnn.spec"), "--dataset", "synthetic", "--subset",
        "128", "--epochs", "1", "--tta", "flip", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert ", with flip TTA " in result.output
    assert json.loads((out / "config.json").read_text())["tta"] == "flip"
