"""The spec's train(...) block and its precedence under command-line options."""
import json
import re

import pytest

from archdsl import parse
from archdsl.errors import ArgumentError, RunError
from archdsl.ir import Name
from archdsl.train.config import TrainConfig, resumed_config

NET = "Flatten -> Linear(10)"


def test_defaults_reproduce_the_tutorial_loop():
    config = TrainConfig.from_spec(parse(f"input 1x28x28\n{NET}"))
    assert (config.dataset, config.batch_size, config.optimizer, config.lr, config.epochs) == \
        ("fashion-mnist", 64, "adam", 1e-3, 3)


def test_train_block_sets_and_options_override():
    spec = parse(f"input 1x28x28\ntrain(epochs=10, optimizer=adamw, lr=3e-3, "
                 f"scheduler=onecycle, label_smoothing=0.1)\n{NET}")
    config = TrainConfig.from_spec(spec)
    assert (config.epochs, config.optimizer, config.lr, config.scheduler) == \
        (10, "adamw", 3e-3, "onecycle")
    overridden = config.replace(epochs=2, lr=None)  # None: the option was not given
    assert (overridden.epochs, overridden.lr) == (2, 3e-3)


@pytest.mark.parametrize("block, column, fragment", [
    ("train(epochz=1)", 7, "did you mean 'epochs'"),
    ("train(optimizer=rmsprop)", 7, "must be one of 'sgd', 'adam', 'adamw'"),
    ("train(epochs=0)", 7, "must be a positive integer"),
    ("train(val_split=0.95)", 7, "a fraction between 0 and 0.9"),
    ("train(epochs=2, dataset=mnst)", 17, "unknown dataset 'mnst' (did you mean 'mnist'?)"),
])
def test_bad_train_block_points_at_the_argument(block, column, fragment):
    with pytest.raises(ArgumentError) as caught:
        TrainConfig.from_spec(parse(f"input 1x28x28\n{block}\n{NET}"))
    assert (caught.value.span.line, caught.value.span.column) == (2, column)
    assert fragment in caught.value.message


@pytest.mark.parametrize("dataset", ["cifar10", "Fashion_MNIST", "synthetic"])
def test_known_datasets_and_image_folders_pass(dataset, tmp_path):
    for name in (dataset, str(tmp_path)):
        spec = parse(f"input 1x28x28\ntrain(dataset={name!r})\n{NET}")
        assert TrainConfig.from_spec(spec).dataset == name


def test_train_block_declared_twice_is_an_error():
    with pytest.raises(Exception, match="train block is declared twice"):
        parse(f"train(epochs=1)\ntrain(epochs=2)\n{NET}")


# --- one check of every setting, however the configuration is made ------------------------------

def test_every_field_is_checked_when_made_in_python_or_replaced():
    with pytest.raises(RunError, match="training setting 'lr' must be a positive number, got 0"):
        TrainConfig(lr=0)
    with pytest.raises(RunError, match="'scheduler' must be one of 'none', 'step'"):
        TrainConfig().replace(scheduler="linear")
    with pytest.raises(RunError, match="'epochs' must be a positive integer, got 'ten'"):
        TrainConfig(epochs="ten")


def test_a_str_subclass_is_not_a_setting():
    with pytest.raises(RunError, match="'scheduler' must be"):
        TrainConfig(scheduler=Name("cosine"))


def test_an_integer_given_for_a_real_setting_is_stored_as_a_float():
    config = TrainConfig(lr=1, label_smoothing=0)
    assert (type(config.lr), type(config.label_smoothing)) == (float, float)


def test_from_dict_reads_back_to_dict_and_skips_the_run_facts():
    config = TrainConfig.from_spec(parse(f"train(scheduler=cosine, lr=2e-3)\n{NET}"))
    saved = json.loads(json.dumps({**config.to_dict(), "device_used": "cpu", "params": 7}))
    again = TrainConfig.from_dict(saved, "config.json")
    assert again == config and type(again.scheduler) is str and type(again.lr) is float


@pytest.mark.parametrize("change, message", [
    ({"lr": "fast"}, "config.json: training setting 'lr' must be a positive number, got 'fast'"),
    ({"epochs": 2.5}, "config.json: training setting 'epochs' must be a positive integer"),
    ({"colour": "red"}, "config.json has an unknown setting 'colour'"),
    ({"optimizer": None}, "config.json: training setting 'optimizer' must be one of"),
])
def test_from_dict_names_the_setting_at_fault(change, message):
    with pytest.raises(RunError) as caught:
        TrainConfig.from_dict({**TrainConfig().to_dict(), **change}, "config.json")
    assert caught.value.message.startswith(message), caught.value.message


def test_from_dict_refuses_a_missing_setting_and_a_non_object():
    saved = TrainConfig().to_dict()
    del saved["batch_size"]
    with pytest.raises(RunError, match="config.json has no setting 'batch_size'"):
        TrainConfig.from_dict(saved, "config.json")
    with pytest.raises(RunError, match="config.json holds no settings"):
        TrainConfig.from_dict([1, 2], "config.json")


def _run_dir(tmp_path, text: str):
    (tmp_path / "last.pt").write_bytes(b"")  # resumed_config reads only config.json
    (tmp_path / "config.json").write_text(text)
    return tmp_path


def test_resumed_config_checks_config_json(tmp_path):
    run = _run_dir(tmp_path, json.dumps({**TrainConfig().to_dict(), "subset": -3}))
    with pytest.raises(RunError, match=re.escape(
            f"cannot resume {run}: {run / 'config.json'}: training setting 'subset' must be a "
            f"non-negative integer, got -3")):
        resumed_config(run, {})
    run = _run_dir(tmp_path, '{"epochs": 3,')
    with pytest.raises(RunError, match=re.escape(f"cannot read {run / 'config.json'}: not valid "
                                                 f"JSON")):
        resumed_config(run, {})


# --- through the command line --------------------------------------------------------------------

def _train(*args):
    from typer.testing import CliRunner
    from archdsl.cli import app
    return CliRunner().invoke(app, ["train", *map(str, args)])


def test_cli_refuses_an_option_the_config_refuses(tmp_path):
    spec = tmp_path / "net.spec"
    spec.write_text(f"input 1x28x28\n{NET}\n")
    result = _train(spec, "--dataset", "synthetic", "--lr", "0", "--out", tmp_path / "run")
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "error: training setting 'lr' must be a positive number, got 0.0" in result.stderr
    assert not (tmp_path / "run").exists()


def test_cli_resume_with_a_damaged_config_json_is_a_clear_error(tmp_path):
    spec = tmp_path / "net.spec"
    spec.write_text(f"input 1x28x28\ntrain(scheduler=cosine)\n{NET}\n")
    run = tmp_path / "run"
    first = _train(spec, "--dataset", "synthetic", "--subset", "64", "--epochs", "1",
                   "--out", run)
    assert first.exit_code == 0, first.output
    config = run / "config.json"
    saved = json.loads(config.read_text())
    assert saved["scheduler"] == "cosine"
    for text, message in [
            ("{", f"cannot read {config}: not valid JSON"),
            (json.dumps({**saved, "epochs": "two"}),
             f"{config}: training setting 'epochs' must be a positive integer, got 'two'"),
            (json.dumps({k: v for k, v in saved.items() if k != "seed"}),
             f"{config} has no setting 'seed'")]:
        config.write_text(text)
        result = _train(spec, "--resume", run)
        assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
        assert "Traceback" not in result.output
        assert f"error: cannot resume {run}: {message}" in result.stderr, result.stderr


def test_an_image_folder_absent_here_is_left_to_the_machine_that_trains():
    # check runs where the data may not be; only a near-miss of a known name is refused.
    spec = parse(f"input 1x28x28\ntrain(dataset='my_photos')\n{NET}")
    assert TrainConfig.from_spec(spec).dataset == "my_photos"
