"""Where a dataset's files are looked for, in order, and the one error that lists every place."""
from __future__ import annotations

import os
from pathlib import Path

from .download import DEBIAN, try_download
from .registry import DEBIAN_DIRS, DatasetEntry
from .types import DataError


def search_roots(name: str, data_dir) -> list[tuple[Path, str]]:
    """Candidate data roots in search order, each with where it came from."""
    places = [(data_dir, "--data-dir"), (os.environ.get("ARCHDSL_DATA"), "$ARCHDSL_DATA"),
              ("data", "./data"), (DEBIAN_DIRS.get(name), DEBIAN)]
    out: dict[Path, str] = {}
    for path, origin in places:
        if path:
            out.setdefault(Path(path).absolute(), origin)
    return list(out.items())


def find_files(entry: DatasetEntry, roots) -> tuple[dict[str, Path] | None, list[str]]:
    """Every file of `entry` from the first folder holding all of them, and every folder looked
    in (a folder holding only some says which are missing)."""
    layout, looked = entry.files, []
    for root, origin in roots:
        for d in (root / folder if folder else root for folder in layout.folders):
            candidates = {name: (d / name, d / f"{name}.gz") if layout.gzip else (d / name,)
                          for name in layout.names}
            files = {name: next((p for p in paths if p.is_file()), None)
                     for name, paths in candidates.items()}
            if all(files.values()):
                return files, looked
            missing = [name for name, path in files.items() if path is None]
            note = "" if len(missing) == len(files) else f" (incomplete: no {', '.join(missing)})"
            looked.append(f"{d}  [{origin}]{note}")
    return None, looked


def locate(entry: DatasetEntry, data_dir, download: bool) -> dict[str, Path]:
    """The files of `entry`, downloading them if need be; else one error naming every place
    looked in and how to get them."""
    roots = search_roots(entry.name, data_dir)
    found, looked = find_files(entry, roots)
    if found is None:
        failure = try_download(entry, roots, download)
        found, _ = find_files(entry, roots)
        if found is None:
            wanted = ", ".join(entry.files.names) + (" (each raw or .gz)" if entry.files.gzip else "")
            apt = f"`apt-get install {entry.debian[0]}`, or " if entry.debian else ""
            raise DataError(f"{entry.name} not found: looked for {wanted} in\n  "
                            + "\n  ".join(looked) + f"\n{failure}",
                            hint=f"{apt}{entry.get}, or pass --data-dir DIR (or set "
                                 "ARCHDSL_DATA) where they are")
    return found
