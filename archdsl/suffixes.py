"""The format of a file to write: the one asked for, else the one the file's suffix names.
`draw` and `export` share it, so that `-o net.svg` and `-o model.onnx` need no --format."""
from __future__ import annotations

from pathlib import Path

from .errors import RunError


def format_from_suffix(path: Path, given: str | None, suffixes: dict[str, str],
                       what: str) -> str:
    """`given`, else the format `suffixes` gives for the path's suffix (any case); a RunError
    naming the suffixes to use where neither tells."""
    fmt = given or suffixes.get(Path(path).suffix.lower())
    if fmt not in suffixes.values():
        first: dict[str, str] = {}  # each format's first suffix
        for suffix, name in suffixes.items():
            first.setdefault(name, suffix)
        first = list(first.values())
        names = first[0] if len(first) == 1 else ", ".join(first[:-1]) + " or " + first[-1]
        raise RunError(f"cannot tell the {what}'s format from {Path(path).name!r}",
                       hint=f"name the file {names}, or pass --format")
    return fmt
