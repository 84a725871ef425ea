"""Find Fashion-MNIST's official files and give both trainers a root they can read offline.

The tutorial's loop reads torchvision's layout, ROOT/FashionMNIST/raw/<name>-ubyte, uncompressed;
archdsl train reads that layout too, gzipped or not. The files may be in that layout under the
given directory (../shared/data here), loose in it, or where Debian's `dataset-fashion-mnist`
package puts them. When they are not already in torchvision's layout, uncompressed, they are
copied (and gunzipped) into a temporary root once.
"""
from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from pathlib import Path

NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
DEBIAN = Path("/usr/share/datasets/fashion-mnist")
ROOT = Path(__file__).resolve().parent.parent


def _candidates(data_dir: str | None) -> list[Path]:
    places = [data_dir, os.environ.get("ARCHDSL_DATA"), ROOT.parent / "shared/data",
              ROOT / "data", DEBIAN]
    found = []
    for place in places:
        if place:
            place = Path(place).absolute()
            found += [place / "FashionMNIST/raw", place]
    return found


def _find(directory: Path, name: str) -> Path | None:
    for candidate in (directory / name, directory / (name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def torchvision_root(data_dir: str | None, scratch: str | None = None) -> str:
    """A directory D with D/FashionMNIST/raw/<the four files>, uncompressed."""
    for directory in _candidates(data_dir):
        if directory.name == "raw" and all((directory / n).is_file() for n in NAMES):
            return str(directory.parent.parent)
    for directory in _candidates(data_dir):
        files = [_find(directory, n) for n in NAMES]
        if all(files):
            root = Path(scratch or tempfile.mkdtemp(prefix="fashion-mnist-"))
            raw = root / "FashionMNIST/raw"
            raw.mkdir(parents=True, exist_ok=True)
            for name, source in zip(NAMES, files):
                opener = gzip.open if source.suffix == ".gz" else open
                with opener(source, "rb") as src, open(raw / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            return str(root)
    looked = ", ".join(str(d) for d in _candidates(data_dir))
    raise SystemExit(f"Fashion-MNIST not found; looked in {looked}. Put the four official files "
                     f"({', '.join(NAMES)}, gzipped or not) in one of them, or "
                     f"`apt-get install dataset-fashion-mnist`.")
