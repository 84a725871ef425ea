"""What loading a dataset gives (Split, Dataset), its errors, and the check that a spec fits it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...errors import RunError
from ...layers.geometry import format_shape

if TYPE_CHECKING:
    import torch


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
