"""Training settings: one dataclass whose defaults reproduce the tutorial's loop. Torch-free."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Optional

from ..errors import RunError
from ..layers.arguments import bind_arguments, Min, PositiveInt, Probability

PositiveFloat = Annotated[float, Min(1e-300), "a positive number"]
NonNegativeFloat = Annotated[float, Min(0.0), "a non-negative number"]
NonNegativeInt = Annotated[int, Min(0), "a non-negative integer"]


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of `archdsl train`; a spec's `train(...)` block and the command line set them."""

    dataset: str = "fashion-mnist"
    data_dir: Optional[str] = None
    epochs: PositiveInt = 3
    batch_size: PositiveInt = 64
    lr: PositiveFloat = 1e-3
    optimizer: Literal["sgd", "adam", "adamw"] = "adam"
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
    amp: Literal["off", "bf16", "fp16"] = "off"
    compile: bool = False
    seed: int = 0

    @classmethod
    def from_spec(cls, spec) -> "TrainConfig":
        """The defaults, updated by the spec's train(...) block; errors point into the spec."""
        if spec.training is None:
            return cls()
        usage = "train(" + ", ".join(f.name + "=…" for f in dataclasses.fields(cls)) + ")"
        values, _ = bind_arguments(cls, "train", usage, spec.training.arguments,
                                   spec.training.span)
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def run_directory(spec_path: str, out: str | None, runs_root: str = "runs") -> Path:
    """`out` if given, else runs/<spec name>, numbered (-2, -3, …) so no earlier run is overwritten."""
    if out is not None:
        return Path(out)
    stem = Path(spec_path).stem if spec_path != "-" else "stdin"
    candidate, number = Path(runs_root) / stem, 1
    while candidate.exists():
        number += 1
        candidate = Path(runs_root) / f"{stem}-{number}"
    return candidate


def resumed_config(run_dir: Path, overrides: dict) -> TrainConfig:
    """The configuration a run was started with, updated by the options given now."""
    path = Path(run_dir) / "config.json"
    if not Path(run_dir).is_dir():
        raise RunError(f"cannot resume {run_dir}: there is no such directory",
                       hint="give the directory a training wrote, e.g. runs/NAME")
    if not (Path(run_dir) / "last.pt").exists():
        raise RunError(f"cannot resume {run_dir}: it has no last.pt (no epoch was completed)")
    saved = json.loads(path.read_text())
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in saved.items() if k in known}).replace(**overrides)
