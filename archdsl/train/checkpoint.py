"""Checkpoints that a kill at any moment cannot corrupt, loadable with weights_only=True."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from ..errors import RunError


def save_atomically(state: dict, path: Path) -> None:
    """Write to a temporary file in the same folder, flush it to disk, then rename over `path`."""
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as handle:
        torch.save(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def load(path: Path) -> dict:
    """A checkpoint's state, or a RunError (never a traceback) for a file that is not one."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, EOFError, RuntimeError, pickle.UnpicklingError) as err:
        reason = "not a checkpoint of tensors" if isinstance(err, pickle.UnpicklingError) \
            else (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise RunError(f"cannot read checkpoint {path}: {reason}",
                       hint="it may be incomplete or damaged; checkpoints are written by "
                            "`archdsl train` as last.pt and best.pt") from None


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
