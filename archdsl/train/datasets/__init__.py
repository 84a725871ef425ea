"""Datasets to train on, by name: a registry of entries (registry.py, catalogue.py), where their
files are looked for (places.py), the last-resort download (download.py), how each format is read
(idx.py, readers.py) and load_dataset (loaders.py).

Importing this package, or the registry, imports neither torch nor numpy: config.py and the
command line's help read the names. archdsl.train.data is the loading side's public face.
"""
from . import catalogue  # noqa: F401 - registers the entries
from .registry import DatasetEntry, dataset_key, find_dataset, list_datasets, register_dataset

__all__ = ["DatasetEntry", "dataset_key", "find_dataset", "list_datasets", "register_dataset"]
