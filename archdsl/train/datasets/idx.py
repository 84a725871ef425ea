"""The IDX format (MNIST's): a header of type and dimensions, then the values, raw or gzipped.

Everything is checked against the header, and a gzipped file is inflated no further than its
header declares, so a damaged or hostile file is refused by name rather than read wrong.
"""
from __future__ import annotations

import struct
import zlib
from math import prod
from pathlib import Path

import numpy as np

from ...layers.geometry import format_shape
from .types import DataError

_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not, checking the header against the data."""
    try:
        raw = Path(path).read_bytes()
        if raw[:2] == b"\x1f\x8b":  # sniff rather than trust the extension
            raw = _gunzip_as_declared(raw, path)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"cannot read {path}: {err}") from err
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path} is not an IDX file: bad magic number 0x{raw[:4].hex()}")
    start = 4 + 4 * raw[3]
    if len(raw) < start:
        raise DataError(f"{path} is truncated: it ends inside its header")
    dims = struct.unpack(f">{raw[3]}I", raw[4:start])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    want = start + prod(dims) * dtype.itemsize
    if want > MAX_IDX_BYTES:
        raise DataError(f"{path} declares {format_shape(dims)} values: more than "
                        f"{MAX_IDX_BYTES // 2**30} GiB")
    if len(raw) != want:
        problem = "is truncated" if len(raw) < want else "has trailing bytes"
        raise DataError(f"{path} {problem}: the header promises {format_shape(dims)} values "
                        f"({want} bytes) but the file has {len(raw)} bytes")
    # astype copies into native byte order and a writable array that torch can adopt
    return np.frombuffer(raw, dtype, offset=start).reshape(dims).astype(dtype.newbyteorder("="))


MAX_IDX_BYTES = 8 * 2 ** 30  # Fashion-MNIST's largest file is 47 MB


def _gunzip_as_declared(compressed: bytes, path) -> bytes:
    """Inflate no more than the IDX header declares, and one byte to tell of trailing data: a
    small file that inflates without end (a gzip bomb) costs no more memory than it claims."""
    inflate, pending, out = zlib.decompressobj(wbits=31), compressed, bytearray()

    def until(size: int) -> None:
        nonlocal pending
        while len(out) < size and not inflate.eof:
            chunk = inflate.decompress(pending, size - len(out))
            pending = inflate.unconsumed_tail
            if not chunk and not pending:
                raise EOFError("Compressed file ended before the end-of-stream marker was "
                               "reached")
            out.extend(chunk)

    until(4)
    if len(out) == 4 and out[2] in _IDX_TYPES:
        until(4 + 4 * out[3])
        if len(out) == 4 + 4 * out[3]:
            dims = struct.unpack(f">{out[3]}I", out[4:])
            declared = len(out) + prod(dims) * np.dtype(_IDX_TYPES[out[2]]).itemsize
            if declared <= MAX_IDX_BYTES:
                until(declared + 1)
    return bytes(out)
