"""`archdsl lsp`: the language server, over stdio, on pygls. It keeps one SpecDocument per open
spec, made again on open and on every change (editor.py answers every question); this module
only translates between the protocol's positions and messages and the document's offsets.

Needs the `lsp` extra (pygls, lsprotocol); never imports torch.
"""
from __future__ import annotations

import re
from bisect import bisect_right
from urllib.parse import unquote, urlparse

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from . import __version__
from .editor import Completion, Diagnostic, SpecDocument

SOURCE = "archdsl"
_SEVERITY = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning}
_COMPLETION_KIND = {"layer": lsp.CompletionItemKind.Class,
                    "definition": lsp.CompletionItemKind.Function,
                    "argument": lsp.CompletionItemKind.Property,
                    "keyword": lsp.CompletionItemKind.Keyword,
                    "metric": lsp.CompletionItemKind.Variable}
# Completion pops up by itself where a call's arguments start and after an arrow.
TRIGGER_CHARACTERS = ["(", ",", ">", "["]
_LINE_END = re.compile(r"\r\n|\r|\n")  # the protocol's line ends, as the parser's


class Positions:
    """Offsets into a text <-> the protocol's (line, character), characters counted in the
    encoding agreed with the client (UTF-16 unless it offers another)."""

    def __init__(self, text: str, encoding: str = lsp.PositionEncodingKind.Utf16):
        self.text = text
        self.starts = [0] + [m.end() for m in _LINE_END.finditer(text)]
        self.encoding = encoding

    def _units(self, text: str) -> int:
        if self.encoding == lsp.PositionEncodingKind.Utf8:
            return len(text.encode("utf-8"))
        if self.encoding == lsp.PositionEncodingKind.Utf32:
            return len(text)
        return len(text.encode("utf-16-le")) // 2

    def position(self, offset: int) -> lsp.Position:
        line = bisect_right(self.starts, offset) - 1
        return lsp.Position(line, self._units(self.text[self.starts[line]:offset]))

    def range(self, start: int, end: int) -> lsp.Range:
        return lsp.Range(self.position(start), self.position(end))

    def offset(self, position: lsp.Position) -> int:
        if position.line >= len(self.starts):
            return len(self.text)
        start = self.starts[position.line]
        end = self.starts[position.line + 1] if position.line + 1 < len(self.starts) else \
            len(self.text)
        line = _LINE_END.sub("", self.text[start:end])
        offset, units = start, 0
        for character in line:
            if units >= position.character:
                break
            units += self._units(character)
            offset += 1
        return offset


def diagnostic(found: Diagnostic, positions: Positions) -> lsp.Diagnostic:
    return lsp.Diagnostic(range=positions.range(found.start, found.end), message=found.message,
                          severity=_SEVERITY[found.severity], code=found.code, source=SOURCE)


def completion_item(found: Completion, order: int) -> lsp.CompletionItem:
    return lsp.CompletionItem(
        label=found.label, kind=_COMPLETION_KIND[found.kind], detail=found.detail,
        documentation=lsp.MarkupContent(kind=lsp.MarkupKind.PlainText, value=found.documentation)
        if found.documentation else None,
        insert_text=found.insert_text, sort_text=f"{order:04d}")


def publishable(document: SpecDocument, uri: str, version: int | None,
                encoding: str = lsp.PositionEncodingKind.Utf16) -> lsp.PublishDiagnosticsParams:
    """The diagnostics of one version of a document, as the server sends them."""
    positions = Positions(document.text, encoding)
    return lsp.PublishDiagnosticsParams(
        uri=uri, diagnostics=[diagnostic(d, positions) for d in document.diagnostics],
        version=version)


def filename(uri: str) -> str:
    """What error messages call the document: its path for a file, else the URI."""
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


class ArchDSLServer(LanguageServer):
    def __init__(self):
        super().__init__(SOURCE, __version__,
                         text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental)
        self.documents: dict[str, SpecDocument] = {}

    @property
    def encoding(self) -> str:
        return self.workspace.position_encoding or lsp.PositionEncodingKind.Utf16

    def refresh(self, uri: str) -> None:
        """Analyse the document's current text again and publish what it finds."""
        text_document = self.workspace.get_text_document(uri)
        document = SpecDocument(text_document.source, filename(uri), self.documents.get(uri))
        self.documents[uri] = document
        self.text_document_publish_diagnostics(
            publishable(document, uri, text_document.version, self.encoding))

    def located(self, uri: str, position: lsp.Position | None = None):
        """(document, positions, offset of `position`) for a request."""
        document = self.documents.get(uri)
        if document is None:
            self.refresh(uri)
            document = self.documents[uri]
        positions = Positions(document.text, self.encoding)
        return document, positions, positions.offset(position) if position else None


def make_server() -> ArchDSLServer:
    server = ArchDSLServer()

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: ArchDSLServer, params: lsp.DidOpenTextDocumentParams):
        ls.refresh(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: ArchDSLServer, params: lsp.DidChangeTextDocumentParams):
        ls.refresh(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: ArchDSLServer, params: lsp.DidCloseTextDocumentParams):
        ls.documents.pop(params.text_document.uri, None)
        ls.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: ArchDSLServer, params: lsp.HoverParams):
        document, positions, offset = ls.located(params.text_document.uri, params.position)
        found = document.hover(offset)
        if found is None:
            return None
        return lsp.Hover(
            contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=found.markdown),
            range=positions.range(found.start, found.end))

    @server.feature(lsp.TEXT_DOCUMENT_INLAY_HINT)
    def inlay_hints(ls: ArchDSLServer, params: lsp.InlayHintParams):
        document, positions, _ = ls.located(params.text_document.uri)
        start, end = positions.offset(params.range.start), positions.offset(params.range.end)
        return [lsp.InlayHint(position=positions.position(h.offset), label=h.label,
                              kind=lsp.InlayHintKind.Type, tooltip=h.tooltip,
                              padding_left=True)
                for h in document.inlay_hints() if start <= h.offset <= end]

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION,
                    lsp.CompletionOptions(trigger_characters=TRIGGER_CHARACTERS))
    def completion(ls: ArchDSLServer, params: lsp.CompletionParams):
        document, _, offset = ls.located(params.text_document.uri, params.position)
        found = document.completions(offset)
        return lsp.CompletionList(is_incomplete=False,
                                  items=[completion_item(c, i) for i, c in enumerate(found)])

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls: ArchDSLServer, params: lsp.DocumentFormattingParams):
        document, positions, _ = ls.located(params.text_document.uri)
        formatted = document.formatted()
        if formatted is None or formatted == document.text:
            return [] if formatted is not None else None
        return [lsp.TextEdit(range=positions.range(0, len(document.text)), new_text=formatted)]

    return server


def serve() -> None:
    """Serve over standard input and output until the client says exit."""
    make_server().start_io()
