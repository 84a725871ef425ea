"""Benchmark 5: the language server's re-analysis after an edit of specs/zoo/resnet50.spec.

In-process: what `archdsl lsp` does on a didChange, timed with time.perf_counter: pygls applies
the incremental edit to its copy of the text, archdsl.editor.SpecDocument parses and analyses
it as `check` would (with the train block and the assertions), and archdsl.lsp.publishable turns
its findings into the protocol's diagnostics. The edits alternate `Linear(1000)` and
`Linear(100)` on the last line, so that every run analyses text it has not just seen.

Over stdio, for scale: the same edits sent by a pygls client to a running `archdsl lsp`, from
the didChange notification until its publishDiagnostics arrives (JSON both ways, the pipe, the
server's event loop).

    python bench/lsp_latency.py
"""
from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient
from pygls.workspace import TextDocument

from archdsl.editor import SpecDocument
from archdsl.lsp import publishable

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs/zoo/resnet50.spec"
GOAL_MS = 20.0  # the 95th percentile of the in-process re-analysis
URI = SPEC.as_uri()


def _edits(text: str):
    """The two alternating edits of the last line: (range, new text) each."""
    lines = text.split("\n")
    line = max(i for i, t in enumerate(lines) if "Linear(1000)" in t)
    column = lines[line].index("Linear(1000)") + len("Linear(")
    shorter = lsp.Range(lsp.Position(line, column), lsp.Position(line, column + 4))
    longer = lsp.Range(lsp.Position(line, column), lsp.Position(line, column + 3))
    return [(shorter, "100"), (longer, "1000")]


def _summary(seconds: list[float]) -> dict:
    ms = sorted(s * 1000 for s in seconds)
    return {"runs": len(ms), "median_ms": statistics.median(ms),
            "p95_ms": ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))], "max_ms": ms[-1]}


def in_process(runs: int = 100) -> dict:
    text = SPEC.read_text()
    document = TextDocument(URI, text, version=1,
                            sync_kind=lsp.TextDocumentSyncKind.Incremental)
    analysed = SpecDocument(text, str(SPEC))  # warm-up: imports, the parser's tables
    edits, seconds = _edits(text), []
    for run in range(runs):
        edit_range, new = edits[run % 2]
        gc.collect()
        start = time.perf_counter()
        document.apply_change(lsp.TextDocumentContentChangePartial(range=edit_range, text=new))
        analysed = SpecDocument(document.source, str(SPEC), analysed)
        publishable(analysed, URI, run + 2)
        seconds.append(time.perf_counter() - start)
        assert not analysed.diagnostics and len(analysed.analysis.rows) > 100
    return _summary(seconds)


async def _over_stdio(runs: int) -> list[float]:
    client = LanguageClient("archdsl-bench", "1")
    arrived: asyncio.Queue = asyncio.Queue()

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def diagnostics(params: lsp.PublishDiagnosticsParams):
        arrived.put_nowait((time.perf_counter(), params))

    script = Path(sys.executable).parent / "archdsl"
    command = [str(script), "lsp"] if script.exists() else [sys.executable, "-m", "archdsl",
                                                              "lsp"]
    await client.start_io(*command)
    await client.initialize_async(lsp.InitializeParams(capabilities=lsp.ClientCapabilities()))
    client.initialized(lsp.InitializedParams())
    text = SPEC.read_text()
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(
        lsp.TextDocumentItem(uri=URI, language_id="archdsl", version=1, text=text)))
    await arrived.get()
    edits, seconds = _edits(text), []
    for run in range(runs):
        edit_range, new = edits[run % 2]
        start = time.perf_counter()
        client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=URI, version=run + 2),
            content_changes=[lsp.TextDocumentContentChangePartial(range=edit_range,
                                                                  text=new)]))
        end, params = await arrived.get()
        assert params.version == run + 2 and not params.diagnostics
        seconds.append(end - start)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return seconds


def over_stdio(runs: int = 50) -> dict:
    return _summary(asyncio.run(_over_stdio(runs)))


def run(echo=print, runs: int = 100) -> dict:
    inside = in_process(runs)
    echo(f"  in-process: median {inside['median_ms']:.1f} ms, 95th percentile "
         f"{inside['p95_ms']:.1f} ms")
    outside = over_stdio(max(10, runs // 2))
    echo(f"  over stdio: median {outside['median_ms']:.1f} ms")
    return {"in_process": inside, "over_stdio": outside, "goal_ms": GOAL_MS,
            "met": inside["p95_ms"] <= GOAL_MS}


def markdown(result: dict) -> str:
    lines = ["| measured | runs | median | 95th percentile | max |", "|---|---:|---:|---:|---:|"]
    for what, key in (("in-process: edit, parse, analyse, diagnostics", "in_process"),
                      ("over stdio: didChange → publishDiagnostics", "over_stdio")):
        r = result[key]
        lines.append(f"| {what} | {r['runs']} | {r['median_ms']:.1f} ms | {r['p95_ms']:.1f} ms "
                     f"| {r['max_ms']:.1f} ms |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(run()))
