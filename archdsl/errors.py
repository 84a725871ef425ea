"""Every error archdsl raises on bad input: one base class, each carrying a source span."""
from __future__ import annotations

import re
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
        head = f"{printable(filename)}:{span.line}:{span.column}: {self.label}" \
               f"{printable(self.message)}"
        lines = [head]
        text = self.source if text is None else text
        if text is not None:
            # Spans count from after a byte-order mark (the parser drops it), and so does the echo.
            text = text.removeprefix("\ufeff")
            # Lines end at LF, CRLF or a CR alone, as the parser counts them (splitlines() also
            # splits at \f, \u2028…).
            source_lines = re.split(r"\r\n|\r|\n", text)
            if span.line <= len(source_lines):
                lines += _excerpt(source_lines[span.line - 1], span)
        notes = self.notes if len(self.notes) <= MAX_NOTES else self.notes[:MAX_NOTES - 2] + \
            [f"… {len(self.notes) - MAX_NOTES + 1} more"] + self.notes[-1:]
        lines += [f"note: {printable(note)}" for note in notes]
        if self.hint:
            lines.append(f"hint: {printable(self.hint)}")
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
        return f"warning: {printable(self.message)}" + \
            (f"\nhint: {printable(self.hint)}" if self.hint else "")


MAX_NOTES = 10  # a chain of 100 definition calls needs no 100 lines to say where it came from
SHOWN_COLUMNS = 200  # of a longer line, the part around the caret


def printable(text: str) -> str:
    """Control and format characters (escape sequences, bidirectional overrides) escaped, so
    that a spec's text cannot drive the terminal; tabs stay, for the caret's alignment."""
    return _UNPRINTABLE.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f"
                          "\u2028-\u202e\u2060-\u206f\ufff9-\ufffb]")


def _excerpt(line: str, span: Span) -> list[str]:
    """The line, escaped, and a caret under the span; of a long line, a window around it."""
    line = line.rstrip("\r")
    at = span.column - 1
    width = max(1, (span.end_column - span.column) if span.end_line == span.line else
                len(line) - at)
    before = printable(line[:at]) + " " * max(0, at - len(line))
    marked, after = printable(line[at:at + width]), printable(line[at + width:])
    full = before + marked + after
    shown, lead, carets = full, before, max(1, len(marked))
    if len(full) > SHOWN_COLUMNS:
        start = max(0, len(before) - SHOWN_COLUMNS // 2)
        end = start + SHOWN_COLUMNS
        ellipsis = "…" if start else ""
        shown = ellipsis + full[start:end] + ("…" if end < len(full) else "")
        lead, carets = ellipsis + before[start:], max(1, min(carets, end - len(before)))
    # The line's tabs stay in the caret's indent, to keep the caret under its column.
    indent = "".join(c if c == "\t" else " " for c in lead)
    return [f"  {shown}", f"  {indent}" + "^" * carets]


class RunError(ArchDSLError):
    """A failure of a run rather than of the spec's text (data, device, training): no position."""

    exit_code = 2

    def render(self, text: str | None = None, filename: str = "<spec>") -> str:
        if self.span is not None:
            return super().render(text, filename)
        return f"error: {printable(self.message)}" + \
            (f"\nhint: {printable(self.hint)}" if self.hint else "")


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


def first_line(error: BaseException) -> str:
    """An exception's message in one line, for a report of what failed where."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


class TargetError(RunError):
    """An import target (torchvision:NAME, path/to/file.py:NAME, package.module:NAME) that
    cannot be loaded, or whose object gives no nn.Module."""


class UnsupportedModelError(RunError):
    """A module that `archdsl import` cannot write as a spec. `unsupported` lists every module
    or function call without an archdsl counterpart, each with where it is called; the message
    lists them all."""

    def __init__(self, message: str, unsupported: tuple[str, ...] = (), hint: str | None = None):
        super().__init__(message, hint=hint)
        self.unsupported = unsupported


class UntraceableModelError(UnsupportedModelError):
    """torch.fx cannot trace the module's forward (control flow that depends on the data), or
    the forward fails on the input shape given."""
