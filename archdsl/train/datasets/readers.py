"""How each file format is read: files found -> uint8 images N×C×H×W and int64 labels per split.

A reader is called as reader(entry, {file name: path}) and returns ({split: (images, labels)},
the class names the files give, or None). Each checks what it read and names the file at fault.
The catalogue refers to these functions and config.py imports the catalogue, so nothing here
imports numpy (or scipy) until a reader runs.
"""
from __future__ import annotations

import pickle
from math import prod

from ...layers.geometry import format_shape
from .types import DataError


def read_idx_splits(entry, files):
    """MNIST's format: per split an IDX file of N×H×W images and one of N labels."""
    import numpy as np

    from .idx import read_idx
    splits = {}
    for split, (images_name, labels_name) in entry.files.splits.items():
        images_file, labels_file = files[images_name], files[labels_name]
        images, labels = read_idx(images_file), read_idx(labels_file)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataError(f"{images_file} holds {images.dtype} of shape "
                            f"{format_shape(images.shape)}, not uint8 images N×H×W")
        splits[split] = _checked(entry, images[:, None], labels, images_file, labels_file)
    return splits, None


def read_idx_transposed(entry, files):
    """EMNIST: MNIST's format, but each image is stored transposed (its rows are the picture's
    columns). torchvision's EMNIST gives them as stored; here they are turned upright, as MNIST's
    are, so that a network sees the same strokes in both."""
    import numpy as np
    splits, classes = read_idx_splits(entry, files)
    return {split: (np.ascontiguousarray(images.transpose(0, 1, 3, 2)), labels)
            for split, (images, labels) in splits.items()}, classes


def read_cifar(entry, files):
    """CIFAR's python version: pickled batches of a uint8 `data` array (one image per row, the
    red, green then blue plane) with `labels` (CIFAR-10) or `fine_labels` (CIFAR-100), and a
    meta file of the class names (`label_names` or `fine_label_names`), as torchvision reads it."""
    import numpy as np
    meta_file = files[entry.files.extra[0]]
    meta = _unpickle(meta_file)
    names = meta.get("fine_label_names", meta.get("label_names"))
    if not isinstance(names, list) or not names:
        raise DataError(f"{meta_file} names no classes: it has no fine_label_names or "
                        "label_names list")
    classes = [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]
    splits = {}
    for split, batch_names in entry.files.splits.items():
        batches = []
        for name in batch_names:
            batch = _unpickle(files[name])
            data, labels = batch.get("data"), batch.get("fine_labels", batch.get("labels"))
            if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
                    or data.shape[1] != prod(entry.shape):
                raise DataError(f"{files[name]} holds no uint8 `data` array of one "
                                f"{format_shape(entry.shape)} image per row")
            if labels is None:
                raise DataError(f"{files[name]} holds no labels")
            batches.append(_checked(entry, data.reshape(-1, *entry.shape), np.asarray(labels),
                                    files[name], files[name], classes=len(classes)))
        splits[split] = tuple(np.concatenate(parts) for parts in zip(*batches))
    return splits, classes


def read_svhn(entry, files):
    """SVHN's MATLAB files as torchvision reads them: X of H×W×C×N uint8 images and y of N×1
    labels 1..10, where 10 stands for the digit 0."""
    import numpy as np
    from scipy.io import loadmat
    splits = {}
    for split, (name,) in entry.files.splits.items():
        path = files[name]
        try:
            mat = loadmat(path)
        except (OSError, ValueError, TypeError, NotImplementedError) as err:
            raise DataError(f"cannot read {path}: {err}") from err
        x, y = mat.get("X"), mat.get("y")
        if x is None or y is None:
            raise DataError(f"{path} holds no X and y arrays")
        if x.ndim != 4 or x.dtype != np.uint8:
            raise DataError(f"{path} holds X as {x.dtype} of shape {format_shape(x.shape)}, "
                            "not uint8 images H×W×C×N")
        labels = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
        if labels.dtype.kind in "iu":
            labels = np.where(labels == 10, 0, labels)
        splits[split] = _checked(entry, np.ascontiguousarray(x.transpose(3, 2, 0, 1)), labels,
                                 path, path)
    return splits, None


def _checked(entry, images, labels, images_file, labels_file, classes: int | None = None):
    """images (N×C×H×W uint8) and int64 labels, once they are seen to make a split of `entry`."""
    import numpy as np
    classes = len(entry.classes) if classes is None else classes
    if not len(images):
        raise DataError(f"{images_file} holds no images")
    if tuple(images.shape[1:]) != tuple(entry.shape):
        raise DataError(f"{images_file} holds {format_shape(images.shape[1:])} images, not "
                        f"{entry.name}'s {format_shape(entry.shape)}")
    if labels.dtype.kind not in "iu":  # float labels may be NaN, and no class is 2.5
        raise DataError(f"{labels_file} holds {labels.dtype} labels, not integers")
    low, high = (int(labels.min(initial=0)), int(labels.max(initial=0))) if labels.ndim else (0, 0)
    if labels.ndim != 1 or len(labels) != len(images) or low < 0 or high >= classes:
        fault = (f"{labels_file} does not label {images_file}" if labels_file != images_file
                 else f"the labels in {labels_file} do not fit its images")
        raise DataError(f"{fault}: {labels.size} labels in {low}..{high} for {len(images)} "
                        f"images of {classes} classes")
    return images, labels.astype(np.int64)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles what CIFAR's files hold, a dict of numpy arrays, lists and text, and refuses
    any other global: pickle can call any function, and a data file has no need to."""

    def find_class(self, module, name):
        found = _numpy_globals().get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which no data file needs")
        return found


def _numpy_globals() -> dict:
    """The globals a pickled numpy array names, under either name of numpy's core (numpy 2
    renamed numpy.core numpy._core; Python 2 wrote CIFAR's files with the old one)."""
    import codecs

    import numpy as np
    reconstruct = np.ndarray.__reduce__(np.zeros(0))[0]
    from_buffer = np.zeros(1).__reduce_ex__(5)[0]  # protocol 5 pickles arrays by buffer
    found = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
             ("_codecs", "encode"): codecs.encode}
    for core in ("numpy.core", "numpy._core"):
        found[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        found[(f"{core}.numeric", "_frombuffer")] = from_buffer
    return found


def _unpickle(path) -> dict:
    """A CIFAR file: a dict, its keys as text whichever Python pickled it."""
    try:
        with open(path, "rb") as f:
            # latin1, as torchvision reads them: Python 2 wrote these files, and numpy's arrays
            # from Python 2 unpickle only so
            loaded = _ArrayUnpickler(f, encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError,
            IndexError) as err:
        raise DataError(f"cannot read {path}: {err}") from err
    if not isinstance(loaded, dict):
        raise DataError(f"{path} is not a CIFAR file: it holds a {type(loaded).__name__}, "
                        "not a dict")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in loaded.items()}
