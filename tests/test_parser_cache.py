"""archdsl/parser_cache.py: a process that finds the cache parses exactly as one that builds it,
and a cache that someone else could have written is never unpickled."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

# What a fresh process parses and analyzes, with where its parser came from.
PROBE = """
import json, archdsl, archdsl.parser_cache as parser_cache
analysis = archdsl.analyze(archdsl.read_spec("specs/zoo/resnet50.spec"))
print(json.dumps({"cache": parser_cache.cache_file(), "rows": [r.name for r in analysis.rows],
                  "params": analysis.totals.params}))
"""


def _probe(cache_home) -> dict:
    environment = dict(os.environ, XDG_CACHE_HOME=str(cache_home))
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=environment,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return json.loads(done.stdout)


def test_the_second_process_loads_the_tables_the_first_built(tmp_path):
    cache = tmp_path / "archdsl" / "parser.lark-cache"
    first = _probe(tmp_path)
    assert first["cache"] == str(cache) and cache.is_file()
    written = cache.stat().st_mtime_ns
    second = _probe(tmp_path)
    assert cache.stat().st_mtime_ns == written  # loaded, not rebuilt
    assert second == first and first["params"] == 25_557_032


def test_a_damaged_cache_is_rebuilt(tmp_path):
    cache = tmp_path / "archdsl" / "parser.lark-cache"
    expected = _probe(tmp_path)
    cache.write_bytes(cache.read_bytes()[:100])  # as if a process died while writing it
    assert _probe(tmp_path) == expected
    assert cache.stat().st_size > 100


def test_without_a_cache_directory_the_parser_is_built_each_time(tmp_path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    result = _probe(blocked)
    assert result["cache"] is None and result["params"] == 25_557_032


# A pickle that, once unpickled, leaves a file behind: what another user could plant.
PLANT = """
import os, pickle, sys
class Payload:
    def __reduce__(self):
        return (os.system, ("touch " + sys.argv[2],))
key = __import__("archdsl.parser_cache", fromlist=["cache_key"]).cache_key()
with open(sys.argv[1], "wb") as file:
    file.write(key)
    pickle.dump(Payload(), file)
"""


def _plant(cache, marker):
    cache.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", PLANT, str(cache), str(marker)], cwd=ROOT, check=True)


def test_the_planted_cache_runs_its_code_where_trusted(tmp_path):
    # The control for the tests below: a private file of the user's own is unpickled.
    cache, marker = tmp_path / "archdsl" / "parser.lark-cache", tmp_path / "ran"
    _plant(cache, marker)
    os.chmod(cache, 0o600)
    environment = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    subprocess.run([sys.executable, "-c", "import archdsl; archdsl.parse('ReLU')"], cwd=ROOT,
                   env=environment, capture_output=True)
    assert marker.exists()


def test_a_cache_others_may_write_is_never_unpickled(tmp_path):
    cache, marker = tmp_path / "archdsl" / "parser.lark-cache", tmp_path / "ran"
    _plant(cache, marker)
    os.chmod(cache, 0o666)
    assert _probe(tmp_path)["params"] == 25_557_032
    assert not marker.exists()
    assert oct(cache.stat().st_mode & 0o777) == "0o600"  # replaced by a private one


def test_a_cache_in_a_directory_others_may_write_is_not_used(tmp_path):
    cache, marker = tmp_path / "archdsl" / "parser.lark-cache", tmp_path / "ran"
    _plant(cache, marker)
    os.chmod(cache, 0o600)
    os.chmod(cache.parent, 0o777)
    result = _probe(tmp_path)
    assert result["cache"] is None and result["params"] == 25_557_032
    assert not marker.exists()


def test_a_linked_cache_is_not_followed(tmp_path):
    elsewhere, marker = tmp_path / "elsewhere", tmp_path / "ran"
    _plant(elsewhere, marker)
    os.chmod(elsewhere, 0o600)
    cache = tmp_path / "archdsl" / "parser.lark-cache"
    cache.parent.mkdir(mode=0o700)
    cache.symlink_to(elsewhere)
    assert _probe(tmp_path)["params"] == 25_557_032
    assert not marker.exists() and not cache.is_symlink()


@pytest.mark.skipif(os.getuid() != 0, reason="giving a file to another user needs root")
def test_a_cache_another_user_owns_is_never_unpickled(tmp_path):
    cache, marker = tmp_path / "archdsl" / "parser.lark-cache", tmp_path / "ran"
    _plant(cache, marker)
    os.chmod(cache, 0o600)
    os.chown(cache, 65534, 65534)
    assert _probe(tmp_path)["params"] == 25_557_032
    assert not marker.exists() and cache.stat().st_uid == os.getuid()
