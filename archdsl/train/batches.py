"""Batches for the loop. In-memory data lives on the device as uint8 and is sliced there;
folders of images go through a DataLoader with workers and pinned memory."""
from __future__ import annotations

import os

import torch

from .data import Split


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 -> float in [-1, 1]: what ToTensor + Normalize((0.5,), (0.5,)) gives, on the device."""
    return images.float().div_(127.5).sub_(1.0)


class DeviceBatches:
    """A split moved once to the device; one permutation per epoch, derived from a seed."""

    def __init__(self, split: Split, indices: torch.Tensor | None, device: torch.device,
                 channels_last: bool = False):
        images, labels = split.images, split.labels
        if indices is not None:
            images, labels = images[indices], labels[indices]
        self.images, self.labels = images.to(device), labels.to(device)
        self.device, self.channels_last = device, channels_last

    def __len__(self) -> int:
        return len(self.labels)

    def __call__(self, batch_size: int, seed: int | None = None, rank: int = 0, world: int = 1,
                 augment=None):
        """Yield (images, labels). `seed` shuffles; every rank draws the same permutation from it
        and takes its slice of each global batch of batch_size × world examples, so ranks see
        disjoint data in the same order. Every rank yields the same number of batches (DDP needs a
        step on every rank): where a small tail leaves a rank nothing, its batch is empty.
        `augment`: an augment.EpochAugmentation applied to each normalized batch."""
        count = len(self)
        order = None
        if seed is not None:
            generator = torch.Generator().manual_seed(seed)
            order = torch.randperm(count, generator=generator).to(self.device)
        global_batch = batch_size * world
        for start in range(0, count, global_batch):
            stop = min(start + global_batch, count)
            share = -(-(stop - start) // world)  # the tail is split the same way on every rank
            lo = min(start + rank * share, stop)
            hi = min(lo + share, stop)
            index = slice(lo, hi) if order is None else order[lo:hi]
            images = normalize(self.images[index])
            if augment is not None:
                examples = torch.arange(lo, hi, device=self.device) if order is None else index
                images = augment(images, examples, slice(lo, hi))
            if self.channels_last and images.dim() == 4:
                images = images.contiguous(memory_format=torch.channels_last)
            elif augment is not None:
                images = images.contiguous()  # a crop leaves a channels-last view
            yield images, self.labels[index]

    def batch_count(self, batch_size: int, world: int = 1) -> int:
        return -(-len(self) // (batch_size * world))

    def global_size(self, step: int, batch_size: int, world: int = 1) -> int:
        """Examples in batch `step` (from 0) of all ranks together."""
        return min(batch_size * world, len(self) - step * batch_size * world)


class LoaderBatches:
    """A torch dataset (already normalized by its transforms) through a DataLoader."""

    def __init__(self, dataset, indices: torch.Tensor | None, device: torch.device):
        if indices is not None:
            dataset = torch.utils.data.Subset(dataset, indices.tolist())
        self.dataset, self.device = dataset, device
        self.workers = min(4, os.cpu_count() or 1)

    def __len__(self) -> int:
        return len(self.dataset)

    def __call__(self, batch_size: int, seed: int | None = None, rank: int = 0, world: int = 1,
                 augment=None):
        """With several ranks, training (a seed) goes through a DistributedSampler, whose ranks
        take equally many examples (it repeats a few to even them out); evaluation (no seed) takes
        every world-th example, each once. Augmentation is the dataset's transforms' job here
        (augment.augmented_folder), so `augment` must be None."""
        assert augment is None, "a loader's augmentation is in its dataset's transforms"
        sampler, dataset = None, self.dataset
        if world > 1 and seed is not None:
            sampler = torch.utils.data.distributed.DistributedSampler(
                self.dataset, world, rank, shuffle=True, seed=seed)
        elif world > 1:
            dataset = torch.utils.data.Subset(self.dataset, range(rank, len(self.dataset), world))
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        loader = torch.utils.data.DataLoader(
            dataset, batch_size, shuffle=seed is not None and sampler is None,
            sampler=sampler, generator=generator, num_workers=self.workers,
            pin_memory=self.device.type == "cuda")
        for images, labels in loader:
            yield (images.to(self.device, non_blocking=True),
                   labels.to(self.device, non_blocking=True))

    def batch_count(self, batch_size: int, world: int = 1) -> int:
        return -(-len(self) // (batch_size * world))

    def global_size(self, step: int, batch_size: int, world: int = 1) -> int:
        """Examples in batch `step` (from 0) of all ranks together (padded, as the sampler does)."""
        per_rank = -(-len(self) // world)
        return world * min(batch_size, per_rank - step * batch_size)


def make_batches(split, indices, device, channels_last=False):
    if split is None:
        return None
    if isinstance(split, Split):
        return DeviceBatches(split, indices, device, channels_last)
    return LoaderBatches(split, indices, device)
