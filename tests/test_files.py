"""archdsl/files.py: a run file or a formatted spec is written beside its target, then renamed."""
import os

import pytest

from archdsl import files
from archdsl.errors import RunError


def test_a_link_at_the_target_is_replaced_not_written_through(tmp_path):
    victim, target = tmp_path / "victim", tmp_path / "config.json"
    victim.write_text("precious\n")
    target.symlink_to(victim)
    files.write_text(target, "{}\n")
    assert victim.read_text() == "precious\n"
    assert not target.is_symlink() and target.read_text() == "{}\n"
    assert target.stat().st_mode & 0o777 == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "metrics.jsonl"
    target.write_text("old\n")

    def broken(handle):
        raise OSError(28, os.strerror(28))

    with pytest.raises(RunError, match=r"cannot write .*metrics.jsonl: No space left on device"):
        files.replace_file(target, broken)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]
