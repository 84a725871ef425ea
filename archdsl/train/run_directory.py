"""A run directory and every file a training keeps in it. Torch-free until a checkpoint is read
or written.

    spec.spec      the spec as trained
    config.json    the settings, and facts of the run (device, torch, input shape, parameters,
                   examples, classes)
    last.pt        TrainState.to_checkpoint() after the latest completed epoch
    best.pt        the same, after the epoch with the best monitored loss
    metrics.jsonl  a record per epoch (TrainState.history)
    curves.png     loss and accuracy per epoch, and the training loss within epochs
    confusion.png  the test split's confusion matrix, drawn at the end of the run
    .lock          locked (flock) for the duration of a training

A training holds an exclusive lock on `.lock` (released when the process ends, however it ends),
so a second training into the same directory is refused at once instead of racing the first for
its files. Every file is written through a fresh file and a rename (files.replace_file): a kill
leaves the old file or the new one, and a link planted under a run file's name is replaced, never
written through. Under torchrun one process writes (RunDirectory(writes=False) on the others
makes every write a no-op), so the loop reads the same on every rank.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from .. import files
from ..errors import RunError

LOCK = ".lock"
# What a training writes; a directory holding any of them holds a run, and a refusal names them.
RUN_FILES = ("spec.spec", "config.json", "metrics.jsonl", "last.pt", "best.pt", "curves.png")
# Written at the end of a run that has a spec.spec already, so it adds nothing to whether the
# directory holds a run; --overwrite deletes it with the others.
FIGURES = ("confusion.png",)


def default_path(spec_path: str, out: str | None, runs_root: str = "runs") -> Path:
    """`out` if given, else runs/<spec name>, numbered (-2, -3, …) so no earlier run is overwritten."""
    if out is not None:
        return Path(out)
    stem = Path(spec_path).stem if spec_path != "-" else "stdin"
    candidate, number = Path(runs_root) / stem, 1
    while candidate.exists():
        number += 1
        candidate = Path(runs_root) / f"{stem}-{number}"
    return candidate


class RunDirectory:
    def __init__(self, path: Path, *, writes: bool = True):
        self.path = Path(path)
        self.writes = writes  # False on the processes of a torchrun job other than rank 0

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    @property
    def last(self) -> Path:
        return self.path / "last.pt"

    @property
    def best(self) -> Path:
        return self.path / "best.pt"

    # --- whether and how a training may use the directory ---------------------------------------

    def run_files(self) -> list[str]:
        return [name for name in RUN_FILES if (self.path / name).exists()]

    def check_target(self, *, resume: bool, overwrite: bool) -> None:
        """Refuse to train into a directory that holds a run, unless resuming or overwriting it
        (whether there is anything to resume is checkpoint.load's to say)."""
        if resume:
            return
        found = self.run_files()
        if found and not overwrite:
            again = f"continue it with --resume {self.path}, " if "last.pt" in found else ""
            raise RunError(f"{self.path} holds a run already ({', '.join(found)}); training into "
                           "it would overwrite it",
                           hint=f"{again}start it afresh with --overwrite (which deletes those "
                                "files first), or give another --out")

    @contextlib.contextmanager
    def claimed(self, *, resume: bool = False, overwrite: bool = False):
        """The directory, created if need be and locked for the block: refused (RunError) while
        another training holds it, or when it holds a run and neither `resume` nor `overwrite` is
        given. `overwrite` deletes the earlier run's files (RUN_FILES, FIGURES), nothing else. A
        directory this call created is removed again if the block wrote nothing into it. Where
        this process does not write, the block runs without any of that."""
        if not self.writes:
            yield self
            return
        run_dir = self.path
        created = not run_dir.exists()
        try:
            run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # a run's files are the user's
        except OSError as error:
            raise RunError(f"cannot make the run directory {run_dir}: {error.strerror or error}",
                           hint="choose another --out") from None
        descriptor = _lock(run_dir)
        try:
            self.check_target(resume=resume, overwrite=overwrite)  # as it is, now that we hold it
            if overwrite and not resume:
                for name in (*RUN_FILES, *FIGURES):
                    if (run_dir / name).exists() or (run_dir / name).is_symlink():
                        (run_dir / name).unlink()
            yield self
        finally:
            if created and [p.name for p in run_dir.iterdir()] == [LOCK]:
                (run_dir / LOCK).unlink()
                run_dir.rmdir()
            if descriptor is not None:
                os.close(descriptor)  # releases the lock

    # --- reading ---------------------------------------------------------------------------------

    def last_checkpoint(self) -> dict:
        """last.pt, which must be a run's checkpoint to resume from."""
        from . import checkpoint
        return checkpoint.load(self.last, resumable=True)

    def resumed_config(self, overrides: dict):
        """The TrainConfig the run was started with (config.json), updated by `overrides`."""
        from .config import TrainConfig

        run_dir, path = self.path, self.path / "config.json"
        if not run_dir.is_dir():
            raise RunError(f"cannot resume {run_dir}: there is no such directory",
                           hint="give the directory a training wrote, e.g. runs/NAME")
        if not self.last.exists():
            raise RunError(f"cannot resume {run_dir}: it has no last.pt (no epoch was completed)")
        hint = "a run's config.json is written by `archdsl train`; start a new run with --out"
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as err:
            reason = err.strerror if isinstance(err, OSError) else f"not valid JSON ({err})"
            raise RunError(f"cannot resume {run_dir}: cannot read {path}: {reason}",
                           hint=hint) from None
        try:
            config = TrainConfig.from_dict(saved, str(path))
        except RunError as err:
            raise RunError(f"cannot resume {run_dir}: {err.message}", hint=hint) from None
        return config.replace(**overrides)

    def recorded_input(self) -> tuple[int, ...] | None:
        """The input shape the run was trained at, as config.json records it; None for a
        directory that holds no readable config.json and for a run from before it recorded
        the input (the command reading the run reports on those)."""
        try:
            saved = json.loads((self.path / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        shape = saved.get("input") if isinstance(saved, dict) else None
        if not isinstance(shape, list) or not all(type(size) is int for size in shape):
            return None
        return tuple(shape)

    def history(self) -> list[dict]:
        """metrics.jsonl's records, none where it is missing."""
        metrics = self.path / "metrics.jsonl"
        if not metrics.is_file():
            return []
        return [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines()]

    # --- writing: what a training keeps, in the order it writes it -------------------------------

    def write_spec(self, text: str) -> None:
        if self.writes:
            files.write_text(self.path / "spec.spec", text)

    def write_config(self, config, facts: dict) -> None:
        """config.json: the settings, then the facts of the run (config.RUN_FACTS)."""
        if self.writes:
            files.write_text(self.path / "config.json",
                             json.dumps({**config.to_dict(), **facts}, indent=2) + "\n")

    def save_epoch(self, state, improved: bool, random_states: list) -> None:
        """last.pt, best.pt where the epoch improved on the best, then metrics.jsonl: the
        checkpoints first, so that a kill between them leaves metrics that --resume rewrites."""
        if not self.writes:
            return
        from . import checkpoint
        saved = state.to_checkpoint(random_states)
        checkpoint.save_atomically(saved, self.last)
        if improved:
            checkpoint.save_atomically(saved, self.best)
        files.write_text(self.path / "metrics.jsonl",
                         "".join(json.dumps(record) + "\n" for record in state.history))

    def draw(self, history: list[dict], test, classes: list[str]) -> None:
        """curves.png, and confusion.png where there was a test split (`test`, an Evaluation)."""
        if not self.writes:
            return
        from .plot import confusion_figure, curves_figure, save_figure
        save_figure(curves_figure(history), self.path / "curves.png")
        if test is not None:
            save_figure(confusion_figure(test.confusion.tolist(), classes),
                        self.path / "confusion.png")


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
