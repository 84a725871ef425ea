"""The parser's tables, kept between processes: building lark's LALR tables costs more than
parsing a ResNet-50 spec. The cache is a pickle, and unpickling runs code, so it is read only
from a regular file, not a link, that the current user owns and no one else may write, in a
directory of the same kind, and only when its first line is the key of this grammar, lark and
Python; in any other case the parser is built (and the cache rewritten where it may be)."""
from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Callable

import lark
from lark import Lark

FILE_NAME = "parser.lark-cache"


def cached(build: Callable[[], Lark]) -> Lark:
    """The cached parser where a trusted cache for this grammar exists, else `build()`, saved."""
    path = cache_file()
    key = cache_key()
    parser = load(Path(path), key) if path else None
    if parser is None:
        parser = build()
        if path:
            save(parser, Path(path), key)
    return parser


def cache_file() -> str | None:
    """Where the built parser is kept, or None where no safe place can be had."""
    folder = _cache_folder()
    return str(folder / FILE_NAME) if folder else None


def _cache_folder() -> Path | None:
    """The user's cache directory for archdsl, not a predictable name in the shared temporary
    directory: the cache is a pickle, and unpickling runs code. Trusted only if it is a real
    directory (no link) that the current user owns and no one else may write; else None, and
    the parser is built each time."""
    try:
        folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "archdsl"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        status = os.lstat(folder)
    except (OSError, RuntimeError):  # RuntimeError: no home directory to be found
        return None
    return folder if _private(status) and stat.S_ISDIR(status.st_mode) else None


def _private(status: os.stat_result) -> bool:
    return status.st_uid == os.getuid() and not status.st_mode & 0o022


def cache_key() -> bytes:
    grammar = (resources.files("archdsl.grammars") / "archdsl.lark").read_bytes()
    identity = b"\0".join([grammar, lark.__version__.encode(), sys.version.encode()])
    return hashlib.sha256(identity).hexdigest().encode() + b"\n"


def load(path: Path, key: bytes) -> Lark | None:
    """The cached parser, if the file is a regular file (a link is not followed) of the current
    user's that no one else may write, and was built for this grammar; else None."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as file:
        status = os.fstat(file.fileno())
        if not stat.S_ISREG(status.st_mode) or not _private(status) or file.readline() != key:
            return None
        try:
            return Lark.load(file)
        except Exception:  # a damaged or truncated file: build the parser again
            return None


def save(parser: Lark, path: Path, key: bytes) -> None:
    """Write the cache under a fresh private name in the same directory, then rename it into
    place: a reader never sees half a file, and no planted name is written through."""
    try:
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".parser.",
                                                 suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(key)
            parser.save(file)
        os.replace(temporary, path)
    except Exception:  # a cache is an optimization: failing to write one is no error
        with contextlib.suppress(OSError):
            os.unlink(temporary)
