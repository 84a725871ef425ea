"""Checkpoints that a kill at any moment cannot corrupt, loadable with weights_only=True."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from ..errors import RunError
from ..files import replace_file


def save_atomically(state: dict, path: Path) -> None:
    """Write to a fresh private file in the same folder, flush it to disk, then rename over
    `path`: a kill leaves the old checkpoint, and a link planted at either name is replaced,
    never written through."""
    replace_file(path, lambda handle: torch.save(state, handle))


def load(path: Path) -> dict:
    """A checkpoint's state, or a RunError (never a traceback) for a file that is not one."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise pickle.UnpicklingError("not a dict")
        return state
    except (OSError, EOFError, RuntimeError, pickle.UnpicklingError) as err:
        reason = "not a checkpoint of tensors" if isinstance(err, pickle.UnpicklingError) \
            else (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise RunError(f"cannot read checkpoint {path}: {reason}",
                       hint="it may be incomplete or damaged; checkpoints are written by "
                            "`archdsl train` as last.pt and best.pt") from None


RESUMABLE = ("model", "optimizer", "epoch", "history", "best", "stale", "rng")


def check_resumable(state: dict, path: Path) -> None:
    """A run's last.pt holds all that resuming needs; a bare state_dict or a pruned file not."""
    missing = [key for key in RESUMABLE if key not in state]
    if missing:
        raise RunError(f"cannot resume from {path}: it holds no {', '.join(missing)}",
                       hint="only a run's own last.pt can be resumed; start a new run")


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def restore_rng_of_rank(state: dict, world, config) -> None:
    """Each process's random state as saved; a checkpoint of another world size gives rank 0's
    to rank 0 and fresh seeds to the others."""
    per_rank = state.get("rng_per_rank")
    if per_rank is not None and len(per_rank) == world.size:
        restore_rng(per_rank[world.rank])
        return
    restore_rng(state["rng"])
    if world.rank:
        torch.manual_seed(config.seed + 7919 * world.rank + state["epoch"])


def load_model(model, state: dict, path: Path) -> None:
    """The checkpoint's weights, or a RunError when they belong to a different network."""
    weights = state.get("model", state)  # a run's checkpoint, or a bare state_dict
    if not isinstance(weights, dict):
        raise RunError(f"{path} holds no model weights",
                       hint="give a run's best.pt or last.pt, or a saved state_dict")
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[1:2] or [str(err)]
        raise RunError(f"{path} does not fit this spec: {first[0].strip()}",
                       hint="use the spec the run was trained with (its spec.spec)") from None


def check_schedule(state: dict, config, scheduler, out_dir: Path) -> None:
    """A resumed run must keep its learning-rate schedule: a schedule planned over the whole run
    (cosine, onecycle) cannot be stretched to other epochs, batch size or data size mid-way."""
    saved = state.get("config", {}).get("scheduler", config.scheduler)
    if saved != config.scheduler:
        raise RunError(f"cannot resume {out_dir} with --scheduler {config.scheduler}: "
                       f"it was trained with --scheduler {saved}",
                       hint="resume without --scheduler, or start a new run")
    if scheduler is None or state.get("scheduler") is None:
        return
    planned, now = state["scheduler"], scheduler.state_dict()
    for key in ("total_steps", "T_max"):  # OneCycleLR, CosineAnnealingLR
        if key in planned and planned[key] != now.get(key):
            raise RunError(f"cannot resume {out_dir} with these options: its {config.scheduler} "
                           f"schedule was planned for {planned[key]} steps, these options make "
                           f"it {now.get(key)}",
                           hint="resume with the run's own --epochs, --batch-size, --subset and "
                                "--val-split, or start a new run")
