"""KMNIST, EMNIST-balanced, CIFAR-100 and SVHN read from small files in their official formats,
against torchvision's own dataset classes on the same files (the reference), and their failures."""
import os
import pickle
import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from archdsl.train.data import DataError, load_dataset
from archdsl.train.datasets.catalogue import MNIST_FILES

from dataset_files import (write_cifar100, write_idx, write_idx_splits, write_python2_pickle,
                           write_svhn)

EMNIST_FILES = {split: (f"emnist-balanced-{split}-images-idx3-ubyte",
                        f"emnist-balanced-{split}-labels-idx1-ubyte") for split in ("train", "test")}


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No data anywhere but what a test writes: an empty $ARCHDSL_DATA, cwd in tmp."""
    monkeypatch.setenv("ARCHDSL_DATA", str(tmp_path / "env"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _no_md5_check(monkeypatch, module):
    # the reference reads our small files only if it skips its md5 checks against the official
    monkeypatch.setattr(module, "check_integrity", lambda *args, **kwargs: True)


@pytest.mark.parametrize("zipped", [False, True])
def test_kmnist_matches_torchvision(isolated, zipped):
    from torchvision.datasets import KMNIST
    written = write_idx_splits(isolated / "KMNIST" / "raw", MNIST_FILES, zipped=zipped)
    got = load_dataset("kmnist", isolated, download=False)
    assert got.in_memory and got.shape == (1, 28, 28) and got.classes == KMNIST.classes
    for split, train in ((got.train, True), (got.test, False)):
        images, labels = written["train" if train else "test"]
        assert split.images.dtype == torch.uint8 and split.labels.dtype == torch.int64
        assert torch.equal(split.images[:, 0], torch.from_numpy(images))
        assert torch.equal(split.labels, torch.from_numpy(labels).long())
        if not zipped:  # torchvision reads the unzipped files only
            ref = KMNIST(isolated, train=train, download=False)
            assert torch.equal(split.images[:, 0], ref.data)
            assert torch.equal(split.labels, ref.targets)


def test_emnist_balanced_is_torchvisions_turned_upright(isolated):
    from torchvision.datasets import EMNIST
    write_idx_splits(isolated / "EMNIST" / "raw", EMNIST_FILES, classes=47)
    got = load_dataset("emnist-balanced", isolated, download=False)
    assert got.shape == (1, 28, 28) and got.classes == EMNIST.classes_split_dict["balanced"]
    assert len(got.classes) == 47
    for split, train in ((got.train, True), (got.test, False)):
        ref = EMNIST(isolated, split="balanced", train=train, download=False)
        # torchvision gives the images as stored, each one transposed
        assert torch.equal(split.images[:, 0], ref.data.transpose(1, 2))
        assert torch.equal(split.labels, ref.targets)
        assert split.images.is_contiguous()


def test_emnist_orientation_against_the_stored_bytes(isolated):
    # The files hold each image column by column: the first 28 bytes are the picture's left
    # column. Stored with only its first 28 bytes lit, the image is a bar down the left edge.
    image = np.zeros((1, 28, 28), np.uint8)
    image[0, 0, :] = 255  # bytes 0..27
    for split in ("train", "test"):
        images_name, labels_name = EMNIST_FILES[split]
        write_idx(isolated / "gzip" / images_name, image, zipped=True)  # gzip.zip unpacked
        write_idx(isolated / "gzip" / labels_name, np.array([46], np.uint8), zipped=True)
    got = load_dataset("emnist-balanced", isolated, download=False)
    assert torch.all(got.train.images[0, 0, :, 0] == 255)  # left column lit
    assert int(got.train.images.sum()) == 28 * 255
    assert got.classes[got.test.labels[0]] == "t"


def test_cifar100_matches_torchvision(isolated, monkeypatch):
    import torchvision.datasets.cifar
    from torchvision.datasets import CIFAR100
    _no_md5_check(monkeypatch, torchvision.datasets.cifar)
    written = write_cifar100(isolated / "data")
    got = load_dataset("cifar100", download=False)  # ./data
    assert got.in_memory and got.shape == (3, 32, 32) and got.classes == written["classes"]
    for split, name in ((got.train, "train"), (got.test, "test")):
        images, fine = written[name]
        assert split.images.dtype == torch.uint8 and split.images.is_contiguous()
        assert torch.equal(split.images, torch.from_numpy(images))
        assert split.labels.dtype == torch.int64 and split.labels.tolist() == fine.tolist()
        ref = CIFAR100(isolated / "data", train=name == "train", download=False)
        assert torch.equal(split.images, torch.from_numpy(ref.data).permute(0, 3, 1, 2))
        assert split.labels.tolist() == ref.targets
    assert got.classes == ref.classes


def test_cifar_pickle_that_would_run_code_is_refused(isolated):
    write_cifar100(isolated)
    ran = isolated / "ran"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {ran}",)
    (isolated / "cifar-100-python" / "test").write_bytes(pickle.dumps({"data": Payload()}))
    with pytest.raises(DataError, match=r"cannot read .*cifar-100-python/test: it names "
                                        r"(posix|os)\.system"):
        load_dataset("cifar100", isolated, download=False)
    assert not ran.exists()


def test_cifar_problems_name_the_file(isolated):
    write_cifar100(isolated)
    folder = isolated / "cifar-100-python"
    write_python2_pickle(folder / "test", {b"data": np.zeros((2, 3072), np.uint8),
                                           b"fine_labels": [0, 100]})
    with pytest.raises(DataError, match=r"the labels in .*cifar-100-python/test do not fit its "
                                        r"images: 2 labels in 0\.\.100 for 2 images of 100 classes"):
        load_dataset("cifar100", isolated, download=False)
    write_python2_pickle(folder / "test", {b"data": np.zeros((2, 1024), np.uint8),
                                           b"fine_labels": [0, 1]})
    with pytest.raises(DataError, match=r"test holds no uint8 `data` array of one 3×32×32 image"):
        load_dataset("cifar100", isolated, download=False)
    (folder / "meta").write_bytes((folder / "meta").read_bytes()[:50])
    with pytest.raises(DataError, match=r"cannot read .*cifar-100-python/meta"):
        load_dataset("cifar100", isolated, download=False)
    (folder / "train").unlink()
    with pytest.raises(DataError, match=r"cifar-100-python  \[--data-dir\] \(incomplete: no "
                                        r"train\)"):
        load_dataset("cifar100", isolated, download=False)


def test_svhn_matches_torchvision(isolated, monkeypatch):
    import torchvision.datasets.svhn
    from torchvision.datasets import SVHN
    _no_md5_check(monkeypatch, torchvision.datasets.svhn)
    written = write_svhn(isolated)
    got = load_dataset("svhn", isolated, download=False)
    assert got.in_memory and got.shape == (3, 32, 32) and got.classes == list("0123456789")
    for split, name in ((got.train, "train"), (got.test, "test")):
        x, y = written[name]
        assert split.images.dtype == torch.uint8 and split.labels.dtype == torch.int64
        assert split.images.shape == (x.shape[3], 3, 32, 32) and split.images.is_contiguous()
        n, c, h, w = 3, 2, 17, 5
        assert split.images[n, c, h, w] == x[h, w, c, n]
        assert split.labels[0] == 0  # stored as 10: the digit 0
        assert split.labels.tolist() == [0 if v == 10 else int(v) for v in y[:, 0]]
        ref = SVHN(isolated, split=name, download=False)
        assert torch.equal(split.images, torch.from_numpy(ref.data))
        assert torch.equal(split.labels, torch.from_numpy(ref.labels))


def test_svhn_problems_name_the_file(isolated):
    from scipy.io import savemat
    write_svhn(isolated)
    savemat(isolated / "test_32x32.mat", {"X": np.zeros((32, 32, 3, 2), np.float32),
                                          "y": np.ones((2, 1), np.uint8)})
    with pytest.raises(DataError, match=r"test_32x32\.mat holds X as float32 of shape "
                                        r"32×32×3×2, not uint8 images H×W×C×N"):
        load_dataset("svhn", isolated, download=False)
    (isolated / "test_32x32.mat").write_bytes(b"not a MATLAB file at all" * 10)
    with pytest.raises(DataError, match=r"cannot read .*test_32x32\.mat"):
        load_dataset("svhn", isolated, download=False)


def test_images_of_another_size_are_refused(isolated):
    write_idx_splits(isolated, MNIST_FILES, hw=(20, 20))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte holds 1×20×20 images, not "
                                        r"kmnist's 1×28×28"):
        load_dataset("kmnist", isolated, download=False)


def test_missing_files_are_listed_with_how_to_get_them(isolated):
    with pytest.raises(DataError) as err:
        load_dataset("svhn", isolated / "given", download=False)
    text = str(err.value)
    for place in ("given", "env", "data"):
        assert f"{isolated / place}  [" in text
    assert "looked for train_32x32.mat, test_32x32.mat in" in text
    assert "copy the official train_32x32.mat and test_32x32.mat into ./data/" in text
    assert "apt-get" not in text  # no Debian package has it


def _offline(url, root, filename=None, md5=None, **kwargs):
    # half a file first, the way a dropped connection leaves one
    Path(root, filename or Path(url).name).write_bytes(b"\x1f\x8b partial")
    raise urllib.error.URLError("no network (test)")


@pytest.mark.parametrize("name", ["kmnist", "emnist-balanced", "cifar100", "svhn"])
def test_failed_download_is_one_clear_error_and_leaves_nothing(isolated, monkeypatch, name):
    import torchvision.datasets.svhn
    import torchvision.datasets.utils
    monkeypatch.setattr(torchvision.datasets.utils, "download_url", _offline)
    monkeypatch.setattr(torchvision.datasets.svhn, "download_url", _offline)  # imported by name
    monkeypatch.delenv("ARCHDSL_DATA")
    with pytest.raises(DataError, match=r"(?s)not found.*Downloading into .*data failed: "
                                        r".*no network"):
        load_dataset(name)
    assert not (isolated / "data").exists()


def test_successful_svhn_download_is_moved_into_the_root(isolated, monkeypatch):
    import torchvision.datasets.svhn
    source = isolated / "official"
    write_svhn(source)
    _no_md5_check(monkeypatch, torchvision.datasets.svhn)

    def fake(url, root, filename=None, md5=None, **kwargs):
        shutil.copy(source / filename, Path(root, filename))
    monkeypatch.setattr(torchvision.datasets.svhn, "download_url", fake)
    got = load_dataset("svhn", isolated / "dl")
    assert sorted(p.name for p in (isolated / "dl").iterdir()) == ["test_32x32.mat",
                                                                   "train_32x32.mat"]
    assert len(got.train) == 30 and len(got.test) == 10
