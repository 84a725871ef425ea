"""Run directories as places: who may train into one, whether a spec is the run's, and where a
run's spec and checkpoint are when a command is given the directory. Torch-free.

A training holds an exclusive lock on the directory's `.lock` file (flock, released when the
process ends, however it ends), so a second training into the same directory is refused at once
instead of racing the first for its files.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ..errors import ArchDSLError, RunError

LOCK = ".lock"
# What a training writes; a directory holding any of them holds a run.
RUN_FILES = ("spec.spec", "config.json", "metrics.jsonl", "last.pt", "best.pt", "curves.png")


def run_files(run_dir: Path) -> list[str]:
    return [name for name in RUN_FILES if (Path(run_dir) / name).exists()]


def check_target(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to train into a directory that holds a run, unless resuming or overwriting it
    (whether there is anything to resume is checkpoint.load's to say)."""
    if resume:
        return
    found = run_files(run_dir)
    if found and not overwrite:
        again = f"continue it with --resume {run_dir}, " if "last.pt" in found else ""
        raise RunError(f"{run_dir} holds a run already ({', '.join(found)}); training into it "
                       "would overwrite it",
                       hint=f"{again}start it afresh with --overwrite (which deletes those files "
                            "first), or give another --out")


@contextlib.contextmanager
def claimed(run_dir: Path, *, resume: bool = False, overwrite: bool = False):
    """The run directory, created if need be and locked for the block: refused (RunError) while
    another training holds it, or when it holds a run and neither `resume` nor `overwrite` is
    given. `overwrite` deletes the earlier run's files (RUN_FILES), nothing else. A directory
    this call created is removed again if the block wrote nothing into it."""
    run_dir = Path(run_dir)
    created = not run_dir.exists()
    try:
        run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # a run's files are the user's
    except OSError as error:
        raise RunError(f"cannot make the run directory {run_dir}: {error.strerror or error}",
                       hint="choose another --out") from None
    descriptor = _lock(run_dir)
    try:
        check_target(run_dir, resume=resume, overwrite=overwrite)  # as it is, now that we hold it
        if overwrite and not resume:
            for name in run_files(run_dir):
                (run_dir / name).unlink()
        yield run_dir
    finally:
        if created and [p.name for p in run_dir.iterdir()] == [LOCK]:
            (run_dir / LOCK).unlink()
            run_dir.rmdir()
        if descriptor is not None:
            os.close(descriptor)  # releases the lock


def _lock(run_dir: Path) -> int | None:
    try:
        import fcntl
    except ImportError:  # not on Windows: no lock there
        return None
    path = run_dir / LOCK
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as err:
        raise RunError(f"cannot lock {run_dir}: {path}: {err.strerror}",
                       hint=f"{path} must be a plain file (or absent)") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        os.close(descriptor)
        if isinstance(err, BlockingIOError):
            raise RunError(f"{run_dir} is in use: another training holds it (it has {path} "
                           f"locked)", hint="wait for that training to end, or give another "
                                            "--out") from None
        raise RunError(f"cannot lock {run_dir}: {path}: {err.strerror}",
                       hint="train into a directory on a local file system") from None
    return descriptor


def spec_change(run_dir: Path, spec_text: str, input=None) -> str | None:
    """How `spec_text` differs from the run's spec.spec as a network or a train(...) block, in
    words naming the first difference; None when they differ at most in layout and comments."""
    from ..analysis import analyze
    from ..parser import parse, read_text
    from .config import TrainConfig

    path = Path(run_dir) / "spec.spec"
    if not path.is_file():
        return None  # a run from before spec.spec was kept: nothing to compare with
    try:
        saved = parse(read_text(str(path)), str(path))
        before = analyze(saved, input)
        old_config = TrainConfig.from_spec(saved)
    except ArchDSLError as error:
        return f"the run's {path} no longer analyzes ({error.message})"
    spec = parse(spec_text)
    now = analyze(spec, input)
    if before.input != now.input:
        return f"the input is {_shape(now.input)} now, {_shape(before.input)} in the run"
    for old, new in zip(before.rows, now.rows):
        if _row_key(old) != _row_key(new):
            return _row_change(old, new)
    if len(before.rows) != len(now.rows):
        longer, other = (now, "now") if len(now.rows) > len(before.rows) else (before, "in the run")
        extra = longer.rows[min(len(before.rows), len(now.rows))]
        return f"the network has {len(now.rows)} layers now, {len(before.rows)} in the run " \
               f"(the first {other} alone: {extra.name} {extra.layer})"
    new_config = TrainConfig.from_spec(spec)
    for name, value in new_config.to_dict().items():
        if old_config.to_dict()[name] != value:
            return f"its train(...) block sets {name}={value} now, " \
                   f"{name}={old_config.to_dict()[name]} in the run"
    return None


def check_same_spec(run_dir: Path, spec_text: str, input=None) -> None:
    """Refuse to resume a run with a spec that differs from its spec.spec (see spec_change)."""
    change = spec_change(run_dir, spec_text, input)
    if change is not None:
        raise RunError(f"cannot resume {run_dir} with this spec: {change}",
                       hint=f"resume with the run's own spec ({Path(run_dir) / 'spec.spec'}), "
                            "or give --allow-spec-change to continue with this one (it replaces "
                            "the run's spec.spec)")


def _row_key(row) -> tuple:
    return row.name, row.type, row.args, row.input, row.output, row.inputs


def _row_change(old, new) -> str:
    """The first differing layer in words, with the settings its description may not show."""
    name = new.name if old.name == new.name else f"{old.name} (now {new.name})"
    text = f"layer {name} is {old.layer} in the run, {new.layer} now"
    keys = list(old.args) + [k for k in new.args if k not in old.args]
    details = [f"{k}: {old.args.get(k)} → {new.args.get(k)}" for k in keys
               if old.type == new.type and old.args.get(k) != new.args.get(k)]
    if old.inputs != new.inputs:
        details.append(f"reads {', '.join(old.inputs)} → {', '.join(new.inputs)}")
    return text + (f" ({'; '.join(details)})" if details else "")


def _shape(shape) -> str:
    return "×".join(map(str, shape))


def spec_and_checkpoint(spec: str, checkpoint: str | None) -> tuple[str, Path]:
    """For eval and export: (the spec to read, the checkpoint file). SPEC may be a run directory,
    which stands for its spec.spec and, without --checkpoint, its best.pt; --checkpoint may be
    a run directory too, which stands for its best.pt."""
    if spec != "-" and Path(spec).is_dir():
        run_dir = Path(spec)
        return _run_spec(run_dir), checkpoint_file(Path(checkpoint or run_dir))
    if checkpoint is None:
        raise RunError("which checkpoint? give --checkpoint runs/NAME/best.pt (or runs/NAME), "
                       "or the run directory in place of the spec")
    return spec, checkpoint_file(Path(checkpoint))


def spec_without_checkpoint(spec: str, checkpoint: str | None) -> str:
    """For what needs the network but no weights (the Python export): the spec to read, a run
    directory standing for its spec.spec; a RunError where a checkpoint is given."""
    if checkpoint is not None:
        raise RunError("the Python export writes code, not weights: it takes no --checkpoint",
                       hint="load a checkpoint's weights into the class: "
                            "model.load_state_dict(torch.load(PATH)['model'])")
    return _run_spec(Path(spec)) if spec != "-" and Path(spec).is_dir() else spec


def _run_spec(run_dir: Path) -> str:
    if not (run_dir / "spec.spec").is_file():
        raise RunError(f"{run_dir} is a directory without spec.spec, not a run directory",
                       hint="give a .spec file, or the directory a training wrote "
                            "(runs/NAME)")
    return str(run_dir / "spec.spec")


def checkpoint_file(path: Path) -> Path:
    """`path`, or a run directory's best.pt; a RunError when there is no such file."""
    if path.is_dir():
        best = path / "best.pt"
        if not best.is_file():
            raise RunError(f"{path} has no best.pt"
                           + (" (no epoch was completed)" if run_files(path) else
                              ", and it is not a run directory"),
                           hint="give a checkpoint file, or a run directory with a completed "
                                "epoch")
        return best
    if not path.is_file():
        raise RunError(f"checkpoint {path} does not exist")
    return path
