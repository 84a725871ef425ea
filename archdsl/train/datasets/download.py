"""The last resort: torchvision downloads a dataset's files into the first writable data root."""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

DOWNLOAD_TIMEOUT = 30.0  # seconds per socket operation; urllib would otherwise wait forever
DEBIAN = "Debian package location"  # the origin of a root that is the system's, never written


def try_download(entry, roots, download: bool) -> str:
    """Download `entry` with torchvision into the first writable root; return a line saying how
    it went.

    The download lands in a scratch folder that is moved into place only once complete, so an
    interrupted or failed download never leaves files that a later search would take for data.
    """
    if not download:
        return "Nothing was downloaded (downloading is off)."
    if entry.download is None:
        return "Nothing was downloaded (torchvision cannot download it)."
    dest = next((r for r, origin in roots if origin != DEBIAN and _writable(r)), None)
    if dest is None:
        return "Could not download: none of the places above is writable."
    import torchvision.datasets
    subpath = entry.files.folders[0]  # torchvision's own layout
    scratch = created = None
    timeout = socket.getdefaulttimeout()
    try:
        created = next((p for p in [*reversed(dest.parents), dest] if not p.exists()), None)
        dest.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".archdsl-download-", dir=dest))
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)
        for arguments in entry.download.calls:
            getattr(torchvision.datasets, entry.download.dataset)(scratch, download=True,
                                                                   **arguments)
        target = dest / subpath
        if not target.exists():  # one rename: all or nothing
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(scratch / subpath, target)
        else:
            for f in (scratch / subpath).iterdir():
                os.replace(f, target / f.name)
        return f"Downloaded into {target}."
    except Exception as err:  # noqa: BLE001 - any failure becomes part of the one message
        if created is not None:  # leave no empty folders behind either
            shutil.rmtree(created, ignore_errors=True)
        return f"Downloading into {dest} failed: {' '.join(str(err).split())}"
    finally:
        socket.setdefaulttimeout(timeout)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _writable(path: Path) -> bool:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path.is_dir() and os.access(path, os.W_OK)
