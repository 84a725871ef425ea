"""Training settings: one dataclass whose defaults reproduce the tutorial's loop. Torch-free."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Optional

from ..binding import resolve_arguments
from ..errors import ArgumentError, RunError
from ..layers.arguments import (bind_arguments, checked_field, Min, PositiveFloat, PositiveInt,
                                Probability, suggest)
from ..optimizers import OPTIMIZERS
from .datasets import find_dataset, list_datasets

PRECISIONS = ("off", "bf16", "fp16")  # amp: off, or the type autocast lowers to

NonNegativeFloat = Annotated[float, Min(0.0), "a non-negative number"]
NonNegativeInt = Annotated[int, Min(0), "a non-negative integer"]
MAX_SEED = 2 ** 32 - 1  # torch takes 64 bits; each epoch's seed is derived from it by arithmetic
Seed = Annotated[int, Min(0, MAX_SEED), f"an integer from 0 to {MAX_SEED}"]


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of `archdsl train`; a spec's `train(...)` block and the command line set them."""

    dataset: str = "fashion-mnist"
    data_dir: Optional[str] = None
    epochs: PositiveInt = 3
    batch_size: PositiveInt = 64
    lr: PositiveFloat = 1e-3
    optimizer: Literal[tuple(OPTIMIZERS)] = "adam"
    momentum: NonNegativeFloat = 0.9
    weight_decay: Optional[NonNegativeFloat] = None  # None: the optimizer's own default
    scheduler: Literal["none", "step", "cosine", "onecycle"] = "none"
    step_size: PositiveInt = 1  # epochs between decays of the step schedule
    gamma: PositiveFloat = 0.1
    label_smoothing: Probability = 0.0
    val_split: Annotated[float, Min(0.0, 0.9), "a fraction between 0 and 0.9"] = 0.0
    early_stopping: NonNegativeInt = 0  # patience in epochs on validation loss; 0 is off
    subset: NonNegativeInt = 0  # first N training examples; 0 is all
    device: str = "auto"
    amp: Literal[PRECISIONS] = "off"
    compile: bool = False
    seed: Seed = 0
    # Augmentation of the training batches (see augment.py), each off by default:
    crop: NonNegativeInt = 0  # pad by this many pixels, then crop back at a random offset
    crop_padding: Literal["reflect", "zero"] = "reflect"  # zero: black pixels
    flip: Literal["off", "random", "alternating"] = "off"  # horizontal
    cutout: NonNegativeInt = 0  # side of a square set to 0 (after normalization); 0 is off
    tta: Literal["off", "flip", "flip-shift"] = "off"  # test-time augmentation, beside the plain
    ema: Optional[Probability] = 0.0  # decay of a moving average of the weights; 0 or None: off

    def __post_init__(self):
        # The one check of every setting, however the configuration was made (spec, command
        # line, config.json at --resume): each field a builtin its annotation accepts.
        for field in dataclasses.fields(self):
            try:
                value = checked_field(type(self), field.name, getattr(self, field.name))
            except ValueError as err:
                raise RunError(f"training setting {err}") from None
            object.__setattr__(self, field.name, value)
        if self.ema is None:
            object.__setattr__(self, "ema", 0.0)  # one way to say off, so runs compare equal
        if self.ema >= 1:
            raise RunError(f"training setting 'ema' must be a decay below 1, got {self.ema:g}")

    @classmethod
    def from_spec(cls, spec) -> "TrainConfig":
        """The defaults, updated by the spec's train(...) block; errors point into the spec."""
        if spec.training is None:
            return cls()
        usage = "train(" + ", ".join(f.name + "=…" for f in dataclasses.fields(cls)) + ")"
        values, spans = bind_arguments(cls, "train", usage,
                                       resolve_arguments(spec.training.arguments, {}),
                                       spec.training.span)
        dataset = values.get("dataset")
        # A misspelt name is caught here, where the spec's position is known. Any other word may
        # be an image folder on the machine that trains, so whether it exists is load_dataset's
        # to say, not check's.
        known = list_datasets()
        close = dataset is not None and "/" not in dataset and suggest(dataset, known)
        if close and find_dataset(dataset) is None and not Path(dataset).is_dir():
            raise ArgumentError(f"unknown dataset {dataset!r}{close}",
                                spans["dataset"], hint=f"datasets: {', '.join(known)}, or "
                                                       f"an image folder's directory")
        return cls(**values)

    @classmethod
    def from_dict(cls, saved, source: str) -> "TrainConfig":
        """The settings of a run's config.json (`source` names it in errors): every setting must
        be there with a valid value; the facts the run recorded beside them are skipped."""
        if not isinstance(saved, dict):
            raise RunError(f"{source} holds no settings (it is not a JSON object)")
        fields = [f.name for f in dataclasses.fields(cls)]
        unknown = [key for key in saved if key not in fields and key not in RUN_FACTS]
        if unknown:
            raise RunError(f"{source} has an unknown setting {unknown[0]!r}")
        # A run started before a setting existed trained without it: its default is "off".
        missing = [name for name in fields if name not in saved and name not in ADDED_LATER]
        if missing:
            raise RunError(f"{source} has no setting {missing[0]!r}")
        try:
            return cls(**{name: saved[name] for name in fields if name in saved})
        except RunError as err:
            raise RunError(f"{source}: {err.message}") from None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


# Settings newer than the first config.json files; each one's default leaves training unchanged.
ADDED_LATER = ("crop", "crop_padding", "flip", "cutout", "tta", "ema")

# What a run records in config.json beside its settings (see loop.py).
RUN_FACTS = ("device_used", "torch", "input", "params", "train_examples", "val_examples", "classes",
             "world_size")


def run_directory(spec_path: str, out: str | None, runs_root: str = "runs") -> Path:
    """`out` if given, else runs/<spec name>, numbered (see run_directory.default_path)."""
    from .run_directory import default_path
    return default_path(spec_path, out, runs_root)


def resumed_config(run_dir: Path, overrides: dict) -> TrainConfig:
    """The configuration a run was started with, updated by the options given now."""
    from .run_directory import RunDirectory
    return RunDirectory(run_dir).resumed_config(overrides)
