"""`archdsl lsp` end to end: a real LSP client (pytest-lsp) starts the server as an editor does,
over stdio, and speaks the protocol to it. What the server answers is checked against the
library: spans and messages of the errors parse/analyze raise, rows of analyze(), format_spec."""
import dataclasses
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls", reason="the lsp extra (pygls) is not installed")
pytest_lsp = pytest.importorskip("pytest_lsp", reason="pytest-lsp is not installed")

from lsprotocol import types as lsp  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities  # noqa: E402

from archdsl import analyze, parse  # noqa: E402
from archdsl.budget import check_budget, failures  # noqa: E402
from archdsl.errors import ArchDSLError  # noqa: E402
from archdsl.fmt import format_spec  # noqa: E402
from archdsl.layers import format_shape, layer_class, layer_names  # noqa: E402
from archdsl.train.config import TrainConfig  # noqa: E402
from conftest import ROOT, SPECS  # noqa: E402

# The console script, as the README and the VS Code extension start it.
SCRIPT = Path(sys.executable).parent / "archdsl"
COMMAND = [str(SCRIPT), "lsp"] if SCRIPT.exists() else [sys.executable, "-m", "archdsl", "lsp"]

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=COMMAND))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(lsp.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=ROOT.as_uri()))
    yield
    await lsp_client.shutdown_session()


_versions: dict[str, int] = {}


async def open_document(client: LanguageClient, uri: str, text: str):
    """Open a document and wait for its diagnostics."""
    _versions[uri] = 1
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(
        lsp.TextDocumentItem(uri=uri, language_id="archdsl", version=1, text=text)))
    await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return client.diagnostics[uri]


async def change_document(client: LanguageClient, uri: str, range_: lsp.Range, new: str):
    _versions[uri] += 1
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=_versions[uri]),
        content_changes=[lsp.TextDocumentContentChangePartial(range=range_, text=new)]))
    await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return client.diagnostics[uri]


def position(text: str, line: int, column: int) -> lsp.Position:
    """A Span's 1-based line and column as the protocol's position, counted in UTF-16."""
    line_text = text.split("\n")[line - 1]
    return lsp.Position(line - 1, len(line_text[:column - 1].encode("utf-16-le")) // 2)


def span_range(text: str, span) -> lsp.Range:
    return lsp.Range(position(text, span.line, span.column),
                     position(text, span.end_line, span.end_column))


def at(text: str, needle: str, after: int = 0) -> lsp.Position:
    """The position of `needle`'s first character (first found from `after`)."""
    offset = text.index(needle, after)
    line = text.count("\n", 0, offset) + 1
    return position(text, line, offset - (text.rfind("\n", 0, offset) + 1) + 1)


def library_findings(text: str) -> list[ArchDSLError]:
    """Every error and warning the library reports for the text, in check's order."""
    try:
        spec = parse(text)
    except ArchDSLError as error:
        return [*error.warnings, error]
    found = []
    try:
        TrainConfig.from_spec(spec)
    except ArchDSLError as error:
        found.append(error)
    try:
        analysis = analyze(spec)
    except ArchDSLError as error:
        return found + [*error.warnings, error]
    return found + list(analysis.warnings) + failures(check_budget(analysis))


def assert_reports(diagnostics, text: str):
    """The server's diagnostics are the library's findings: exact ranges, message and hint."""
    expected = library_findings(text)
    assert len(diagnostics) == len(expected), [d.message for d in diagnostics]
    for diagnostic, error in zip(diagnostics, expected):
        assert diagnostic.range == span_range(text, error.span)
        assert diagnostic.message.startswith(error.message)
        if error.hint:
            assert diagnostic.message.endswith(f"hint: {error.hint}")
        for note in error.notes:
            assert f"note: {note}" in diagnostic.message
        assert diagnostic.severity == (lsp.DiagnosticSeverity.Warning if error.kind == "warning"
                                       else lsp.DiagnosticSeverity.Error)
        assert diagnostic.code == type(error).__name__ and diagnostic.source == "archdsl"


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
async def test_shipped_specs_open_clean(client: LanguageClient, spec):
    text = spec.read_text()
    diagnostics = await open_document(client, spec.as_uri(), text)
    assert_reports(diagnostics, text)
    assert not [d for d in diagnostics if d.severity == lsp.DiagnosticSeverity.Error]


BROKEN = {
    "unknown_layer": "input 1x28x28\nConv(16, 3, p=1) -> ReLU\n  -> Foo(3) -> Linear(10)\n",
    "syntax": "input 1x28x28\nConv(16, 3 -> ReLU\n",
    # The error is at a definition's Conv; notes say which call got there.
    "shape_in_definition": "input 1x8x8\ndef Block(c) = [Conv(c, 3) -> ReLU]\n"
                           "Block(4) -> Block(4) -> Block(4) -> Block(4)\n",
    # Two findings: the input's warning, and a failed assertion.
    "warning_and_budget": "input 28x28\nassert params < 10\nConv(16, 3) -> Flatten -> Linear(10)\n",
    # A character beyond UTF-16's basic plane before the error: two code units.
    "train_setting": "input 1x28x28\ntrain(data_dir='🙂/data', epochs=0)\nFlatten -> Linear(10)\n",
}


@pytest.mark.parametrize("name", BROKEN)
async def test_broken_specs_report_every_error_at_its_range(client: LanguageClient, name):
    text = BROKEN[name]
    diagnostics = await open_document(client, f"untitled:{name}.spec", text)
    assert diagnostics
    assert_reports(diagnostics, text)


async def test_ranges_are_exact(client: LanguageClient):
    """The ranges found from the text itself, not from the library's spans."""
    text = BROKEN["unknown_layer"]
    (diagnostic,) = await open_document(client, "untitled:exact1.spec", text)
    start = at(text, "Foo")
    assert diagnostic.range == lsp.Range(start, lsp.Position(start.line, start.character + 3))
    text = BROKEN["train_setting"]
    (diagnostic,) = await open_document(client, "untitled:exact2.spec", text)
    start = at(text, "epochs=0")
    assert start.character == text.split("\n")[1].index("epochs") + 1  # 🙂 is two code units
    assert diagnostic.range == lsp.Range(start, lsp.Position(1, start.character + 8))


async def test_diagnostics_follow_every_change(client: LanguageClient):
    uri = "untitled:changing.spec"
    text = (ROOT / "specs/simple_cnn.spec").read_text()
    assert not await open_document(client, uri, text)
    # Linear(10) -> Linear(0): an argument error, at the argument
    start = at(text, "10)", text.index("Linear(128)"))
    range_ = lsp.Range(start, lsp.Position(start.line, start.character + 2))
    diagnostics = await change_document(client, uri, range_, "0")
    edited = text.replace("Linear(10)", "Linear(0)")
    assert_reports(diagnostics, edited)
    assert diagnostics[0].range.start == start
    back = await change_document(client, uri, lsp.Range(start, lsp.Position(
        start.line, start.character + 1)), "10")
    assert not back
    # Broken again, then closed: its diagnostics are withdrawn
    assert await change_document(client, uri, range_, "0")
    client.text_document_did_close(lsp.DidCloseTextDocumentParams(
        lsp.TextDocumentIdentifier(uri=uri)))
    await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert not client.diagnostics[uri]


def rows_named(analysis, prefix: str):
    return [row for row in analysis.rows if row.name.startswith(prefix)]


async def hover(client, uri: str, where: lsp.Position) -> str:
    result = await client.text_document_hover_async(lsp.HoverParams(
        lsp.TextDocumentIdentifier(uri), where))
    assert result.contents.kind == lsp.MarkupKind.Markdown
    return result.contents.value


async def test_hover_on_a_layer(client: LanguageClient):
    path = ROOT / "specs/simple_cnn.spec"
    text = path.read_text()
    await open_document(client, path.as_uri(), text)
    analysis = analyze(parse(text))
    for row, call in ((analysis.rows[0], "Conv(16"), (rows_named(analysis, "linear1")[0],
                                                        "Linear(128)")):
        shown = await hover(client, path.as_uri(), at(text, call))
        assert f"**{row.name}**" in shown and f"`{row.layer}`" in shown
        assert f"output {format_shape(row.output)}" in shown
        assert f"{row.params:,} parameters" in shown and f"{row.macs:,} MACs" in shown


async def test_hover_on_a_definition_call_and_in_a_definition(client: LanguageClient):
    path = ROOT / "specs/zoo/resnet50.spec"
    text = path.read_text()
    await open_document(client, path.as_uri(), text)
    analysis = analyze(parse(text))
    # Bottleneck(64)*2 in layer1: the rows of both copies
    rows = rows_named(analysis, "layer1.bottleneck")
    shown = await hover(client, path.as_uri(), at(text, "Bottleneck(64)*2"))
    assert f"stands for {len(rows)} rows" in shown
    assert f"input {format_shape(rows[0].input)} → output {format_shape(rows[-1].output)}" \
        in shown
    assert f"{sum(r.params for r in rows):,} parameters" in shown
    assert f"{sum(r.macs for r in rows):,} MACs" in shown
    assert f"| {rows[0].name} | `{rows[0].layer}` | {format_shape(rows[0].output)} |" in shown
    # The last conv of Body: one row in each of the 16 bottlenecks, with their own shapes
    conv3 = [row for row in analysis.rows if row.name.endswith("body.conv3")]
    shown = await hover(client, path.as_uri(), at(text, "Conv(c*4, 1, bias=false)"))
    assert f"stands for {len(conv3)} rows, in {len(conv3)} places" in shown
    assert f"{sum(r.params for r in conv3):,} parameters" in shown
    assert f"| {conv3[1].name} | `{conv3[1].layer}` | {format_shape(conv3[1].output)} |" in shown


async def test_inlay_hints_give_each_lines_output(client: LanguageClient):
    for path, first_step, last_rows in (
            (ROOT / "specs/simple_cnn.spec", "Conv(16", ["maxpool1", "maxpool2", "linear2"]),
            (ROOT / "specs/zoo/resnet50.spec", "Conv(64, 7",
             ["maxpool", "layer1.", "layer2.", "layer3.", "layer4.", "linear"])):
        text = path.read_text()
        await open_document(client, path.as_uri(), text)
        lines = text.split("\n")
        hints = await client.text_document_inlay_hint_async(lsp.InlayHintParams(
            lsp.TextDocumentIdentifier(path.as_uri()),
            lsp.Range(lsp.Position(0, 0), lsp.Position(len(lines), 0))))
        analysis = analyze(parse(text))
        first = next(i for i, line in enumerate(lines) if line.startswith(first_step))
        network = [i for i in range(first, len(lines)) if lines[i].strip()]
        assert [h.position for h in hints] == \
            [lsp.Position(i, len(lines[i].rstrip())) for i in network]
        expected = [format_shape(rows_named(analysis, name)[-1].output) for name in last_rows]
        assert [h.label for h in hints] == expected
        assert all(h.kind == lsp.InlayHintKind.Type for h in hints)


async def completion_labels(client, uri: str, where: lsp.Position) -> list[str]:
    result = await client.text_document_completion_async(lsp.CompletionParams(
        lsp.TextDocumentIdentifier(uri), where))
    return [item.label for item in result.items]


async def test_completion_of_layers_and_keywords(client: LanguageClient):
    uri = "untitled:typing.spec"
    valid = "input 3x32x32\ndef Block(c, s=1) = [Conv(c, 3, s=s) -> ReLU]\nBlock(8)\n"
    await open_document(client, uri, valid)
    # Mid-edit the text does not parse; the definitions of its last version still complete.
    text = "input 3x32x32\ndef Block(c, s=1) = [Conv(c, 3, s=s) -> ReLU]\n" \
           "train(epochs=2, )\nConv(16, 3, p=1, ) -> Ma -> Block("
    lines = text.split("\n")
    await change_document(client, uri, lsp.Range(lsp.Position(0, 0), lsp.Position(3, 0)), text)
    # The word being typed after an arrow: every layer and the spec's definition
    labels = await completion_labels(client, uri, lsp.Position(3, lines[3].index(" -> B")))
    assert set(layer_names()) | {"Block"} <= set(labels)
    # Inside Conv's parentheses: its keywords but the one given, and the short aliases
    labels = await completion_labels(client, uri, lsp.Position(3, lines[3].index(", )") + 2))
    conv = {f.name for f in dataclasses.fields(layer_class("Conv"))}
    assert set(labels) == conv - {"padding"} | {"k", "s", "d", "g"}
    # A definition's parameters; train's settings but the one given
    labels = await completion_labels(client, uri, lsp.Position(3, len(lines[3])))
    assert labels == ["c", "s"]
    labels = await completion_labels(client, uri, lsp.Position(2, lines[2].index(")")))
    assert set(labels) == {f.name for f in dataclasses.fields(TrainConfig)} - {"epochs"}


async def test_formatting_is_fmts(client: LanguageClient):
    uri = "untitled:messy.spec"
    text = "input 1x28x28\nConv(16,3,p = 1)->ReLU ->   MaxPool( 2 )\n->Flatten->Linear(10)"
    await open_document(client, uri, text)
    edits = await client.text_document_formatting_async(lsp.DocumentFormattingParams(
        lsp.TextDocumentIdentifier(uri), lsp.FormattingOptions(4, True)))
    (edit,) = edits
    assert edit.new_text == format_spec(text)
    assert edit.range == lsp.Range(lsp.Position(0, 0),
                                   lsp.Position(2, len("->Flatten->Linear(10)")))
    canonical = ROOT / "specs/zoo/resnet50.spec"
    await open_document(client, canonical.as_uri(), canonical.read_text())
    assert await client.text_document_formatting_async(lsp.DocumentFormattingParams(
        lsp.TextDocumentIdentifier(canonical.as_uri()), lsp.FormattingOptions(4, True))) == ()
    await open_document(client, "untitled:broken.spec", BROKEN["syntax"])
    assert await client.text_document_formatting_async(lsp.DocumentFormattingParams(
        lsp.TextDocumentIdentifier("untitled:broken.spec"),
        lsp.FormattingOptions(4, True))) is None
