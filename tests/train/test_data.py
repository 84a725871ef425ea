"""Dataset loading: official Fashion-MNIST files, search order, failures, synthetic, image folders."""
import gzip
import pickle
import shutil
import struct
import tracemalloc
import urllib.error
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from archdsl.errors import ArchDSLError
from archdsl.train import data
from archdsl.train.data import (DataError, DataMismatchError, Dataset, Split, check_fits,
                                load_dataset, read_idx)

from fashion import RAW, SHARED, STEMS
needs_fashion = pytest.mark.skipif(not all((RAW / s).is_file() and (RAW / f"{s}.gz").is_file()
                                           for s in STEMS), reason="official Fashion-MNIST files absent")


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No real data anywhere: empty $ARCHDSL_DATA, cwd in tmp, Debian location in tmp."""
    (tmp_path / "env").mkdir()
    monkeypatch.setenv("ARCHDSL_DATA", str(tmp_path / "env"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(data.DEBIAN_DIRS, "fashion-mnist", tmp_path / "debian")
    return tmp_path


def _links_but_test_labels(folder):
    """A folder of links to the official files, except the test labels, left for a test to
    write; returns the folder."""
    folder.mkdir()
    for stem in STEMS[:3]:
        (folder / stem).symlink_to(RAW / stem)
    return folder


@pytest.fixture(scope="module")
def fashion():
    return load_dataset("fashion-mnist", SHARED, download=False)


@needs_fashion
def test_fashion_mnist_shapes_and_counts(fashion):
    assert fashion.in_memory and fashion.shape == (1, 28, 28) and len(fashion.classes) == 10
    assert fashion.classes[0] == "T-shirt/top" and fashion.classes[9] == "Ankle boot"
    for split, n in ((fashion.train, 60000), (fashion.test, 10000)):
        assert split.images.shape == (n, 1, 28, 28) and split.images.dtype == torch.uint8
        assert split.labels.shape == (n,) and split.labels.dtype == torch.int64
        assert sorted(split.labels.unique().tolist()) == list(range(10))
        assert torch.bincount(split.labels).tolist() == [n // 10] * 10  # balanced classes


@needs_fashion
def test_fashion_mnist_matches_torchvision(fashion):
    from torchvision.datasets import FashionMNIST
    for split, train in ((fashion.train, True), (fashion.test, False)):
        ref = FashionMNIST(SHARED, train=train, download=False)
        assert torch.equal(split.images[:, 0], ref.data)
        assert torch.equal(split.labels, ref.targets)
    assert fashion.classes == FashionMNIST.classes


@needs_fashion
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_files_directly_in_directory_raw_or_gz(isolated, fashion, suffix):
    flat = isolated / "flat"
    flat.mkdir()
    for s in STEMS:
        (flat / f"{s}{suffix}").symlink_to(RAW / f"{s}{suffix}")
    got = load_dataset("fashion-mnist", flat, download=False)
    assert torch.equal(got.test.images, fashion.test.images)
    assert torch.equal(got.train.labels, fashion.train.labels)


@needs_fashion
def test_debian_location_and_env_are_searched(isolated, fashion, monkeypatch):
    debian = isolated / "debian"  # the Debian package puts the four .gz files directly here
    debian.mkdir()
    for s in STEMS:
        (debian / f"{s}.gz").symlink_to(RAW / f"{s}.gz")
    assert torch.equal(load_dataset("fashion-mnist", download=False).test.labels, fashion.test.labels)
    monkeypatch.setenv("ARCHDSL_DATA", str(SHARED))  # torchvision's layout, found before Debian's
    shutil.rmtree(debian)
    assert len(load_dataset("fashion-mnist", download=False).train) == 60000


@needs_fashion
def test_truncated_file_names_the_file(isolated):
    bad = _links_but_test_labels(isolated / "bad")
    (bad / STEMS[3]).write_bytes((RAW / STEMS[3]).read_bytes()[:-10])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte is truncated"):
        load_dataset("fashion-mnist", bad, download=False)
    (bad / STEMS[3]).unlink()
    (bad / f"{STEMS[3]}.gz").write_bytes((RAW / f"{STEMS[3]}.gz").read_bytes()[:-100])
    with pytest.raises(DataError, match=r"cannot read .*t10k-labels-idx1-ubyte\.gz"):
        load_dataset("fashion-mnist", bad, download=False)


@needs_fashion
def test_label_count_must_match_image_count(isolated):
    bad = _links_but_test_labels(isolated / "bad")
    (bad / STEMS[3]).write_bytes(struct.pack(">HBBI", 0, 8, 1, 5) + bytes(5))
    with pytest.raises(DataError,
                       match=r"t10k-labels-idx1-ubyte does not label .*5 labels .*10000 images"):
        load_dataset("fashion-mnist", bad, download=False)


def test_bad_magic_names_the_file(tmp_path):
    f = tmp_path / "train-images-idx3-ubyte"
    f.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte is not an IDX file: bad magic"):
        read_idx(f)


@settings(max_examples=40, deadline=None)
@given(dims=st.lists(st.integers(0, 5), min_size=1, max_size=3), zipped=st.booleans(),
       cut=st.integers(1, 20), seed=st.integers(0, 2**16))
def test_idx_round_trip_and_any_truncation_is_caught(tmp_path_factory, dims, zipped, cut, seed):
    array = np.random.default_rng(seed).integers(0, 256, dims, dtype=np.uint8)
    blob = struct.pack(f">HBB{len(dims)}I", 0, 8, len(dims), *dims) + array.tobytes()
    f = tmp_path_factory.mktemp("idx") / "x"
    f.write_bytes(gzip.compress(blob) if zipped else blob)
    assert np.array_equal(read_idx(f), array)
    f.write_bytes(blob[:max(0, len(blob) - cut)])
    with pytest.raises(DataError, match=str(f)):
        read_idx(f)


def test_nothing_found_lists_every_place(isolated):
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist", isolated / "given", download=False)
    text = str(err.value)
    for place in ("given/FashionMNIST/raw", "given", "env/FashionMNIST/raw", "env",
                  "data/FashionMNIST/raw", "data", "debian"):
        assert f"{isolated / place}  [" in text
    assert "apt-get install dataset-fashion-mnist" in text and "--data-dir" in text
    assert "Nothing was downloaded" in text and not (isolated / "given").exists()


def _offline(url, root, filename=None, md5=None, **kwargs):
    # half a file first, the way a dropped connection leaves one
    Path(root, filename or Path(url).name).write_bytes(b"\x1f\x8b partial")
    raise urllib.error.URLError("no network (test)")


@pytest.mark.parametrize("name", ["fashion-mnist", "mnist", "cifar10"])
def test_failed_download_is_one_clear_error_and_leaves_nothing(isolated, monkeypatch, name):
    import torchvision.datasets.utils
    monkeypatch.setattr(torchvision.datasets.utils, "download_url", _offline)
    monkeypatch.delenv("ARCHDSL_DATA")
    with pytest.raises(DataError, match=r"(?s)not found.*Downloading into .*data failed: .*no network"):
        load_dataset(name)
    assert not (isolated / "data").exists()  # scratch folder removed, and the folder made for it
    with pytest.raises(DataError, match="Nothing was downloaded"):
        load_dataset(name, download=False)


@needs_fashion
def test_successful_download_is_moved_into_place(isolated, monkeypatch, fashion):
    import torchvision.datasets.utils

    def fake(url, root, filename=None, md5=None, **kwargs):
        shutil.copy(RAW / filename, Path(root, filename))
    monkeypatch.setattr(torchvision.datasets.utils, "download_url", fake)
    got = load_dataset("fashion-mnist", isolated / "dl")
    assert torch.equal(got.test.images, fashion.test.images)
    assert sorted(p.name for p in (isolated / "dl").iterdir()) == ["FashionMNIST"]  # no scratch left
    assert len(load_dataset("fashion-mnist", isolated / "dl", download=False).train) == 60000


def test_cifar10_layout_and_conversion(isolated, monkeypatch):
    import torchvision.datasets.cifar
    # tiny fake batches: skip the md5 checks against the official files
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a: True)
    batches = isolated / "data" / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 3, 32, 32), dtype=np.uint8)
    for i, f in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        batch = {"data": images[2 * i:2 * i + 2].reshape(2, -1), "labels": [i, 9 - i]}
        (batches / f).write_bytes(pickle.dumps(batch))
    (batches / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{k}" for k in range(10)]}))
    got = load_dataset("cifar10", download=False)
    assert got.shape == (3, 32, 32) and got.classes[3] == "c3" and got.in_memory
    assert torch.equal(got.train.images, torch.from_numpy(images[:10]))
    assert torch.equal(got.test.images, torch.from_numpy(images[10:]))
    assert got.test.labels.tolist() == [5, 4] and got.train.labels.dtype == torch.int64


def test_synthetic_is_deterministic():
    a = load_dataset("synthetic", input_shape=(3, 8, 8), num_classes=4)
    b = load_dataset("synthetic", input_shape=(3, 8, 8), num_classes=4)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.labels, b.test.labels)
    assert a.train.images.shape == (2048, 3, 8, 8) and a.train.images.dtype == torch.uint8
    assert len(a.test) == 512 and set(a.train.labels.tolist()) == {0, 1, 2, 3}
    assert a.classes == ["0", "1", "2", "3"] and a.shape == (3, 8, 8)
    small = load_dataset("synthetic", input_shape=(1, 4, 4), num_classes=2, train_size=10, test_size=3)
    assert (len(small.train), len(small.test)) == (10, 3)
    with pytest.raises(DataError, match="input shape"):
        load_dataset("synthetic")


def _png_folder(root, classes=("cat", "dog"), n=3):
    from PIL import Image
    for k, c in enumerate(classes):
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (10, 6), (255 * k,) * 3).save(root / c / f"{i}.png")


def test_image_folder_with_splits(tmp_path):
    _png_folder(tmp_path / "train")
    _png_folder(tmp_path / "val", n=1)
    ds = load_dataset(str(tmp_path), input_shape=(1, 4, 5))
    assert not ds.in_memory and ds.classes == ["cat", "dog"] and ds.shape == (1, 4, 5)
    assert (len(ds.train), len(ds.test)) == (6, 2)
    image, label = ds.train[5]
    assert image.shape == (1, 4, 5) and image.dtype == torch.float32 and label == 1
    assert torch.all(image == 1.0) and torch.all(ds.train[0][0] == -1.0)  # Normalize(0.5, 0.5)
    assert ds.test[0][0].shape == (1, 4, 5)
    check_fits((1, 4, 5), (2,), ds)


def test_image_folder_without_splits_and_rgb(tmp_path):
    _png_folder(tmp_path)
    ds = load_dataset(str(tmp_path), input_shape=(3, 8, 8))
    assert ds.test is None and len(ds.train) == 6 and ds.train[0][0].shape == (3, 8, 8)
    assert load_dataset(str(tmp_path)).shape == (3, 6, 10)  # no spec: the first image's size


def test_image_folder_problems(tmp_path):
    _png_folder(tmp_path / "train")
    _png_folder(tmp_path / "test", classes=("cat", "cow"))
    with pytest.raises(DataError, match="different classes"):
        load_dataset(str(tmp_path), input_shape=(3, 4, 4))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="cannot use .*empty as an image folder"):
        load_dataset(str(tmp_path / "empty"), input_shape=(3, 4, 4))
    with pytest.raises(DataError, match="unknown dataset 'nope'"):
        load_dataset("nope")


def test_check_fits_messages():
    ds = Dataset("fashion-mnist", Split(torch.zeros(1, 1, 28, 28, dtype=torch.uint8),
                                        torch.zeros(1, dtype=torch.long)), None,
                 [str(i) for i in range(10)], (1, 28, 28))
    check_fits((1, 28, 28), (10,), ds)
    with pytest.raises(DataMismatchError,
                       match="the spec takes 3×32×32 input but fashion-mnist images are 1×28×28$"):
        check_fits((3, 32, 32), (10,), ds)
    with pytest.raises(DataMismatchError) as err:
        check_fits((1, 28, 28), (5,), ds)
    assert err.value.message == "the spec has 5 outputs but fashion-mnist has 10 classes"
    assert isinstance(err.value, ArchDSLError) and err.value.span is None
    assert "<spec>" not in str(err.value)  # no spec position without a span
    with pytest.raises(DataMismatchError, match="outputs 10×1×1 but fashion-mnist has 10 classes"):
        check_fits((1, 28, 28), (10, 1, 1), ds)


def test_a_gzip_bomb_is_inflated_no_further_than_its_header_declares(tmp_path):
    # 1 GiB of zeros after a header that declares 10 labels: about 1 MB compressed.
    header = struct.pack(">HBBI", 0, 8, 1, 10)
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
    blob = bomb.compress(header + bytes(10))
    chunk = bytes(2 ** 20)
    blob += b"".join(bomb.compress(chunk) for _ in range(1024)) + bomb.flush()
    f = tmp_path / "labels.gz"
    f.write_bytes(blob)
    tracemalloc.start()
    with pytest.raises(DataError, match=r"labels\.gz has trailing bytes: the header promises 10 "
                                        r"values \(18 bytes\) but the file has 19 bytes"):
        read_idx(f)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 2 ** 20  # the compressed file and little more, not the inflated GiB


def test_a_header_that_declares_too_much_is_refused(tmp_path):
    f = tmp_path / "images"
    f.write_bytes(gzip.compress(struct.pack(">HBBIII", 0, 8, 3, 2 ** 20, 2 ** 10, 2 ** 10)))
    with pytest.raises(DataError, match=r"images declares 1048576×1024×1024 values: more than "
                                        r"8 GiB"):
        read_idx(f)


@needs_fashion
def test_no_images_and_float_labels_are_refused(isolated):
    bad = _links_but_test_labels(isolated / "bad")
    (bad / STEMS[3]).write_bytes(struct.pack(">HBBI", 0, 0x0D, 1, 10000)
                                 + np.full(10000, np.nan, ">f4").tobytes())
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte holds float32 labels, "
                                        r"not integers"):
        load_dataset("fashion-mnist", bad, download=False)
    (bad / STEMS[2]).unlink()
    (bad / STEMS[2]).write_bytes(struct.pack(">HBBIII", 0, 8, 3, 0, 28, 28))
    (bad / STEMS[3]).write_bytes(struct.pack(">HBBI", 0, 8, 1, 0))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte holds no images"):
        load_dataset("fashion-mnist", bad, download=False)
