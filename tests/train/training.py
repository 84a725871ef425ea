"""What the tests of training options share: a quiet training of a spec, a checkpoint read back,
and an echo that stops a run after its first epoch as a kill would."""
from pathlib import Path

import torch

from archdsl.analysis import analyze
from archdsl.train.config import TrainConfig, resumed_config
from archdsl.train.loop import train


class Killed(Exception):
    pass


def kill_after_first(line: str) -> None:
    if line.startswith("epoch 1/"):
        raise Killed(line)


def quiet_run(spec: str, out: Path, *, resume=False, echo=None, **settings):
    """Train `spec` into `out` with `settings` (or resume it, the settings overriding)."""
    config = resumed_config(out, settings) if resume else TrainConfig(**settings)
    return train(analyze(spec), spec, config, out, resume=resume, show_progress=False,
                 echo=echo or (lambda line: None))


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)
