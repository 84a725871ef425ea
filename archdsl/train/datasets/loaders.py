"""load_dataset: a registered dataset (found, read, held in memory), synthetic data, or an image
folder (any directory, kept on disk as a torchvision ImageFolder)."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ...layers.geometry import format_shape
from .places import locate
from .registry import DatasetEntry, find_dataset, list_datasets
from .types import DataError, Dataset, Split


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, *,
                 input_shape: tuple | None = None, num_classes: int | None = None,
                 download: bool = True, train_size: int = 2048, test_size: int = 512) -> Dataset:
    """Load a registered dataset or an image folder. input_shape/num_classes shape `synthetic` and
    image folders (resize, channels); registered datasets ignore them: check_fits compares
    afterwards."""
    entry = find_dataset(name)
    if entry is not None and entry.files is None:
        return _synthetic(entry, input_shape, num_classes, train_size, test_size)
    if entry is not None:
        return _read(entry, locate(entry, data_dir, download))
    if Path(name).is_dir():
        return _image_folder(name, input_shape)
    raise DataError(f"unknown dataset {name!r}: not one of {', '.join(list_datasets())}, "
                    "nor an existing directory")


def _read(entry: DatasetEntry, files: dict[str, Path]) -> Dataset:
    splits, classes = entry.reader(entry, files)
    train, test = (Split(torch.from_numpy(images), torch.from_numpy(labels))
                   for images, labels in (splits["train"], splits["test"]))
    return Dataset(entry.name, train, test, list(classes or entry.classes),
                   tuple(train.images.shape[1:]))


def _synthetic(entry: DatasetEntry, input_shape, num_classes, train_size: int,
               test_size: int) -> Dataset:
    if not input_shape or not num_classes:
        raise DataError("the synthetic dataset needs an input shape and a number of classes")
    g = torch.Generator().manual_seed(0)  # fixed: runs are comparable and tests reproducible
    train, test = (Split(torch.randint(0, 256, (n, *input_shape), generator=g, dtype=torch.uint8),
                         torch.randint(0, num_classes, (n,), generator=g))
                   for n in (train_size, test_size))
    return Dataset(entry.name, train, test, [str(i) for i in range(num_classes)],
                   tuple(input_shape))


def _image_folder(name: str, input_shape) -> Dataset:
    from PIL import Image
    from torchvision import datasets, transforms
    root = Path(name)
    split = (root / "train").is_dir()  # else the whole folder is for training, with no test split
    train_dir = root / "train" if split else root
    test_dir = next((root / s for s in ("test", "val") if split and (root / s).is_dir()), None)
    try:
        train = datasets.ImageFolder(str(train_dir))
        test = datasets.ImageFolder(str(test_dir)) if test_dir else None
    except (OSError, RuntimeError) as err:  # FileNotFoundError: no class folders or no images
        raise DataError(f"cannot use {root} as an image folder: {err}") from err
    if test is not None and test.classes != train.classes:
        raise DataError(f"{train_dir} and {test_dir} have different classes: "
                        f"{train.classes} vs {test.classes}")
    if input_shape is None:  # no spec to follow: take the first image's size
        with Image.open(train.samples[0][0]) as im:
            input_shape = (1 if im.mode in ("1", "L", "I", "F", "I;16") else 3, im.height, im.width)
    if len(input_shape) != 3 or input_shape[0] not in (1, 3):
        raise DataError(f"image folders give 1×H×W or 3×H×W images, not {format_shape(input_shape)}")
    c = input_shape[0]
    # ImageFolder's loader already converts to RGB, so only grayscale needs a step
    steps = [transforms.Grayscale(1)] if c == 1 else []
    transform = transforms.Compose(steps + [transforms.Resize(tuple(input_shape[1:])),
                                            transforms.ToTensor(),
                                            transforms.Normalize((0.5,) * c, (0.5,) * c)])
    for part in (train, test):
        if part is not None:
            part.transform = transform
    return Dataset(name, train, test, list(train.classes), tuple(input_shape))
