"""Collects README.md's examples (tests/readme_examples.py says how they are marked and run)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "tests"))

from readme_examples import readme_sybil  # noqa: E402

pytest_collect_file = readme_sybil().pytest()
