"""Datasets to train on: find the files locally, download only as a last resort, explain failures.

Fashion-MNIST, MNIST and CIFAR-10 are small enough to live in memory as uint8 tensors; an image
folder (any directory name) stays on disk as a torchvision ImageFolder; `synthetic` needs no files.
"""
from __future__ import annotations

import os
import shutil
import socket
import struct
import tempfile
import zlib
from dataclasses import dataclass
from math import prod
from pathlib import Path

import numpy as np
import torch

from ..errors import RunError
from ..layers.geometry import format_shape
from .config import DATASETS as KNOWN
# Where Debian packages put the official files; no Debian package ships MNIST or CIFAR-10.
DEBIAN_DIRS = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}
DOWNLOAD_TIMEOUT = 30.0  # seconds per socket operation; urllib would otherwise wait forever

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
# name -> (torchvision's folder under the data root, class names)
_IDX_SETS = {"fashion-mnist": ("FashionMNIST", FASHION_CLASSES),
             "mnist": ("MNIST", [str(i) for i in range(10)])}
_IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CIFAR = "cifar-10-batches-py"
_DEBIAN = "Debian package location"


class DataError(RunError):
    """A dataset cannot be found, read or made (a RunError: it renders without a spec position)."""


class DataMismatchError(DataError):
    """The data does not fit the spec: a different image shape or number of classes."""


@dataclass
class Split:
    """One split held in memory, as stored: images are NOT normalized here.

    The trainer maps them on the device with x / 127.5 - 1, the same as ToTensor + Normalize(0.5, 0.5),
    so a whole dataset moves to the GPU as uint8, a quarter of the float size.
    """

    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Dataset:
    """`train`/`test`: Splits when in memory, else torch datasets of (normalized C×H×W float, label)."""

    name: str
    train: Split | torch.utils.data.Dataset
    test: Split | torch.utils.data.Dataset | None
    classes: list[str]
    shape: tuple[int, ...]  # (C, H, W)

    @property
    def in_memory(self) -> bool:
        return isinstance(self.train, Split)


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, *,
                 input_shape: tuple | None = None, num_classes: int | None = None,
                 download: bool = True, train_size: int = 2048, test_size: int = 512) -> Dataset:
    """Load a KNOWN dataset or an image folder. input_shape/num_classes shape `synthetic` and image
    folders (resize, channels); known datasets ignore them: check_fits compares afterwards."""
    key = name.lower().replace("_", "-")
    if key == "synthetic":
        return _synthetic(input_shape, num_classes, train_size, test_size)
    if key in KNOWN:
        places = _places(key, data_dir)
        return _idx_dataset(key, places, download) if key in _IDX_SETS else _cifar(places, download)
    if Path(name).is_dir():
        return _image_folder(name, input_shape)
    raise DataError(f"unknown dataset {name!r}: not one of {', '.join(KNOWN)}, "
                    "nor an existing directory")


def check_fits(input_shape: tuple, output_shape: tuple, dataset: Dataset) -> None:
    """Raise DataMismatchError unless the spec takes the dataset's images and scores its classes."""
    k = len(dataset.classes)
    if tuple(input_shape) != tuple(dataset.shape):
        raise DataMismatchError(f"the spec takes {format_shape(input_shape)} input but {dataset.name} "
                                f"images are {format_shape(dataset.shape)}")
    if tuple(output_shape) != (k,):
        got = (f"has {output_shape[0]} outputs" if len(output_shape) == 1
               else f"outputs {format_shape(output_shape)}")
        raise DataMismatchError(f"the spec {got} but {dataset.name} has {k} classes",
                                hint=f"end the network with a layer of {k} outputs")


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not, checking the header against the data."""
    try:
        raw = Path(path).read_bytes()
        if raw[:2] == b"\x1f\x8b":  # sniff rather than trust the extension
            raw = _gunzip_as_declared(raw, path)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"cannot read {path}: {err}") from err
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path} is not an IDX file: bad magic number 0x{raw[:4].hex()}")
    start = 4 + 4 * raw[3]
    if len(raw) < start:
        raise DataError(f"{path} is truncated: it ends inside its header")
    dims = struct.unpack(f">{raw[3]}I", raw[4:start])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    want = start + prod(dims) * dtype.itemsize
    if want > MAX_IDX_BYTES:
        raise DataError(f"{path} declares {format_shape(dims)} values: more than "
                        f"{MAX_IDX_BYTES // 2**30} GiB")
    if len(raw) != want:
        problem = "is truncated" if len(raw) < want else "has trailing bytes"
        raise DataError(f"{path} {problem}: the header promises {format_shape(dims)} values "
                        f"({want} bytes) but the file has {len(raw)} bytes")
    # astype copies into native byte order and a writable array that torch can adopt
    return np.frombuffer(raw, dtype, offset=start).reshape(dims).astype(dtype.newbyteorder("="))


MAX_IDX_BYTES = 8 * 2 ** 30  # Fashion-MNIST's largest file is 47 MB


def _gunzip_as_declared(compressed: bytes, path) -> bytes:
    """Inflate no more than the IDX header declares, and one byte to tell of trailing data: a
    small file that inflates without end (a gzip bomb) costs no more memory than it claims."""
    inflate, pending, out = zlib.decompressobj(wbits=31), compressed, bytearray()

    def until(size: int) -> None:
        nonlocal pending
        while len(out) < size and not inflate.eof:
            chunk = inflate.decompress(pending, size - len(out))
            pending = inflate.unconsumed_tail
            if not chunk and not pending:
                raise EOFError("Compressed file ended before the end-of-stream marker was "
                               "reached")
            out.extend(chunk)

    until(4)
    if len(out) == 4 and out[2] in _IDX_TYPES:
        until(4 + 4 * out[3])
        if len(out) == 4 + 4 * out[3]:
            dims = struct.unpack(f">{out[3]}I", out[4:])
            declared = len(out) + prod(dims) * np.dtype(_IDX_TYPES[out[2]]).itemsize
            if declared <= MAX_IDX_BYTES:
                until(declared + 1)
    return bytes(out)


def _places(key: str, data_dir) -> list[tuple[Path, str]]:
    """Candidate data roots in search order, each with where it came from."""
    places = [(data_dir, "--data-dir"), (os.environ.get("ARCHDSL_DATA"), "$ARCHDSL_DATA"),
              ("data", "./data"), (DEBIAN_DIRS.get(key), _DEBIAN)]
    out: dict[Path, str] = {}
    for path, origin in places:
        if path:
            out.setdefault(Path(path).absolute(), origin)
    return list(out.items())


def _find_idx(folder: str, places) -> tuple[dict[str, Path] | None, list[str]]:
    """The four IDX files from the first directory holding all of them, and every directory looked in."""
    looked = []
    for root, origin in places:
        for d in (root / folder / "raw", root):
            files = {stem: next((p for p in (d / stem, d / f"{stem}.gz") if p.is_file()), None)
                     for pair in _IDX_FILES.values() for stem in pair}
            if all(files.values()):
                return files, looked
            missing = [s for s, p in files.items() if p is None]
            note = "" if len(missing) == 4 else f" (incomplete: no {', '.join(missing)})"
            looked.append(f"{d}  [{origin}]{note}")
    return None, looked


def _locate(key: str, find, tv_class: str, subpath: str, places, download: bool, wanted: str,
            hint: str):
    """What `find` finds, downloading if need be; else one error naming every place looked in."""
    found, looked = find(places)
    if found is None:
        failure = _try_download(tv_class, subpath, places, download)
        found, _ = find(places)
        if found is None:
            raise DataError(f"{key} not found: looked for {wanted} in\n  " + "\n  ".join(looked)
                            + f"\n{failure}", hint=hint)
    return found


def _idx_dataset(key: str, places, download: bool) -> Dataset:
    folder, classes = _IDX_SETS[key]
    apt = "`apt-get install dataset-fashion-mnist`, or " if key in DEBIAN_DIRS else ""
    files = _locate(key, lambda ps: _find_idx(folder, ps), folder, f"{folder}/raw", places, download,
                    ", ".join(s for p in _IDX_FILES.values() for s in p) + " (each raw or .gz)",
                    f"{apt}copy the four official files into ./data/{folder}/raw/, "
                    "or pass --data-dir DIR (or set ARCHDSL_DATA) where they are")
    splits = {}
    for split, (images_stem, labels_stem) in _IDX_FILES.items():
        images, labels = read_idx(files[images_stem]), read_idx(files[labels_stem])
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataError(f"{files[images_stem]} holds {images.dtype} of shape "
                            f"{format_shape(images.shape)}, not uint8 images N×H×W")
        if not len(images):
            raise DataError(f"{files[images_stem]} holds no images")
        if labels.dtype.kind not in "iu":  # float labels may be NaN, and no class is 2.5
            raise DataError(f"{files[labels_stem]} holds {labels.dtype} labels, not integers")
        low, high = (int(labels.min(initial=0)), int(labels.max(initial=0))) if labels.ndim else (0, 0)
        if labels.ndim != 1 or len(labels) != len(images) or low < 0 or high >= len(classes):
            raise DataError(f"{files[labels_stem]} does not label {files[images_stem]}: "
                            f"{labels.size} labels in {low}..{high} for {len(images)} "
                            f"images of {len(classes)} classes")
        splits[split] = Split(torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels).long())
    return Dataset(key, splits["train"], splits["test"], classes,
                   tuple(splits["train"].images.shape[1:]))


def _find_cifar(places):
    looked = [f"{root / _CIFAR}  [{origin}]" for root, origin in places]
    return next((r for r, _ in places if (r / _CIFAR).is_dir()), None), looked


def _cifar(places, download: bool) -> Dataset:
    from torchvision.datasets import CIFAR10
    root = _locate("cifar10", _find_cifar, "CIFAR10", _CIFAR, places, download, _CIFAR,
                   "unpack the official cifar-10-python.tar.gz into ./data/, "
                   "or pass --data-dir DIR (or set ARCHDSL_DATA) where it is")
    try:
        parts = [CIFAR10(root, train=t, download=False) for t in (True, False)]
    except (RuntimeError, OSError, ValueError, EOFError) as err:
        raise DataError(f"{root / _CIFAR} is incomplete or corrupt: {err}") from err
    train, test = (Split(torch.from_numpy(p.data).permute(0, 3, 1, 2).contiguous(),
                         torch.tensor(p.targets, dtype=torch.long)) for p in parts)
    return Dataset("cifar10", train, test, list(parts[0].classes), tuple(train.images.shape[1:]))


def _try_download(tv_class: str, subpath: str, places, download: bool) -> str:
    """Download with torchvision into the first writable place; return a line saying how it went.

    The download lands in a scratch folder that is moved into place only once complete, so an
    interrupted or failed download never leaves files that a later search would take for data.
    """
    if not download:
        return "Nothing was downloaded (downloading is off)."
    dest = next((r for r, origin in places if origin != _DEBIAN and _writable(r)), None)
    if dest is None:
        return "Could not download: none of the places above is writable."
    import torchvision.datasets
    scratch = created = None
    timeout = socket.getdefaulttimeout()
    try:
        created = next((p for p in [*reversed(dest.parents), dest] if not p.exists()), None)
        dest.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".archdsl-download-", dir=dest))
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)
        getattr(torchvision.datasets, tv_class)(scratch, train=True, download=True)
        target = dest / subpath
        if not target.exists():  # one rename: all or nothing
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(scratch / subpath, target)
        else:
            for f in (scratch / subpath).iterdir():
                os.replace(f, target / f.name)
        return f"Downloaded into {target}."
    except Exception as err:  # noqa: BLE001 - any failure becomes part of the one message
        if created is not None:  # leave no empty folders behind either
            shutil.rmtree(created, ignore_errors=True)
        return f"Downloading into {dest} failed: {' '.join(str(err).split())}"
    finally:
        socket.setdefaulttimeout(timeout)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _writable(path: Path) -> bool:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path.is_dir() and os.access(path, os.W_OK)


def _synthetic(input_shape, num_classes, train_size: int, test_size: int) -> Dataset:
    if not input_shape or not num_classes:
        raise DataError("the synthetic dataset needs an input shape and a number of classes")
    g = torch.Generator().manual_seed(0)  # fixed: runs are comparable and tests reproducible
    train, test = (Split(torch.randint(0, 256, (n, *input_shape), generator=g, dtype=torch.uint8),
                         torch.randint(0, num_classes, (n,), generator=g))
                   for n in (train_size, test_size))
    return Dataset("synthetic", train, test, [str(i) for i in range(num_classes)], tuple(input_shape))


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
