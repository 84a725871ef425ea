"""Training from Python: archdsl.train gives the Run that `archdsl train` would write, load_run
reads it back, predict gives the model's classes, plot its curves."""
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import archdsl
from archdsl.cli import app
from archdsl.errors import RunError
from archdsl.train.data import load_dataset
from html_tables import html_rows

SMALL = "input 1x28x28\nConv(8, 3, p=1) -> ReLU -> MaxPool(2) -> Flatten -> Linear(10)\n"
SETTINGS = dict(dataset="synthetic", subset=256, epochs=2, batch_size=32, seed=3)
runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("python") / "run"
    return archdsl.train(SMALL, out=out, progress=False, **SETTINGS)


def test_the_run_holds_history_test_accuracy_model_and_settings(trained):
    records = [json.loads(line) for line in
               (trained.out_dir / "metrics.jsonl").read_text().splitlines()]
    assert trained.history == records and [r["epoch"] for r in records] == [1, 2]
    assert trained.test is not None and trained.test_accuracy == trained.test.accuracy
    assert isinstance(trained.model, torch.nn.Module)
    assert trained.config.epochs == 2 and trained.config.subset == 256
    assert trained.spec == SMALL and trained.classes == [str(i) for i in range(10)]
    saved = torch.load(trained.out_dir / "last.pt", weights_only=True)["model"]
    for name, tensor in trained.model.state_dict().items():
        assert torch.equal(tensor, saved[name]), name


def test_training_from_python_is_training_from_the_command_line(trained, tmp_path):
    spec = tmp_path / "net.spec"
    spec.write_text(SMALL)
    options = [f"--{k.replace('_', '-')}={v}" for k, v in SETTINGS.items()]
    result = runner.invoke(app, ["train", str(spec), *options, "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    ours = torch.load(trained.out_dir / "best.pt", weights_only=True)["model"]
    theirs = torch.load(tmp_path / "cli" / "best.pt", weights_only=True)["model"]
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert json.loads((tmp_path / "cli" / "config.json").read_text())["classes"] == \
        trained.classes


def test_load_run_gives_the_model_spec_configuration_and_class_names(trained):
    loaded = archdsl.load_run(trained.out_dir)
    assert loaded.spec == SMALL and loaded.config == trained.config
    assert loaded.classes == trained.classes and loaded.history == trained.history
    assert loaded.test is None and not loaded.model.training
    best = torch.load(trained.out_dir / "best.pt", weights_only=True)["model"]
    for name, tensor in loaded.model.state_dict().items():
        assert torch.equal(tensor, best[name]), name
    assert repr(loaded) == f"<Run {trained.out_dir}: 2 epochs>"


def test_predict_is_the_models_argmax_on_images_normalized_as_in_training(trained):
    images = load_dataset("synthetic", input_shape=(1, 28, 28), num_classes=10).test.images[:6]
    loaded = archdsl.load_run(trained.out_dir)
    with torch.no_grad():
        outputs = loaded.model(images.float() / 127.5 - 1)  # ToTensor + Normalize(0.5, 0.5)
    predicted = loaded.predict(images)
    assert torch.equal(predicted.indices, outputs.argmax(1))
    assert torch.allclose(predicted.probabilities, torch.softmax(outputs, 1))
    assert predicted.names == [loaded.classes[i] for i in outputs.argmax(1).tolist()]
    assert torch.equal(loaded.predict(images.numpy()).indices, predicted.indices)
    assert torch.equal(loaded.predict(images.float() / 255).indices, predicted.indices)
    assert torch.equal(loaded.predict(images[:, 0]).indices, predicted.indices)  # N×H×W
    assert loaded.predict(images[0]).names == predicted.names[:1]
    assert loaded.predict(images[0, 0]).names == predicted.names[:1]  # H×W
    assert repr(loaded.predict(images[:2])) == f"<Predictions of 2 images: {predicted.names[:2]}>"


def test_predict_refuses_images_of_another_shape(trained):
    with pytest.raises(RunError, match="images of shape 2×3×28×28 do not fit the network's "
                                       "input 1×28×28"):
        trained.predict(torch.zeros(2, 3, 28, 28, dtype=torch.uint8))


def test_plot_draws_the_histories_curves(trained):
    figure = trained.plot()
    loss, accuracy = figure.axes
    (train_loss,) = loss.get_lines()
    assert list(train_loss.get_ydata()) == [r["train_loss"] for r in trained.history]
    assert list(accuracy.get_lines()[0].get_ydata()) == \
        [r["train_accuracy"] for r in trained.history]
    assert figure._repr_png_().startswith(b"\x89PNG")  # drawn, so the ticks are placed
    assert all(tick == int(tick) for tick in loss.get_xticks())  # whole epochs


def test_a_runs_display_shows_each_epoch_and_the_test_accuracy(trained):
    shown = trained._repr_html_()
    rows = html_rows(shown)
    assert rows[0] == ["epoch", "train loss", "train accuracy", "seconds"]
    assert [row[1] for row in rows[1:]] == [f"{r['train_loss']:.4f}" for r in trained.history]
    assert f"test accuracy {trained.test.accuracy:.2%}" in shown
    assert repr(trained) == f"<Run {trained.out_dir}: 2 epochs, test accuracy " \
                            f"{trained.test.accuracy:.2%}>"


def test_resume_continues_a_run_to_the_weights_of_one_without_a_break(trained, tmp_path):
    out = tmp_path / "run"
    archdsl.train(SMALL, out=out, progress=False, **{**SETTINGS, "epochs": 1})
    resumed = archdsl.train(SMALL, out=out, resume=True, progress=False, epochs=2)
    assert [r["epoch"] for r in resumed.history] == [1, 2]
    for name, tensor in resumed.model.state_dict().items():
        assert torch.equal(tensor, trained.model.state_dict()[name]), name


def test_predictions_show_their_first_names(trained):
    images = torch.zeros(12, 1, 28, 28, dtype=torch.uint8)
    name = trained.predict(images[:1]).names[0]
    assert repr(trained.predict(images)) == \
        f"<Predictions of 12 images: [{', '.join([repr(name)] * 10)}, …]>"


def test_a_spec_file_trains_into_runs_named_after_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("tiny.spec").write_text(SMALL)
    run = archdsl.train("tiny.spec", progress=False, **{**SETTINGS, "epochs": 1})
    assert run.out_dir == Path("runs/tiny") and (tmp_path / "runs/tiny/best.pt").is_file()


def test_an_unknown_setting_names_the_closest(tmp_path):
    with pytest.raises(RunError, match=r"unknown training setting 'epoch' \(did you mean "
                                       r"'epochs'\?\)"):
        archdsl.train(SMALL, out=tmp_path / "run", epoch=2)
    assert not (tmp_path / "run").exists()


def test_a_bad_setting_is_refused_before_training(tmp_path):
    with pytest.raises(RunError, match="epochs"):
        archdsl.train(SMALL, out=tmp_path / "run", epochs=0)


def test_load_run_of_a_directory_that_holds_no_run(tmp_path):
    with pytest.raises(RunError, match="is a directory without spec.spec"):
        archdsl.load_run(tmp_path)
    with pytest.raises(RunError, match="is not a directory"):
        archdsl.load_run(tmp_path / "absent")
