"""Datasets to train on: find the files locally, download only as a last resort, explain failures.

The public face of archdsl.train.datasets, where each job lives in its own module: the registry
and its entries (Fashion-MNIST, MNIST, KMNIST, EMNIST-balanced, CIFAR-10, CIFAR-100 and SVHN
live in memory as uint8 tensors; `synthetic` needs no files), the search path, the download,
the readers. Any other name that is a directory is an image folder, kept on disk.
"""
from .datasets.catalogue import FASHION_CLASSES
from .datasets.idx import MAX_IDX_BYTES, read_idx
from .datasets.loaders import load_dataset
from .datasets.registry import DEBIAN_DIRS, find_dataset, list_datasets
from .datasets.types import DataError, DataMismatchError, Dataset, Split, check_fits

__all__ = ["DEBIAN_DIRS", "FASHION_CLASSES", "MAX_IDX_BYTES", "DataError", "DataMismatchError",
           "Dataset", "Split", "check_fits", "find_dataset", "list_datasets", "load_dataset",
           "read_idx"]
