"""The dataset registry: one DatasetEntry per name, as torchvision keeps its models.

Torch-free and numpy-free: config.py checks a spec's `train(dataset=...)` against these names
and the command line's help lists them, neither of which may import torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional


@dataclass(frozen=True)
class Files:
    """Which files make a dataset and where under a data root they are looked for.

    `splits` maps each split to its files (a reader knows each one's role by its position),
    `extra` are files every split needs (CIFAR's meta). `folders` are tried in order under each
    data root: the first is torchvision's layout, where a download lands; "" is the root itself.
    """

    splits: dict[str, tuple[str, ...]]
    folders: tuple[str, ...]
    extra: tuple[str, ...] = ()
    gzip: bool = False  # each file may also be there as NAME.gz

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for names in self.splits.values() for name in names) + self.extra


@dataclass(frozen=True)
class Torchvision:
    """The torchvision dataset class that downloads the files, and its arguments per call."""

    dataset: str
    calls: tuple[dict, ...] = field(default_factory=lambda: ({"train": True},))


@dataclass(frozen=True)
class DatasetEntry:
    """Everything archdsl knows of one dataset. `files` None: the data is made, not read
    (synthetic), and its shape and classes follow the spec."""

    name: str
    shape: Optional[tuple[int, int, int]]  # (C, H, W)
    classes: Optional[tuple[str, ...]]  # the official names, index = label
    files: Optional[Files] = None
    # reader(entry, {file name: path}) -> (({split: (images N×C×H×W uint8, labels)}, classes
    # or None when the files name none)
    reader: Optional[Callable] = None
    get: str = ""  # how to get the files, for the hint when none are found
    debian: Optional[tuple[str, str]] = None  # (package, where it puts the files)
    download: Optional[Torchvision] = None


_REGISTRY: dict[str, DatasetEntry] = {}
# Where Debian packages put each dataset's files; a dict of its own so that tests can point it
# elsewhere.
DEBIAN_DIRS: dict[str, Path] = {}


def register_dataset(entry: DatasetEntry) -> DatasetEntry:
    if entry.name in _REGISTRY:
        raise ValueError(f"a dataset is already registered under the name {entry.name!r}")
    if entry.classes is not None and len(set(entry.classes)) != len(entry.classes):
        raise ValueError(f"dataset {entry.name!r} names a class twice")
    _REGISTRY[entry.name] = entry
    if entry.debian is not None:
        DEBIAN_DIRS[entry.name] = Path(entry.debian[1])
    return entry


def list_datasets() -> tuple[str, ...]:
    """Every registered name, in the order registered."""
    return tuple(_REGISTRY)


def dataset_key(name: str) -> str:
    """The registry's spelling of a name: `Fashion_MNIST` is fashion-mnist."""
    return name.lower().replace("_", "-")


def find_dataset(name: str) -> DatasetEntry | None:
    """The entry of a dataset name, however spelt, or None when no entry has it."""
    return _REGISTRY.get(dataset_key(name))
