"""Augmentation of training batches: random crop with padding, horizontal flip, cutout.

For the in-memory datasets it runs on the device, as batched tensor ops on each normalized
batch. Every random choice comes from a CPU torch.Generator seeded from (seed, epoch), never from
the global random state, so an epoch's augmentation is the same however the run got there
(straight through, or stopped and resumed; a run resumes at an epoch's start) and on any device.
The choices are drawn for every place in the epoch's order and a batch takes those of its places:
each rank of a data-parallel run takes its slice of the global batch's, so the augmentation of an
example depends on its place in the order, not on the number of processes or the batch size, and
two ranks augment exactly as one process with the global batch would.

Image folders get the same operations from torchvision.transforms.v2 (`folder_transforms`), which
their DataLoader's workers draw from seeds of their own.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from ..errors import RunError

BLACK = -1.0  # a 0 pixel after normalize()'s x / 127.5 - 1: what zero padding fills
ERASED = 0.0  # cutout's value, after normalization, as RandomErasing's default after Normalize


def stream_seed(*parts) -> int:
    """A generator seed from a tuple of plain values, with no arithmetic that would make two
    different tuples (seed 1, epoch 10 and seed 10, epoch 1, say) share a stream."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


@dataclass(frozen=True)
class Augmentation:
    """The settings of TrainConfig's crop, crop_padding, flip and cutout; `seed` the run's."""

    crop: int = 0  # padding in pixels
    crop_padding: str = "reflect"  # or "zero"
    flip: str = "off"  # "random" or "alternating"
    cutout: int = 0  # side of the square in pixels
    seed: int = 0

    @classmethod
    def from_config(cls, config) -> "Augmentation | None":
        """The configuration's augmentation, or None where every part of it is off."""
        augmentation = cls(config.crop, config.crop_padding, config.flip, config.cutout,
                           config.seed)
        return augmentation if augmentation.active else None

    @property
    def active(self) -> bool:
        return bool(self.crop or self.flip != "off" or self.cutout)

    def check(self, shape: tuple[int, ...]) -> None:
        """A RunError unless these settings fit images of `shape` (C×H×W)."""
        if len(shape) != 3:
            raise RunError(f"--crop, --flip and --cutout augment images (C×H×W), not inputs of "
                           f"shape {'×'.join(map(str, shape))}", hint="train without them")
        height, width = shape[1:]
        if self.crop and self.crop_padding == "reflect" and self.crop >= min(height, width):
            raise RunError(f"--crop {self.crop} with reflect padding must be smaller than the "
                           f"images' {height}×{width}", hint="lower --crop, or use --crop-padding "
                                                         "zero")

    def for_epoch(self, epoch: int, count: int, device: torch.device) -> "EpochAugmentation":
        """The augmentation of one epoch (from 1) over a set of `count` examples."""
        return EpochAugmentation(self, epoch, count, device)


class EpochAugmentation:
    """One epoch's random choices, drawn when it starts for every place in its order (the
    order the batches take the examples in), and moved to the device once: a batch takes its
    slice, with no draw and no copy from the host per step. Per place: the crop's offsets in
    the padded image (0 to 2 × crop), whether the example is flipped, and the cutout's centre
    (a fraction of the height and width); None for an operation that is off."""

    def __init__(self, settings: Augmentation, epoch: int, count: int, device: torch.device):
        self.settings = settings
        generator = torch.Generator().manual_seed(stream_seed("augment", settings.seed, epoch))

        def draw(*arguments, **options):
            return torch.randint(*arguments, (count,), generator=generator, **options).to(device)

        self.top = self.left = self.flip = self.flipped = self.row = self.column = None
        if settings.crop:
            self.top, self.left = draw(0, 2 * settings.crop + 1), draw(0, 2 * settings.crop + 1)
        if settings.flip == "random":
            self.flip = draw(0, 2, dtype=torch.bool)
        elif settings.flip == "alternating":
            # As airbench does: a random half of the examples flipped in the first epoch, and
            # every example flipped in alternate epochs from then on. By example, not by place.
            first = torch.randint(0, 2, (count,), dtype=torch.bool,
                                  generator=torch.Generator().manual_seed(
                                      stream_seed("alternating flip", settings.seed)))
            self.flipped = (first ^ bool((epoch - 1) % 2)).to(device)
        if settings.cutout:
            self.row, self.column = (torch.rand(count, dtype=torch.float64, generator=generator)
                                     .to(device) for _ in range(2))

    def __call__(self, images: torch.Tensor, examples: torch.Tensor,
                 places: slice) -> torch.Tensor:
        """Augment a normalized batch N×C×H×W: `examples` are its examples' indices in the set,
        `places` where the batch lies in the epoch's order (a rank's slice of a global batch)."""
        height, width = images.shape[-2:]

        def take(draws):
            return None if draws is None else draws[places]

        def centre(fractions, size):
            return None if fractions is None else \
                (fractions[places] * size).long().clamp_(max=size - 1)

        flip = take(self.flip) if self.flipped is None else self.flipped[examples]
        return augment_batch(images, self.settings, take(self.top), take(self.left), flip,
                             centre(self.row, height), centre(self.column, width))


def augment_batch(images: torch.Tensor, settings: Augmentation, top=None, left=None, flip=None,
                  centre_row=None, centre_column=None) -> torch.Tensor:
    """Crop (the padded image's window at top, left), then flip, then cutout, each example by
    its own draws; an operation whose draws are None is skipped."""
    if top is not None:
        images = crop(images, settings.crop, top, left, settings.crop_padding)
    if flip is not None:
        images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
    if centre_row is not None:
        images = cut_out(images, settings.cutout, centre_row, centre_column)
    return images


def crop(images: torch.Tensor, padding: int, top: torch.Tensor, left: torch.Tensor,
         mode: str) -> torch.Tensor:
    """Each image padded by `padding` on every side (reflect, or zero: black) and cropped back
    to its size at (top, left) of the padded image. By indexing rather than padding: the
    padded batch is never made, and any dtype works."""
    count, _, height, width = images.shape
    rows = top.view(-1, 1) + torch.arange(height, device=images.device) - padding  # N×H
    columns = left.view(-1, 1) + torch.arange(width, device=images.device) - padding  # N×W
    inside = None
    if mode == "reflect":
        rows, columns = _reflect(rows, height), _reflect(columns, width)
    else:
        inside = ((rows >= 0) & (rows < height)).view(count, 1, height, 1) & \
            ((columns >= 0) & (columns < width)).view(count, 1, 1, width)
        rows, columns = rows.clamp(0, height - 1), columns.clamp(0, width - 1)
    batch = torch.arange(count, device=images.device).view(-1, 1, 1)
    # N×H×W×C, back to N×C×H×W (a channels-last view; the caller makes it contiguous as it needs)
    out = images[batch, :, rows.view(count, height, 1), columns.view(count, 1, width)]
    out = out.permute(0, 3, 1, 2)
    if inside is not None:
        out = out.masked_fill(~inside, BLACK if images.dtype.is_floating_point else 0)
    return out


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Indices past an edge mirrored back without repeating the edge (F.pad's "reflect")."""
    index = index.abs()
    return torch.where(index > size - 1, 2 * (size - 1) - index, index)


def cut_out(images: torch.Tensor, side: int, centre_row: torch.Tensor,
            centre_column: torch.Tensor) -> torch.Tensor:
    """A side×side square centred on each example's (row, column) set to 0, clipped at the
    image's edges (DeVries and Taylor's cutout), in every channel."""
    count, _, height, width = images.shape
    top, left = centre_row - side // 2, centre_column - side // 2
    rows = torch.arange(height, device=images.device).view(1, -1)
    columns = torch.arange(width, device=images.device).view(1, -1)
    in_rows = (rows >= top.view(-1, 1)) & (rows < top.view(-1, 1) + side)
    in_columns = (columns >= left.view(-1, 1)) & (columns < left.view(-1, 1) + side)
    box = in_rows.view(count, 1, height, 1) & in_columns.view(count, 1, 1, width)
    return images.masked_fill(box, ERASED)


def folder_transforms(settings: Augmentation, shape: tuple[int, ...]) -> list:
    """The same augmentation as torchvision.transforms.v2 steps, to follow an image folder's
    Normalize: RandomCrop (zero padding fills black, -1 once normalized), RandomHorizontalFlip,
    and RandomErasing of a square of cutout's area (inside the image, where cutout clips)."""
    from torchvision.transforms import v2

    if settings.flip == "alternating":
        raise RunError("--flip alternating follows each example of a dataset held in memory; "
                       "an image folder's loader cannot", hint="use --flip random")
    height, width = shape[1:]
    steps = []
    if settings.crop:
        steps.append(v2.RandomCrop((height, width), padding=settings.crop,
                                   padding_mode="constant" if settings.crop_padding == "zero"
                                   else "reflect", fill=BLACK))
    if settings.flip == "random":
        steps.append(v2.RandomHorizontalFlip())
    if settings.cutout:
        area = min(1.0, settings.cutout ** 2 / (height * width))
        steps.append(v2.RandomErasing(p=1.0, scale=(area, area), ratio=(1.0, 1.0),
                                      value=ERASED))
    return steps


def augmented_folder(folder, settings: Augmentation, shape: tuple[int, ...]):
    """A copy of an image folder dataset whose transform ends in the augmentation (the original,
    which a validation split shares, stays as it is)."""
    import copy

    from torchvision.transforms import v2

    augmented = copy.copy(folder)
    augmented.transform = v2.Compose([folder.transform, *folder_transforms(settings, shape)])
    return augmented
