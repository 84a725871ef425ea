"""The registry from the command line, as the README tells a user to run it: `archdsl train
--help` lists it, and `archdsl train`/`archdsl eval` run on a small KMNIST and a small CIFAR-100."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from torchvision.datasets import KMNIST

from archdsl.train.datasets import list_datasets
from archdsl.train.datasets.catalogue import MNIST_FILES

from dataset_files import write_cifar100, write_idx_splits

ROOT = Path(__file__).resolve().parents[3]
KMNIST_NET = "input 1x28x28\nConv(4, 3, p=1) -> ReLU -> MaxPool(2) -> Flatten -> Linear(10)\n"
CIFAR100_NET = "input 3x32x32\nConv(4, 3, p=1) -> ReLU -> MaxPool(4) -> Flatten -> Linear(100)\n"


def archdsl(*args, cwd=ROOT):
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("ARCHDSL_DATA", None)
    return subprocess.run([sys.executable, "-m", "archdsl", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_train_help_lists_every_registered_dataset():
    result = archdsl("train", "--help")
    assert result.returncode == 0, result.stderr
    # the help is a box: join its wrapped lines back into words
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.stdout).split())
    listed = re.search(r"--dataset (?:<str>|TEXT) (.*?), or an ImageFolder directory", text)
    assert listed, text
    assert listed[1].replace(" ", "").split(",") == list(list_datasets())


def _train(tmp_path, net: str, dataset: str, *more):
    spec = tmp_path / "net.spec"
    spec.write_text(net)
    result = archdsl("train", spec, "--dataset", dataset, "--data-dir", tmp_path / "data",
                     "--subset", 32, "--epochs", 1, "--batch-size", 16, "--device", "cpu",
                     "--out", tmp_path / "run", *more, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads((tmp_path / "run" / "config.json").read_text())


def test_train_and_eval_on_a_small_kmnist(tmp_path):
    write_idx_splits(tmp_path / "data" / "KMNIST" / "raw", MNIST_FILES, sizes=(64, 30),
                     zipped=True)
    config = _train(tmp_path, KMNIST_NET, "kmnist")
    assert config["dataset"] == "kmnist" and config["train_examples"] == 32
    assert config["classes"] == KMNIST.classes
    result = archdsl("eval", tmp_path / "run", "--data-dir", tmp_path / "data", "--format",
                     "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["classes"] == KMNIST.classes and report["examples"] == 30


def test_train_on_a_small_cifar100(tmp_path):
    written = write_cifar100(tmp_path / "data", sizes=(40, 10))
    config = _train(tmp_path, CIFAR100_NET, "cifar100")
    assert config["classes"] == written["classes"] and len(config["classes"]) == 100
