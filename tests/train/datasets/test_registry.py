"""The dataset registry: entries, their names against torchvision's, no torch on import, one
entry adds a dataset, and the spec check and the command line read it."""
import dataclasses
import subprocess
import sys

import pytest
import torch

from archdsl.errors import ArgumentError
from archdsl import parse
from archdsl.train.config import TrainConfig
from archdsl.train.data import DataError, load_dataset
from archdsl.train.datasets import catalogue, registry
from archdsl.train.datasets.registry import (DatasetEntry, Files, find_dataset, list_datasets,
                                             register_dataset)

from dataset_files import write_idx_splits

NET = "Flatten -> Linear(10)"


def test_every_entry_is_whole():
    assert {"fashion-mnist", "mnist", "kmnist", "emnist-balanced", "cifar10", "cifar100", "svhn",
            "synthetic"} <= set(list_datasets())
    for name in list_datasets():
        entry = find_dataset(name)
        assert entry.name == name
        if entry.files is None:  # made, not read
            assert entry.shape is None and entry.classes is None
            continue
        c, h, w = entry.shape
        assert c in (1, 3) and entry.classes and callable(entry.reader) and entry.get
        assert set(entry.files.splits) == {"train", "test"} and entry.files.folders
        assert all(type(n) is str for n in entry.classes)


def test_class_names_are_torchvisions():
    from torchvision.datasets import CIFAR10, EMNIST, FashionMNIST, KMNIST
    assert list(find_dataset("fashion-mnist").classes) == FashionMNIST.classes
    assert list(find_dataset("kmnist").classes) == KMNIST.classes
    assert list(find_dataset("emnist-balanced").classes) == EMNIST.classes_split_dict["balanced"]
    cifar100 = find_dataset("cifar100").classes
    assert len(cifar100) == 100 and list(cifar100) == sorted(cifar100)  # the meta file's order
    assert {"apple", "aquarium_fish", "willow_tree", "worm"} <= set(cifar100)
    assert len(find_dataset("cifar10").classes) == 10 == len(find_dataset("svhn").classes)
    assert CIFAR10.base_folder in find_dataset("cifar10").files.folders


def test_names_are_spelt_either_way():
    assert find_dataset("Fashion_MNIST") is find_dataset("fashion-mnist")
    assert find_dataset("EMNIST_balanced").name == "emnist-balanced"
    assert find_dataset("imagenet") is None


def test_a_duplicate_name_is_refused(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    with pytest.raises(ValueError, match="already registered under the name 'kmnist'"):
        register_dataset(dataclasses.replace(find_dataset("kmnist")))
    with pytest.raises(ValueError, match="names a class twice"):
        register_dataset(DatasetEntry("twice", (1, 2, 2), ("a", "a")))


def test_one_entry_adds_a_dataset(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    names = {"train": ("tiny-train-images", "tiny-train-labels"),
             "test": ("tiny-test-images", "tiny-test-labels")}
    register_dataset(DatasetEntry("tiny", (1, 4, 4), ("yes", "no"),
                                  Files(names, folders=("Tiny",), gzip=True),
                                  catalogue.read_idx_splits, get="make them"))
    written = write_idx_splits(tmp_path / "Tiny", names, sizes=(6, 3), classes=2, hw=(4, 4),
                               zipped=True)
    got = load_dataset("tiny", tmp_path, download=False)
    assert got.classes == ["yes", "no"] and got.shape == (1, 4, 4)
    assert torch.equal(got.test.images[:, 0], torch.from_numpy(written["test"][0]))
    with pytest.raises(DataError, match=r"(?s)tiny not found.*\n.*hint: make them"):
        load_dataset("tiny", tmp_path / "elsewhere", download=True)  # nothing to download with


def test_the_registry_imports_neither_torch_nor_numpy():
    code = ("import sys\nimport archdsl.train.config, archdsl.train.datasets\n"
            "from archdsl.train.datasets import list_datasets\nassert list_datasets()\n"
            "for module in ('torch', 'numpy', 'scipy'):\n"
            "    assert module not in sys.modules, module + ' was imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", ["kmnist", "emnist-balanced", "cifar100", "svhn"])
def test_new_datasets_pass_the_spec_check(name):
    spec = parse(f"input 1x28x28\ntrain(dataset={name!r})\n{NET}")
    assert TrainConfig.from_spec(spec).dataset == name


def test_a_misspelt_dataset_is_told_from_the_registry():
    with pytest.raises(ArgumentError) as err:
        TrainConfig.from_spec(parse(f"input 3x32x32\ntrain(dataset='cifar1000')\n{NET}"))
    assert err.value.message == "unknown dataset 'cifar1000' (did you mean 'cifar100'?)"
    assert all(name in err.value.hint for name in list_datasets())
