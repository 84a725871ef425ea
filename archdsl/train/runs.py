"""Run directories as commands are given them: whether a spec is the run's, and where a run's
spec, checkpoint and input shape are when a command is given the directory. Torch-free.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ArchDSLError, RunError
from . import run_directory
from .run_directory import RunDirectory

# The run directory's files, its lock and the refusal to train over a run live in
# run_directory.py; these names stay importable from here.
LOCK, RUN_FILES = run_directory.LOCK, run_directory.RUN_FILES


def run_files(run_dir: Path) -> list[str]:
    return RunDirectory(run_dir).run_files()


def check_target(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    RunDirectory(run_dir).check_target(resume=resume, overwrite=overwrite)


def claimed(run_dir: Path, *, resume: bool = False, overwrite: bool = False):
    """RunDirectory.claimed: the directory, locked for the block."""
    return RunDirectory(run_dir).claimed(resume=resume, overwrite=overwrite)


def trained_input(run_dir: str | Path) -> tuple[int, ...] | None:
    """The input shape a run was trained at where its spec.spec does not give it (a training
    with --input, or from Python with input=): what --resume reads the spec at unless given
    another, so that an edited input line still counts as a change. None where the spec's own
    input line was used, and for a run from before config.json recorded its input."""
    from ..parser import parse, read_text

    shape = RunDirectory(run_dir).recorded_input()
    path = str(Path(run_dir) / "spec.spec")
    try:
        spec = parse(read_text(path), path)
    except (OSError, ArchDSLError):
        return None  # the command reading the run reports on its spec
    if shape is None or (spec.input is not None and spec.input.shape == shape):
        return None
    return shape


def spec_change(run_dir: Path, spec_text: str, input=None) -> str | None:
    """How `spec_text`, read at `input` (None: its own input line), differs from the run's
    spec.spec as the run was trained (at the input config.json records; at `input` for an
    older run), as a network or a train(...) block, in words naming the first difference; None
    when they differ at most in layout and comments."""
    from ..analysis import analyze
    from ..parser import parse, read_text
    from .config import TrainConfig

    path = Path(run_dir) / "spec.spec"
    if not path.is_file():
        return None  # a run from before spec.spec was kept: nothing to compare with
    try:
        saved = parse(read_text(str(path)), str(path))
        before = analyze(saved, RunDirectory(run_dir).recorded_input() or input)
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


def directory_input(spec: str) -> tuple[int, ...] | None:
    """For eval and export given SPEC: where it is a run directory, the input it was trained at
    (its weights fit no other), else None."""
    return RunDirectory(spec).recorded_input() if spec != "-" and Path(spec).is_dir() else None


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
