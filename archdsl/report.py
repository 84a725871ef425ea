"""Rendering only: analyses and comparisons as a terminal table, markdown, HTML or JSON.

HTML is what a notebook shows (the `_repr_html_` of Analysis, Comparison, Explanation, Sweep):
the same rows and cells as the terminal's table, laid out by tabulate's HTML writer.
"""
from __future__ import annotations

import html
import json
import os
from typing import TYPE_CHECKING

from .analysis import SCHEMA, Analysis
from .layers import format_shape

if TYPE_CHECKING:
    from .compare import Comparison

MACS_NOTE = "multiply-accumulates of conv and linear layers per example (torchvision's convention)"
_STYLE = {"table": "simple", "markdown": "github", "html": "unsafehtml"}  # cells escaped here


def tabulate(*args, **kwargs) -> str:
    # Imported on first use: importing tabulate (which reads its package metadata) is a tenth
    # of `archdsl check`'s start-up, and JSON reports never use it.
    from tabulate import tabulate as render
    return render(*args, **kwargs)


def _table(rows, fmt: str, headers=(), colalign=None, plain: str = "plain") -> str:
    """A table in `fmt`'s layout; without headers in text, `plain` (tabulate's borderless)."""
    if fmt == "html":
        rows = [[_cell_html(cell) for cell in row] for row in rows]
        headers = [html.escape(str(h)) for h in headers]
    style = _STYLE[fmt] if headers or fmt == "html" else plain
    table = tabulate(rows, headers=headers, colalign=colalign, tablefmt=style)
    if fmt == "html":  # tabulate marks right-aligned cells only; notebooks align right by default
        table = table.replace("<td>", '<td style="text-align: left;">')\
            .replace("<th>", '<th style="text-align: left;">')
    return table


def _cell_html(cell) -> str:
    """A cell's text escaped; a cell of several lines (explain's output sizes) keeps them."""
    return "<br>".join(html.escape(line) for line in str(cell).split("\n"))


def _title(text: str, fmt: str) -> str:
    return {"markdown": f"### {text}", "html": f"<p><strong>{html.escape(text)}</strong></p>"}\
        .get(fmt, text)


def _document(parts: list[str], fmt: str) -> str:
    """The parts of a report: blank lines between them, or for HTML one block."""
    if fmt == "html":
        return '<div class="archdsl">\n' + "\n".join(parts) + "\n</div>"
    return "\n\n".join(parts)


def _paragraph(text: str, fmt: str) -> str:
    return f"<p>{html.escape(text)}</p>" if fmt == "html" else text


def _preformatted(text: str, fmt: str) -> str:
    """Text laid out in columns (an error's caret under its column), kept so in HTML."""
    return f"<pre>{html.escape(text)}</pre>" if fmt == "html" else text


def render_analysis(analysis: Analysis, fmt: str) -> str:
    """`check`'s table and totals. In HTML, which is all a notebook shows, also the warnings
    that the command line prints to standard error, each with its caret."""
    if fmt == "json":
        return json.dumps(analysis.to_dict(), indent=2, ensure_ascii=False)
    layers = _table(
        [(r.name, r.layer, format_shape(r.output), f"{r.params:,}", f"{r.macs:,}")
         for r in analysis.rows], fmt,
        headers=("name", "layer", "output", "params", "MACs"),
        colalign=("left", "left", "left", "right", "right"))
    t = analysis.totals
    totals = [
        ("parameters", f"{t.params:,}",
         f"trainable {t.trainable:,}, non-trainable {t.non_trainable:,}"),
        ("· weights", f"{t.weights:,}", ""),
        ("· biases", f"{t.biases:,}", ""),
        ("buffers", f"{t.buffers:,}", "running statistics and other non-parameter state"),
        ("MACs", f"{t.macs:,}", MACS_NOTE),
        ("parameter memory", human_bytes(t.param_bytes), "float32"),
        ("activation memory", human_bytes(t.activation_bytes),
         f"forward outputs of every layer, batch {t.batch}, float32"),
    ]
    title = (f"{analysis.name}: input {format_shape(analysis.input)} → "
             f"output {format_shape(analysis.output)}")
    totals_table = _table(totals, fmt, headers=("total", "value", "note") if fmt == "markdown"
                          else (), colalign=("left", "right", "left"))
    parts = [_title(title, fmt), layers, totals_table]
    if fmt == "html" and analysis.warnings:
        text = analysis.spec.text if analysis.spec else None
        parts.append(_preformatted("\n".join(w.render(text, analysis.name)
                                             for w in analysis.warnings), fmt))
    return _document(parts, fmt)


def render_comparison(entries: Comparison, fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"schema": "archdsl.comparison/1", "analysis_schema": SCHEMA,
                           "specs": [_entry_dict(e) for e in entries]},
                          indent=2, ensure_ascii=False)
    types = list(dict.fromkeys(t for e in entries for t in e.weights_by_type))
    rows = [
        ("input", *(format_shape(e.analysis.input) for e in entries)),
        ("output", *(format_shape(e.analysis.output) for e in entries)),
        ("depth (conv + linear layers)", *(e.analysis.totals.depth for e in entries)),
        ("weights", *(f"{e.analysis.totals.weights:,}" for e in entries)),
        *((f"· in {kind} layers", *(f"{e.weights_by_type.get(kind, 0):,}" for e in entries))
          for kind in types),
        ("biases", *(f"{e.analysis.totals.biases:,}" for e in entries)),
        ("parameters", *(f"{e.analysis.totals.params:,}" for e in entries)),
        ("· ratio to first", *(f"{e.params_ratio:.3g}×" for e in entries)),
        ("MACs", *(f"{e.analysis.totals.macs:,}" for e in entries)),
        ("· ratio to first", *("—" if e.macs_ratio is None else f"{e.macs_ratio:.3g}×"
                               for e in entries)),
        ("parameter memory", *(human_bytes(e.analysis.totals.param_bytes) for e in entries)),
        (f"activation memory (batch {entries[0].analysis.totals.batch})",
         *(human_bytes(e.analysis.totals.activation_bytes) for e in entries)),
    ]
    headers = ("", *(_short_name(e.analysis.name) for e in entries))
    table = _table(rows, fmt, headers=headers, colalign=("left", *("right" for _ in entries)))
    return _document([table, _paragraph(f"MACs: {MACS_NOTE}.", fmt)], fmt)


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _short_name(name: str) -> str:
    base = os.path.basename(name)
    return base[:-5] if base.endswith(".spec") else base


def _entry_dict(entry) -> dict:
    data = entry.analysis.to_dict()
    return {"name": data["name"], "input": data["input"], "output": data["output"],
            "totals": data["totals"], "weights_by_type": entry.weights_by_type,
            "params_ratio": entry.params_ratio, "macs_ratio": entry.macs_ratio}


def render_evaluation(result: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result, indent=2, ensure_ascii=False)
    style = _STYLE[fmt]
    head = (f"{result['dataset']} test split: accuracy {result['accuracy']:.2%} on "
            f"{result['examples']:,} images (loss {result['loss']:.4f}), "
            f"checkpoint {result['checkpoint']} (epoch {result['epoch']}"
            f"{', its EMA weights' if result.get('weights') == 'ema' else ''})")
    per_class = tabulate([(name, f"{acc:.2%}") for name, acc in
                          zip(result["classes"], result["per_class"])],
                         headers=("class", "accuracy"), tablefmt=style, colalign=("left", "right"))
    short = [str(i) for i in range(len(result["classes"]))]
    confusion = tabulate([(f"{i} {name}", *row) for i, (name, row) in
                          enumerate(zip(result["classes"], result["confusion"]))],
                         headers=("true \\ predicted", *short), tablefmt=style)
    return f"{head}\n\n{per_class}\n\n{confusion}"


def render_check(analysis: Analysis, budget: list, fmt: str, memory=None,
                 fit: int | None = None) -> str:
    """`check`'s output: the analysis; the memory of a training step (a memory.TrainingMemory)
    where asked for, at the largest batch that fits in `fit` bytes where given; then the spec's
    assertions (BudgetResults), if any."""
    if fmt == "json":
        data = analysis.to_dict()
        if memory is not None:
            data["memory"] = memory.to_dict()
        if fit is not None:
            data["fit"] = {"budget": fit,
                           "batch": memory.batch if memory.total <= fit else None}
        if budget:
            data["budget"] = [result.to_dict() for result in budget]
        return json.dumps(data, indent=2, ensure_ascii=False)
    parts = [render_analysis(analysis, fmt)]
    if fmt == "html":  # one block: the analysis's, with the rest inside it
        parts = [parts[0].removesuffix("\n</div>")]
    if memory is not None:
        parts += [_title(_memory_title(memory, fit), fmt), _memory_table(memory, fmt)]
    if budget:
        rows = [("ok" if r.passed else "FAILED", r.statement, f"{r.value:,}",
                 f"line {r.assertion.span.line}") for r in budget]
        failed = sum(not r.passed for r in budget)
        parts += [_title(f"budget: {len(budget) - failed} of {len(budget)} assertions hold", fmt),
                  _table(rows, fmt, headers=("", "assertion", "value", "where")
                         if fmt == "markdown" else (),
                         colalign=("left", "left", "right", "left"))]
    if fmt == "html":
        return "\n".join(parts) + "\n</div>"
    return "\n\n".join(parts)


def _memory_title(memory, fit: int | None) -> str:
    precision = "float32" if memory.precision == "float32" else f"{memory.precision} autocast"
    title = f"training memory at batch {memory.batch:,}, {precision}, {memory.optimizer_label}"
    if fit is None:
        return title
    if memory.total > fit:
        return f"{title}: not even one example fits in {human_bytes(fit)}"
    return f"{title}: the largest batch that fits in {human_bytes(fit)}"


def _memory_table(memory, fmt: str) -> str:
    copies = memory.optimizer_state - memory.step_counters
    state = (f"{copies // max(1, memory.gradients)} cop"
             f"{'y' if copies == memory.gradients else 'ies'} of the trainable parameters"
             if copies else "none")
    if memory.step_counters:
        state += f", and {memory.step_counters // 4:,} step counters (kept on the CPU)"
    rows = [
        ("parameters", human_bytes(memory.parameters), f"{memory.parameters:,} B"),
        ("buffers", human_bytes(memory.buffers), "running statistics"),
        ("gradients", human_bytes(memory.gradients), "one per trainable parameter"),
        ("optimizer state", human_bytes(memory.optimizer_state),
         f"{memory.optimizer_label}: {state}"),
        ("activations", human_bytes(memory.activations),
         f"what autograd keeps for backward, {memory.activations:,} B"),
        ("total", human_bytes(memory.total), f"{memory.total:,} B"),
        ("inference peak", human_bytes(memory.inference_peak),
         "parameters, buffers and the most activations alive at once, without grad, float32"),
    ]
    return _table(rows, fmt, headers=("memory", "bytes", "note") if fmt == "markdown" else (),
                  colalign=("left", "right", "left"))


def render_explanation(explanation, fmt: str) -> str:
    """`explain`: per layer the output size's formula, parameters, MACs, receptive field."""
    if fmt == "json":
        return json.dumps(explanation.to_dict(), indent=2, ensure_ascii=False)
    title = (f"{explanation.name}: input {format_shape(explanation.input)} → "
             f"output {format_shape(explanation.output)}")
    if fmt in ("markdown", "html"):
        lines = "<br>" if fmt == "markdown" else "\n"  # _table breaks an HTML cell's lines
        name = "`{}`" if fmt == "markdown" else "{}"
        rows = [(name.format(e.name), e.layer, format_shape(e.output), lines.join(e.shape),
                 _params_text(e), e.macs_formula, _field_text(e), lines.join(_kept_lines(e)))
                for e in explanation.layers]
        table = _table(rows, fmt, headers=("name", "layer", "output", "output size", "params",
                                           "MACs", "receptive field", "keeps for backward"))
        return _document([_title(title, fmt), table], fmt)
    blocks = [title]
    for e in explanation.layers:
        lines = [f"{e.name}  {e.layer}: {' and '.join(format_shape(s) for s in e.inputs)} → "
                 f"{format_shape(e.output)}"]
        labelled = [("output", list(e.shape)), ("params", [_params_text(e)])]
        if e.buffers_formula is not None:
            labelled.append(("buffers", [e.buffers_formula]))
        labelled += [("MACs", [e.macs_formula]), ("RF", [_field_text(e)]),
                     ("backward", _kept_lines(e))]
        for label, texts in labelled:
            for index, text in enumerate(texts):
                lines.append(f"  {label if index == 0 else '':8} {text}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _kept_lines(e) -> list[str]:
    """What the layer keeps for backward, one example: each tensor with its bytes, or the
    earlier row that keeps the same storage and counts it."""
    if not e.saved:
        return ["nothing"]
    return [f"{tensor} {format_shape(shape)}, " + (f"{size:,} B" if by == e.name else
                                                   f"kept by {by} already")
            for tensor, shape, size, by in e.saved]


def _params_text(e) -> str:
    return e.params_formula + (" (frozen: not trainable)" if e.frozen else "")


def _field_text(e) -> str:
    """Receptive field and jump, with the step that grows them; — where outputs have no
    spatial window (after Flatten, adaptive pooling, upsampling, transposed convolution)."""
    if e.rf is None:
        return "—"
    return e.rf_formula


def render_sweep(sweep, fmt: str) -> str:
    """`sweep`: output shape, parameters, MACs and memory per input size; where each invalid
    size breaks; the smallest valid input."""
    if fmt == "json":
        return json.dumps(sweep.to_dict(), indent=2, ensure_ascii=False)
    rows = []
    for p in sweep.points:
        if p.valid:
            rows.append((format_shape(p.input), format_shape(p.output), f"{p.params:,}",
                         f"{p.macs:,}", human_bytes(p.activation_bytes), "ok"))
        else:
            rows.append((format_shape(p.input), "—", "—", "—", "—",
                         f"breaks at {p.layer}" if p.layer else "invalid"))
    table = _table(rows, fmt, headers=("input", "output", "params", "MACs",
                                       f"activation memory (batch {sweep.batch})", "status"),
                   colalign=("left", "left", "right", "right", "right", "left"))
    title = f"{sweep.name}: {len(sweep.points)} input size{'s' * (len(sweep.points) != 1)}"
    parts = [_title(title, fmt), table]
    broken = [p for p in sweep.points if not p.valid]
    if broken:
        details = [f"{format_shape(p.input)}: "
                   + (f"{p.layer} (line {p.line}, column {p.column}): " if p.layer else "")
                   + p.error for p in broken]
        if fmt == "html":
            parts.append("<p>where invalid sizes break:</p>\n<ul>\n" + "\n".join(
                f"<li>{html.escape(d)}</li>" for d in details) + "\n</ul>")
        else:
            bullet = "- " if fmt == "markdown" else "  "
            parts.append("where invalid sizes break:\n" + "\n".join(bullet + d for d in details))
    if sweep.searched is not None:
        low, high = sweep.searched
        if sweep.smallest is not None:
            parts.append(_paragraph(f"smallest valid input: {format_shape(sweep.smallest)} "
                                    f"(the smallest with equal spatial sizes, searched from "
                                    f"{low} up)", fmt))
        else:
            parts.append(_paragraph(f"no input with equal spatial sizes from {low} to {high} "
                                    f"is valid", fmt))
    return _document(parts, fmt)


def render_run(run, fmt: str) -> str:
    """A trained run (train.trained.Run): each epoch's losses and accuracies, the test accuracy."""
    validated = any(r.get("val_loss") is not None for r in run.history)
    headers = ("epoch", "train loss", "train accuracy",
               *(("val loss", "val accuracy") if validated else ()), "seconds")
    rows = [(r["epoch"], f"{r['train_loss']:.4f}", f"{r['train_accuracy']:.2%}",
             *((f"{r['val_loss']:.4f}", f"{r['val_accuracy']:.2%}") if validated else ()),
             f"{r['seconds']:.1f}") for r in run.history]
    params = f", {run.analysis.totals.params:,} parameters" if run.analysis else ""
    epochs = len(run.history)
    parts = [_title(f"{run.out_dir}: {epochs} epoch{'s' * (epochs != 1)}{params}", fmt),
             _table(rows, fmt, headers=headers, colalign=("right",) * len(headers))]
    if run.test is not None:
        tta = "" if getattr(run, "test_tta", None) is None else \
            f", with {run.config.tta} TTA {run.test_tta.accuracy:.2%}"
        parts.append(_paragraph(f"test accuracy {run.test.accuracy:.2%} "
                                f"(loss {run.test.loss:.4f}){tta}", fmt))
    return _document(parts, fmt)
