"""The spec's train(...) block and its precedence under command-line options."""
import pytest

from archdsl import parse
from archdsl.errors import ArgumentError
from archdsl.train.config import TrainConfig

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
