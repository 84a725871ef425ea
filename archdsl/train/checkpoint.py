"""Checkpoints that a kill at any moment cannot corrupt, loadable with weights_only=True."""
from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import torch

from ..errors import RunError
from ..files import replace_file


def save_atomically(state: dict, path: Path) -> None:
    """Write to a fresh private file in the same folder, flush it to disk, then rename over
    `path`: a kill leaves the old checkpoint, and a link planted at either name is replaced,
    never written through."""
    replace_file(path, lambda handle: torch.save(state, handle))


ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since torch 1.6
LEGACY_MAGIC = b"\x80\x02"  # torch.save's legacy format: pickle protocol 2
RUN_KEYS = ("model", "optimizer", "scheduler", "epoch", "history", "best", "stale", "rng")
HINT = "give a run's best.pt or last.pt (written by `archdsl train`), or a saved state_dict"


def load(path: Path, *, resumable: bool = False) -> dict:
    """A checkpoint's state, always with its weights under "model" (a bare state_dict comes back
    as {"model": it}); `resumable`: it must be a run's, with the optimizer and epoch too.
    A RunError, never a traceback, says which is wrong: the file is truncated or damaged, it is
    not an archdsl checkpoint, or it holds objects that weights_only=True refuses to unpickle."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as err:
        raise RunError(f"cannot read checkpoint {path}: {err.strerror}") from None
    if not head:
        raise _damaged(path, "the file is empty")
    if not head.startswith((ZIP_MAGIC, LEGACY_MAGIC)):
        what = "a pickle" if head.startswith(b"\x80") else "a file"
        raise _not_ours(path, f"it is {what} not written by torch.save")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
        if refused:
            raise RunError(f"refusing to unpickle checkpoint {path}: it holds "
                           f"{refused.group(1)}, a type that torch.load(weights_only=True) "
                           f"does not load", hint="archdsl loads only tensors and plain data, so that "
                                         "opening a checkpoint runs no code from it") from None
        raise _damaged(path, "its contents do not unpickle") from None
    except EOFError:
        raise _damaged(path, "it ends early") from None
    except OSError as err:  # replaced or made unreadable since its first bytes were read
        raise RunError(f"cannot read checkpoint {path}: {err.strerror or err}") from None
    except (RuntimeError, KeyError, ValueError) as err:
        if "magic number" in str(err).lower() or _foreign_zip(path):
            raise _not_ours(path, "it is a file not written by torch.save") from None
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise _damaged(path, first.split(". ")[0]) from None
    return _checked_state(path, state, resumable)


def _checked_state(path: Path, state, resumable: bool) -> dict:
    if _is_weights(state):
        if resumable:
            raise _not_ours(path, "it is a bare state_dict, with no optimizer or epoch to "
                                  "resume from")
        return {"model": state}
    if not isinstance(state, dict):
        raise _not_ours(path, f"it holds a {type(state).__name__}, not a dict")
    if not _is_weights(state.get("model")):
        raise _not_ours(path, "it has no model weights")
    missing = [key for key in RUN_KEYS if key not in state]
    if resumable and missing:
        raise _not_ours(path, f"it has no {missing[0]!r} to resume from")
    return state


def _foreign_zip(path: Path) -> bool:
    """A whole zip archive without the data.pkl that torch.save puts in every one."""
    try:
        with zipfile.ZipFile(path) as archive:
            return not any(name.endswith("data.pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _is_weights(value) -> bool:
    return isinstance(value, dict) and bool(value) and \
        all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())


def _damaged(path: Path, reason: str) -> RunError:
    return RunError(f"cannot read checkpoint {path}: the file is truncated or damaged ({reason})",
                    hint="it was not written completely or has changed since; checkpoints are "
                         "written by `archdsl train` as last.pt and best.pt")


def _not_ours(path: Path, reason: str) -> RunError:
    return RunError(f"{path} is not an archdsl checkpoint: {reason}", hint=HINT)



def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
