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

from .errors import RunError

PRIVATE = 0o600  # run files and weights: the user's alone


def replace_file(path: Path, write: Callable[[BinaryIO], None], mode: int = PRIVATE) -> None:
    """Write `path` through `write(handle)` into a new file of permissions `mode`, then rename.
    A failure (a full disk, a folder that cannot be written) is a RunError; `path` is then as
    it was."""
    path = Path(path)
    try:
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                                 suffix=".tmp")
    except OSError as error:
        raise _cannot_write(path, error) from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise _cannot_write(path, error) from None
        raise


def _cannot_write(path: Path, error: OSError) -> RunError:
    return RunError(f"cannot write {path}: {error.strerror or error}",
                    hint=f"{path.name} is as it was before; free space or choose another place")


def write_bytes(path: Path, data: bytes, mode: int = PRIVATE) -> None:
    replace_file(path, lambda handle: handle.write(data), mode)


def write_text(path: Path, text: str, mode: int = PRIVATE) -> None:
    write_bytes(path, text.encode("utf-8"), mode)
