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

    @classmethod
    def at(cls, text: str, offset: int, width: int = 1) -> "Span":
        """`width` characters at `offset` in `text`; lines end at "\\n" only, as in lark."""
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        return cls(line, column, line, column + width, offset, offset + width)


START = Span(1, 1, 1, 2, 0, 1)


def call_site(text: str, span: Span) -> str:
    """A note's words for where a definition was called: `Block(64) at 3:38`."""
    words = " ".join(text[span.start:span.end].split())
    return f"{words if len(words) <= 40 else words[:39] + '…'} at {span.line}:{span.column}"


class ArchDSLError(Exception):
    """Bad input: a spec, an argument or a file. Rendered as `file:line:col: message` with a caret."""

    kind = "error"
    label = ""  # after the position: errors say nothing more, warnings say `warning: `

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.notes: list[str] = []  # where the span's text was reached from, innermost first
        self.source: str | None = None  # the text, where the raiser has it and the caller may not
        self.warnings: tuple[ArchDSLWarning, ...] = ()  # found before it, shown before it

    def at(self, span: Span | None) -> "ArchDSLError":
        """Give the error a position if it has none yet; inner code knows the what, callers the where."""
        if self.span is None:
            self.span = span
        return self

    def render(self, text: str | None, filename: str = "<spec>") -> str:
        span = self.span or START
        head = f"{filename}:{span.line}:{span.column}: {self.label}{self.message}"
        lines = [head]
        text = self.source if text is None else text
        if text is not None:
            # Spans count from after a byte-order mark (the parser drops it), and so does the echo.
            text = text.removeprefix("\ufeff")
            # Lines end at "\n" only, as lark counts them (splitlines() also splits at \f, \u2028…).
            source_lines = text.split("\n")
            if span.line <= len(source_lines):
                source_line = source_lines[span.line - 1].rstrip("\r")
                width = (span.end_column - span.column) if span.end_line == span.line else \
                    len(source_line) - span.column + 1
                # The line's tabs stay in the caret's indent, to keep the caret under its column.
                indent = "".join(c if c == "\t" else " " for c in source_line[:span.column - 1])
                lines.append(f"  {source_line}")
                lines.append(f"  {indent.ljust(span.column - 1)}" + "^" * max(1, width))
        lines += [f"note: {note}" for note in self.notes]
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render(None)


class ArchDSLWarning(ArchDSLError):
    """A spec that works but almost surely means something else (PyTorch's argument order, a
    batch axis in the input). Never raised: analysis and training return warnings as data, and
    the CLI prints them, `file:line:col: warning: …` with the caret, without changing the exit
    code. Without a span (a shape given on the command line), just `warning: …`."""

    kind = "warning"
    label = "warning: "

    def render(self, text: str | None = None, filename: str = "<spec>") -> str:
        if self.span is not None:
            return super().render(text, filename)
        return f"warning: {self.message}" + (f"\nhint: {self.hint}" if self.hint else "")


class RunError(ArchDSLError):
    """A failure of a run rather than of the spec's text (data, device, training): no position."""

    exit_code = 2

    def render(self, text: str | None = None, filename: str = "<spec>") -> str:
        if self.span is not None:
            return super().render(text, filename)
        return f"error: {self.message}" + (f"\nhint: {self.hint}" if self.hint else "")


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
