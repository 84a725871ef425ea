"""The parser's table cache: a process that finds it parses exactly as one that builds it."""
import json
import os
import subprocess
import sys

from conftest import ROOT

# What a fresh process parses and analyzes, with where its parser came from.
PROBE = """
import json, archdsl, archdsl.parser as parser
analysis = archdsl.analyze(archdsl.read_spec("specs/zoo/resnet50.spec"))
print(json.dumps({"cache": parser._cache_file(), "rows": [r.name for r in analysis.rows],
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
