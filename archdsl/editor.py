"""A spec as an editor sees it: its diagnostics, and at a place in its text the hover, the
completions, the inlay hints, and the text in canonical layout. Plain data with character
offsets into the text as given; the language server (lsp.py) speaks the protocol. Like `check`,
it never imports torch.

A document is analysed once per version of its text (SpecDocument(text)); every question after
that reads the stored parse and analysis.
"""
from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass

from lark.exceptions import LarkError

from .analysis import Analysis, analyze
from .budget import METRICS, check_budget, failures
from .errors import START, ArchDSLError, Span
from .fmt import format_spec, in_file_style
from .ir import Chain, Definition, Group, Named, Node, Parallel, Repeat, Spec
from .layers import format_shape, layer_class, layer_names
from .layers.arguments import ALIASES, KEYWORDS, literal
from .parser import _parser, parse
from .train.config import TrainConfig

MAX_HOVER_ROWS = 12  # a hover over a definition call lists its first rows, then says how many more
HOVER_TEXT = 60  # characters of a step's text in a hover's title
# Tokens after which no layer goes: a name is given (def, as, for), a count or a value follows.
_NO_LAYER_AFTER = {"DEF", "_AS", "FOR", "INPUT", "STAR", "EQUAL", "COMPARATOR", "MINUS"}


@dataclass(frozen=True)
class Diagnostic:
    """An error or warning over text[start:end]; `message` has its notes and hint, as `check`
    prints them."""

    start: int
    end: int
    severity: str  # error | warning
    message: str
    code: str  # the error's class: ShapeError, ArgumentError, …


@dataclass(frozen=True)
class Hover:
    start: int
    end: int
    markdown: str


@dataclass(frozen=True)
class InlayHint:
    offset: int  # where the label goes: the end of a line of the network
    label: str
    tooltip: str


@dataclass(frozen=True)
class Completion:
    label: str
    kind: str  # layer | definition | argument | keyword | metric
    detail: str
    documentation: str = ""
    insert_text: str | None = None


class SpecDocument:
    """One version of a spec's text, analysed as `check` would: every error and warning it
    finds, and the parse and analysis where they succeed. `previous` is the document's last
    version: its definitions still complete while the text is broken mid-edit."""

    def __init__(self, text: str, filename: str = "<spec>",
                 previous: "SpecDocument | None" = None):
        self.text = text
        # Spans count from after a byte-order mark; offsets here count in the text as given.
        self._shift = 1 if text.startswith("\ufeff") else 0
        self.spec: Spec | None = None
        self.analysis: Analysis | None = None
        self.diagnostics: list[Diagnostic] = []
        try:
            self.spec = parse(text, filename)
        except ArchDSLError as error:
            self._report(error)
        if self.spec is not None:
            self._analyze(self.spec)
        self.definitions: tuple[Definition, ...] = (
            self.spec.definitions if self.spec is not None else
            previous.definitions if previous is not None else ())

    def _analyze(self, spec: Spec) -> None:
        try:
            TrainConfig.from_spec(spec)  # a bad train(...) block is a spec error, as in check
        except ArchDSLError as error:
            self._report(error, spec.training.span)
        try:
            self.analysis = analyze(spec)
        except ArchDSLError as error:
            self._report(error)
            return
        for warning in self.analysis.warnings:
            self._report(warning)
        for failure in failures(check_budget(self.analysis)):
            self._report(failure)

    def _report(self, error: ArchDSLError, fallback: Span | None = None) -> None:
        for warning in error.warnings:  # found before the error, shown before it
            self._report(warning)
        span = error.span or fallback or START
        lines = [error.message] + [f"note: {note}" for note in error.notes]
        if error.hint:
            lines.append(f"hint: {error.hint}")
        start, end = self._offsets(span)
        self.diagnostics.append(Diagnostic(start, end, error.kind, "\n".join(lines),
                                           type(error).__name__))

    def _offsets(self, span: Span) -> tuple[int, int]:
        start = min(span.start + self._shift, len(self.text))
        return start, min(max(span.end + self._shift, start), len(self.text))

    # --- hover -----------------------------------------------------------------------------

    def hover(self, offset: int) -> Hover | None:
        """The rows of the innermost step at `offset` (a layer call, a definition call, a
        group, a repeat, a branch): the resolved layer, its output shape, parameters and MACs;
        for a step that stands for several rows, their totals and the first rows."""
        if self.analysis is None:
            return None
        at = offset - self._shift
        steps = [s for s in _steps(self.spec) if s.span.start <= at < s.span.end]
        if not steps:
            return None
        step = min(steps, key=lambda s: s.span.end - s.span.start)
        indices = [i for i, node in enumerate(self.analysis.nodes)
                   if any(_within(span, step.span)
                          for span in (node.span, *node.expanded_from))]
        if not indices:
            return None
        start, end = self._offsets(step.span)
        return Hover(start, end, self._describe(step, indices))

    def _describe(self, step, indices: list[int]) -> str:
        nodes, rows = self.analysis.nodes, self.analysis.rows
        words = " ".join(self.spec.text[step.span.start:step.span.end].split())
        title = f"`{words if len(words) <= HOVER_TEXT else words[:HOVER_TEXT - 1] + '…'}`"
        if len(indices) == 1:
            row = rows[indices[0]]
            return (f"{title}: **{row.name}**, `{row.layer}`\n\n"
                    f"output {format_shape(row.output)} · {row.params:,} parameters · "
                    f"{row.macs:,} MACs")
        uses = _uses(indices, nodes, step.span)
        selected = [rows[i] for i in indices]
        params, macs = sum(r.params for r in selected), sum(r.macs for r in selected)
        if len(uses) == 1:
            first, last = rows[uses[0][0]], rows[uses[0][-1]]
            where = (f"input {format_shape(first.input)} → output "
                     f"{format_shape(last.output)}")
        else:
            where = f"in {len(uses)} places (a definition's body is expanded at every call)"
        lines = [f"{title} stands for {len(indices)} rows, {where}: {params:,} parameters, "
                 f"{macs:,} MACs", "",
                 "| row | layer | output | parameters | MACs |", "|---|---|---|--:|--:|"]
        lines += [f"| {r.name} | `{r.layer}` | {format_shape(r.output)} | {r.params:,} | "
                  f"{r.macs:,} |" for r in selected[:MAX_HOVER_ROWS]]
        if len(selected) > MAX_HOVER_ROWS:
            lines += ["", f"… and {len(selected) - MAX_HOVER_ROWS} more rows "
                          f"(`archdsl check` lists them all)"]
        return "\n".join(lines)

    # --- inlay hints -----------------------------------------------------------------------

    def inlay_hints(self) -> list[InlayHint]:
        """The output shape at the end of each line of the network: of the last row whose step
        ends on that line. A definition's rows count at the line of their call."""
        if self.analysis is None:
            return []
        body = self.spec.body.span
        last: dict[int, int] = {}  # line -> index of the row
        for index, node in enumerate(self.analysis.nodes):
            anchor = node.expanded_from[0] if node.expanded_from else node.span
            if _within(anchor, body):
                last[anchor.end_line] = index
        lines = self.spec.text.split("\n")  # the parsed text: its lines end at LF only
        hints = []
        for line, index in sorted(last.items()):
            row = self.analysis.rows[index]
            start = sum(len(text) + 1 for text in lines[:line - 1])
            offset = start + len(lines[line - 1].rstrip())
            hints.append(InlayHint(offset + self._shift, format_shape(row.output),
                                   f"{row.name}: {row.layer}, output {format_shape(row.output)}"))
        return hints

    # --- completion ------------------------------------------------------------------------

    def completions(self, offset: int) -> list[Completion]:
        """At `offset`: inside a call's parentheses, where an argument starts, its keywords;
        after `assert`, the metrics; elsewhere, the layers and the spec's definitions."""
        tokens = _tokens(self.text[self._shift:offset])
        if tokens and tokens[-1].type == "NAME" and tokens[-1].end_pos == offset - self._shift:
            tokens.pop()  # the word being typed: the editor filters by it
        previous = tokens[-1].type if tokens else None
        if previous == "ASSERT":
            return [Completion(name, "metric", words) for name, words in METRICS.items()]
        opened = _innermost_open(tokens)
        if opened is None or tokens[opened].type == "LSQB":
            if previous in _NO_LAYER_AFTER:
                return []  # a name, a count or a declaration's value comes here
            # Declarations come before the network: no keyword once an arrow has been written.
            return self._layer_completions(
                keywords=opened is None and not any(t.value == "->" for t in tokens))
        callee = tokens[opened - 1] if opened > 0 else None
        if callee is None or callee.type not in ("NAME", "TRAIN") or previous not in (
                "LPAR", "COMMA") or (opened > 1 and tokens[opened - 2].type == "DEF"):
            return []
        given = {tokens[i - 1].value for i in range(opened + 2, len(tokens))
                 if tokens[i].type == "EQUAL" and tokens[i - 1].type == "NAME"}
        found = self._argument_completions(str(callee))
        labels = {c.label for c in found}
        given |= {ALIASES[word] for word in given if ALIASES.get(word) in labels}
        given |= {short for short, long in ALIASES.items() if long in given}
        return [c for c in found if c.label not in given]

    def _layer_completions(self, keywords: bool) -> list[Completion]:
        found = [Completion(name, "layer", layer_class(name).usage(),
                            inspect.getdoc(layer_class(name)) or "")
                 for name in layer_names()]
        found += [Completion(d.name, "definition", _signature(d), "a definition of this spec")
                  for d in self.definitions]
        if keywords:
            found += [Completion(word, "keyword", example) for word, example in KEYWORDS.items()]
        return found

    def _argument_completions(self, callee: str) -> list[Completion]:
        definition = next((d for d in self.definitions if d.name == callee), None)
        if definition is not None:
            return [Completion(p.name, "argument", _signature(definition),
                               insert_text=f"{p.name}=") for p in definition.parameters]
        if callee == "train":
            cls, usage = TrainConfig, "train(…)"
        elif callee in layer_names():
            cls = layer_class(callee)
            usage = cls.usage()
        else:
            return []
        # Positional arguments first, in their order; `frozen`, which every layer takes, last.
        fields = {f.name: f for f in sorted(dataclasses.fields(cls), key=lambda f: f.kw_only)}
        found = [Completion(name, "argument", _field_detail(f), usage, f"{name}=")
                 for name, f in fields.items()]
        found += [Completion(short, "argument", f"short for {long}", usage, f"{short}=")
                  for short, long in ALIASES.items() if long in fields and short not in fields]
        return found

    # --- formatting ------------------------------------------------------------------------

    def formatted(self) -> str | None:
        """The text in canonical layout (`archdsl fmt`), in the text's own line endings; None
        where it does not parse (the diagnostics say why)."""
        if self.spec is None:
            return None
        return in_file_style(format_spec(self.text), self.text)


def _within(inner: Span, outer: Span) -> bool:
    return outer.start <= inner.start and inner.end <= outer.end


def _steps(spec: Spec):
    """Every step of the network and of the definitions that may be hovered: calls, groups,
    repeats, named steps, branches, and whole definitions (the rows of all their calls)."""
    pending = [spec.body, *spec.definitions]
    while pending:
        step = pending.pop()
        if isinstance(step, Chain):
            pending += step.steps
            continue
        yield step
        if isinstance(step, (Group, Repeat, Named, Definition)):
            pending.append(step.body)
        elif isinstance(step, Parallel):
            pending += step.branches


def _uses(indices: list[int], nodes: tuple[Node, ...], span: Span) -> list[list[int]]:
    """The rows of a step split into its uses: runs of consecutive rows reached through the
    same calls from outside the step (a definition's body is used once per call)."""
    def reached_by(node: Node):
        outer = []
        for site in node.expanded_from:  # outermost first
            if _within(site, span):
                break
            outer.append(site)
        return tuple(outer)

    uses: list[list[int]] = []
    for index in indices:
        if uses and uses[-1][-1] == index - 1 and \
                reached_by(nodes[index]) == reached_by(nodes[uses[-1][-1]]):
            uses[-1].append(index)
        else:
            uses.append([index])
    return uses


def _tokens(text: str) -> list:
    """The grammar's tokens of the text before the cursor, up to the first that does not lex (a
    string being typed): text mid-edit rarely parses, but it lexes."""
    found = []
    try:
        for token in _parser().lex(text, dont_ignore=False):
            found.append(token)
    except LarkError:
        pass
    return found


def _innermost_open(tokens) -> int | None:
    """The index of the innermost bracket or parenthesis left open, if any."""
    stack = []
    for index, token in enumerate(tokens):
        if token.type in ("LPAR", "LSQB"):
            stack.append(index)
        elif token.type in ("RPAR", "RSQB") and stack:
            stack.pop()
    return stack[-1] if stack else None


def _signature(definition: Definition) -> str:
    parameters = ", ".join(p.name + ("=…" if p.has_default else "")
                           for p in definition.parameters)
    return f"def {definition.name}({parameters})" if definition.parameters else \
        f"def {definition.name}"


def _field_detail(field: dataclasses.Field) -> str:
    if field.default is dataclasses.MISSING:
        return f"{field.name} (required)"
    return f"{field.name}={literal(field.default)}"
