"""Writing files that a planted link or a kill mid-write cannot turn against the user.

Each file is written under a fresh name made with exclusive creation in the target's own
directory (so no existing file or link is opened), flushed, then renamed over the target: the
rename replaces a link named like the target rather than writing through it, and a reader sees
the old file or the new one, never half of one.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

PRIVATE = 0o600  # run files and weights: the user's alone


def replace_file(path: Path, write: Callable[[BinaryIO], None], mode: int = PRIVATE) -> None:
    """Write `path` through `write(handle)` into a new file of permissions `mode`, then rename."""
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                             suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_bytes(path: Path, data: bytes, mode: int = PRIVATE) -> None:
    replace_file(path, lambda handle: handle.write(data), mode)


def write_text(path: Path, text: str, mode: int = PRIVATE) -> None:
    write_bytes(path, text.encode("utf-8"), mode)
