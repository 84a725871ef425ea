"""Where the tests find the official Fashion-MNIST files: ../shared/data beside the clone."""
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
RAW = SHARED / "FashionMNIST" / "raw"
STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
         "t10k-labels-idx1-ubyte")
HAVE_FASHION = all((RAW / stem).is_file() or (RAW / f"{stem}.gz").is_file() for stem in STEMS)
NO_FASHION = f"official Fashion-MNIST files absent from {RAW}"
needs_fashion = pytest.mark.skipif(not HAVE_FASHION, reason=NO_FASHION)
