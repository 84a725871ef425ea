"""Every error archdsl raises on bad input: one base class, each carrying a source span."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A region of a spec's text; lines and columns count from 1, offsets from 0."""

    line: int
    column: int
    end_line: int
    end_column: int
    start: int
    end: int

    @classmethod
    def of(cls, meta) -> "Span":
        """The span of a lark tree's meta or of a lark token."""
        return cls(meta.line, meta.column, meta.end_line, meta.end_column,
                   meta.start_pos, meta.end_pos)


START = Span(1, 1, 1, 2, 0, 1)


class ArchDSLError(Exception):
    """Bad input: a spec, an argument or a file. Rendered as `file:line:col: message` with a caret."""

    kind = "error"

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.source: str | None = None  # the text, where the raiser has it and the caller may not

    def at(self, span: Span | None) -> "ArchDSLError":
        """Give the error a position if it has none yet; inner code knows the what, callers the where."""
        if self.span is None:
            self.span = span
        return self

    def render(self, text: str | None, filename: str = "<spec>") -> str:
        span = self.span or START
        head = f"{filename}:{span.line}:{span.column}: {self.message}"
        lines = [head]
        text = self.source if text is None else text
        if text is not None:
            source_lines = text.splitlines() or [""]
            if span.line <= len(source_lines):
                source_line = source_lines[span.line - 1]
                width = (span.end_column - span.column) if span.end_line == span.line else \
                    len(source_line) - span.column + 1
                lines.append(f"  {source_line}")
                lines.append("  " + " " * (span.column - 1) + "^" * max(1, width))
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render(None)


class SpecFileError(ArchDSLError):
    """The spec cannot be read: missing, not UTF-8, or empty."""


class SpecSyntaxError(ArchDSLError):
    """The text does not follow the grammar."""


class UnknownLayerError(ArchDSLError):
    """A call names no registered layer."""


class ArgumentError(ArchDSLError):
    """A layer's arguments are missing, unknown, duplicated or of the wrong type or range.

    `argument` names the offending argument so that binding can point at it in the source.
    """

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None,
                 argument: str | None = None):
        super().__init__(message, span, hint)
        self.argument = argument


class ShapeError(ArchDSLError):
    """A layer cannot take the shape that reaches it."""


class InputShapeError(ArchDSLError):
    """The network's input shape is missing or malformed."""
