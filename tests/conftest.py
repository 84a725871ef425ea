from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").rglob("*.spec"))


@pytest.fixture
def root() -> Path:
    return ROOT
