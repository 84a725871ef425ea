"""The datasets archdsl knows by name: one entry each. Adding a dataset is adding an entry here
(and a reader in readers.py if its files are in a new format). Torch-free, as registry.py."""
from __future__ import annotations

import string

from .readers import read_cifar, read_idx_splits, read_idx_transposed, read_svhn
from .registry import DatasetEntry, Files, Torchvision, register_dataset

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
DIGITS = tuple(string.digits)
MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
GRAY_28, COLOUR_32 = (1, 28, 28), (3, 32, 32)


def _mnist_like(name: str, folder: str, classes, **more) -> DatasetEntry:
    """An entry in MNIST's four IDX files, in torchvision's <root>/<folder>/raw/ or flat."""
    return register_dataset(DatasetEntry(
        name, GRAY_28, tuple(classes),
        Files(MNIST_FILES, folders=(f"{folder}/raw", ""), gzip=True), read_idx_splits,
        get=f"copy the four official files into ./data/{folder}/raw/",
        download=Torchvision(folder), **more))


_mnist_like("fashion-mnist", "FashionMNIST", FASHION_CLASSES,
            debian=("dataset-fashion-mnist", "/usr/share/datasets/fashion-mnist"))
_mnist_like("mnist", "MNIST", DIGITS)
# Kuzushiji-MNIST: the classes are the hiragana o, ki, su, ..., romanised as torchvision names them.
_mnist_like("kmnist", "KMNIST", ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"])

# EMNIST's balanced split: 47 classes, the digits and letters with the 15 lowercase letters
# whose shape is their capital's merged into it, sorted as torchvision sorts them.
_EMNIST_MERGED = set("cijklmopsuvwxyz")
_EMNIST_PREFIX = "emnist-balanced"
register_dataset(DatasetEntry(
    "emnist-balanced", GRAY_28,
    tuple(sorted(set(string.digits + string.ascii_letters) - _EMNIST_MERGED)),
    Files({split: (f"{_EMNIST_PREFIX}-{split}-images-idx3-ubyte",
                   f"{_EMNIST_PREFIX}-{split}-labels-idx1-ubyte") for split in ("train", "test")},
          folders=("EMNIST/raw", "gzip", ""), gzip=True),
    read_idx_transposed,
    get="unzip the official gzip.zip into ./data/ (its gzip/ folder is searched), or copy its "
        "four emnist-balanced-* files into ./data/EMNIST/raw/",
    download=Torchvision("EMNIST", ({"split": "balanced", "train": True},))))

register_dataset(DatasetEntry(
    "cifar10", COLOUR_32,
    ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    Files({"train": tuple(f"data_batch_{k}" for k in range(1, 6)), "test": ("test_batch",)},
          folders=("cifar-10-batches-py",), extra=("batches.meta",)),
    read_cifar, get="unpack the official cifar-10-python.tar.gz into ./data/",
    download=Torchvision("CIFAR10")))

register_dataset(DatasetEntry(
    "cifar100", COLOUR_32,
    ("apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
     "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
     "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
     "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
     "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
     "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
     "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
     "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
     "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
     "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
     "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
     "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm"),
    Files({"train": ("train",), "test": ("test",)}, folders=("cifar-100-python",),
          extra=("meta",)),
    read_cifar, get="unpack the official cifar-100-python.tar.gz into ./data/",
    download=Torchvision("CIFAR100")))

# SVHN's cropped digits; torchvision keeps the .mat files directly in the root.
register_dataset(DatasetEntry(
    "svhn", COLOUR_32, DIGITS,
    Files({"train": ("train_32x32.mat",), "test": ("test_32x32.mat",)}, folders=("",)),
    read_svhn, get="copy the official train_32x32.mat and test_32x32.mat into ./data/",
    download=Torchvision("SVHN", ({"split": "train"}, {"split": "test"}))))

# Random images of the spec's input shape, numbered classes of its outputs: made, not read.
register_dataset(DatasetEntry("synthetic", shape=None, classes=None))
