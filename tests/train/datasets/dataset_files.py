"""Small datasets written in their official formats, byte for byte as their makers wrote them:
IDX files (MNIST, KMNIST, EMNIST), CIFAR's Python 2 pickles, SVHN's MATLAB v5 files."""
from __future__ import annotations

import gzip
import io
import pickle
import struct
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray, zipped: bool = False) -> Path:
    """An IDX file of unsigned bytes: magic 0 0 8 ndim, the dimensions big-endian, the values."""
    blob = struct.pack(f">HBB{array.ndim}I", 0, 0x08, array.ndim, *array.shape) + \
        np.ascontiguousarray(array, np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if zipped:
        path = path.with_name(path.name + ".gz")
    path.write_bytes(gzip.compress(blob) if zipped else blob)
    return path


def write_idx_splits(folder: Path, names: dict, sizes=(40, 20), classes: int = 10, hw=(28, 28),
                     zipped: bool = False, seed: int = 0) -> dict:
    """Each split's images (N×H×W) and labels as the IDX files `names` (split -> (images,
    labels)) in `folder`; returns {split: (images, labels)} as written."""
    rng = np.random.default_rng(seed)
    written = {}
    for (split, (images_name, labels_name)), n in zip(names.items(), sizes):
        images = rng.integers(0, 256, (n, *hw), dtype=np.uint8)
        labels = rng.integers(0, classes, n, dtype=np.uint8)
        write_idx(folder / images_name, images, zipped)
        write_idx(folder / labels_name, labels, zipped)
        written[split] = images, labels
    return written


class _Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2's str (the BINSTRING opcodes), as CIFAR's files were written by
    Python 2's cPickle: under encoding='latin1' they load as text, under 'bytes' as bytes."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_python2_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_python2_str


def write_python2_pickle(path: Path, obj) -> None:
    """`obj` pickled as CIFAR's files are: protocol 2, keys and text as Python 2 str, numpy
    arrays under the name Python 2's numpy gave its core (numpy.core.multiarray)."""
    out = io.BytesIO()
    _Python2Pickler(out, protocol=2).dump(obj)
    blob = out.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)


def write_cifar100(root: Path, sizes=(30, 10), seed: int = 0) -> dict:
    """cifar-100-python/{train,test,meta} with the official keys; returns {split: (images
    N×3×32×32, fine labels)} and the class names under "classes"."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    written = {"classes": [f"class_{k:02d}" for k in range(100)]}
    for split, n in zip(("train", "test"), sizes):
        images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        fine = rng.integers(0, 100, n).tolist()
        write_python2_pickle(folder / split, {
            b"filenames": [f"image_{i}.png".encode() for i in range(n)],
            b"batch_label": f"{split}ing batch 1 of 1".encode(),
            b"fine_labels": fine, b"coarse_labels": [label // 5 for label in fine],
            b"data": images.reshape(n, -1)})
        written[split] = images, np.array(fine)
    write_python2_pickle(folder / "meta", {
        b"fine_label_names": [name.encode() for name in written["classes"]],
        b"coarse_label_names": [f"super_{k}".encode() for k in range(20)]})
    return written


def write_svhn(root: Path, sizes=(30, 10), seed: int = 0) -> dict:
    """train_32x32.mat and test_32x32.mat as the official ones: X of H×W×C×N uint8 images, y
    of N×1 uint8 labels 1..10 (10 is the digit 0). Returns {split: (X, y)} as written."""
    from scipy.io import savemat
    rng = np.random.default_rng(seed)
    written = {}
    for split, n in zip(("train", "test"), sizes):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = rng.integers(1, 11, (n, 1), dtype=np.uint8)
        y[0, 0] = 10  # at least one zero digit
        root.mkdir(parents=True, exist_ok=True)
        savemat(root / f"{split}_32x32.mat", {"X": x, "y": y})  # format='5', as the official
        written[split] = x, y
    return written
