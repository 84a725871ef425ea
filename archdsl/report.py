"""Rendering only: analyses and comparisons as a terminal table, markdown or JSON."""
from __future__ import annotations

import json
import os

from .analysis import SCHEMA, Analysis
from .compare import Entry
from .layers import format_shape

MACS_NOTE = "multiply-accumulates of conv and linear layers per example (torchvision's convention)"
_STYLE = {"table": "simple", "markdown": "github"}


def tabulate(*args, **kwargs) -> str:
    # Imported on first use: importing tabulate (which reads its package metadata) is a tenth
    # of `archdsl check`'s start-up, and JSON reports never use it.
    from tabulate import tabulate as render
    return render(*args, **kwargs)


def render_analysis(analysis: Analysis, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(analysis.to_dict(), indent=2, ensure_ascii=False)
    layers = tabulate(
        [(r.name, r.layer, format_shape(r.output), f"{r.params:,}", f"{r.macs:,}")
         for r in analysis.rows],
        headers=("name", "layer", "output", "params", "MACs"),
        colalign=("left", "left", "left", "right", "right"), tablefmt=_STYLE[fmt])
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
    if fmt == "markdown":
        title = f"### {title}"
        totals_table = tabulate(totals, headers=("total", "value", "note"),
                                colalign=("left", "right", "left"), tablefmt="github")
    else:
        totals_table = tabulate(totals, colalign=("left", "right", "left"), tablefmt="plain")
    return f"{title}\n\n{layers}\n\n{totals_table}"


def render_comparison(entries: list[Entry], fmt: str) -> str:
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
    table = tabulate(rows, headers=headers, tablefmt=_STYLE[fmt],
                     colalign=("left", *("right" for _ in entries)))
    return f"{table}\n\nMACs: {MACS_NOTE}."


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


def _entry_dict(entry: Entry) -> dict:
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
            f"checkpoint {result['checkpoint']} (epoch {result['epoch']})")
    per_class = tabulate([(name, f"{acc:.2%}") for name, acc in
                          zip(result["classes"], result["per_class"])],
                         headers=("class", "accuracy"), tablefmt=style, colalign=("left", "right"))
    short = [str(i) for i in range(len(result["classes"]))]
    confusion = tabulate([(f"{i} {name}", *row) for i, (name, row) in
                          enumerate(zip(result["classes"], result["confusion"]))],
                         headers=("true \\ predicted", *short), tablefmt=style)
    return f"{head}\n\n{per_class}\n\n{confusion}"


def render_check(analysis: Analysis, budget: list, fmt: str) -> str:
    """`check`'s output: the analysis, then the spec's assertions (BudgetResults), if any."""
    if not budget:
        return render_analysis(analysis, fmt)
    if fmt == "json":
        data = analysis.to_dict()
        data["budget"] = [result.to_dict() for result in budget]
        return json.dumps(data, indent=2, ensure_ascii=False)
    rows = [("ok" if r.passed else "FAILED", r.statement, f"{r.value:,}",
             f"line {r.assertion.span.line}") for r in budget]
    failed = sum(not r.passed for r in budget)
    title = f"budget: {len(budget) - failed} of {len(budget)} assertions hold"
    if fmt == "markdown":
        title = f"### {title}"
        table = tabulate(rows, headers=("", "assertion", "value", "where"), tablefmt="github",
                         colalign=("left", "left", "right", "left"))
    else:
        table = tabulate(rows, colalign=("left", "left", "right", "left"), tablefmt="plain")
    return f"{render_analysis(analysis, fmt)}\n\n{title}\n\n{table}"


def render_explanation(explanation, fmt: str) -> str:
    """`explain`: per layer the output size's formula, parameters, MACs, receptive field."""
    if fmt == "json":
        return json.dumps(explanation.to_dict(), indent=2, ensure_ascii=False)
    title = (f"{explanation.name}: input {format_shape(explanation.input)} → "
             f"output {format_shape(explanation.output)}")
    if fmt == "markdown":
        rows = [(f"`{e.name}`", e.layer, format_shape(e.output), "<br>".join(e.shape),
                 _params_text(e), e.macs_formula, _field_text(e)) for e in explanation.layers]
        table = tabulate(rows, headers=("name", "layer", "output", "output size", "params",
                                        "MACs", "receptive field"), tablefmt="github")
        return f"### {title}\n\n{table}"
    blocks = [title]
    for e in explanation.layers:
        lines = [f"{e.name}  {e.layer}: {' and '.join(format_shape(s) for s in e.inputs)} → "
                 f"{format_shape(e.output)}"]
        labelled = [("output", list(e.shape)), ("params", [_params_text(e)])]
        if e.buffers_formula is not None:
            labelled.append(("buffers", [e.buffers_formula]))
        labelled += [("MACs", [e.macs_formula]), ("RF", [_field_text(e)])]
        for label, texts in labelled:
            for index, text in enumerate(texts):
                lines.append(f"  {label if index == 0 else '':8} {text}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


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
    table = tabulate(rows, headers=("input", "output", "params", "MACs",
                                    f"activation memory (batch {sweep.batch})", "status"),
                     colalign=("left", "left", "right", "right", "right", "left"),
                     tablefmt=_STYLE[fmt])
    title = f"{sweep.name}: {len(sweep.points)} input size{'s' * (len(sweep.points) != 1)}"
    parts = [f"### {title}" if fmt == "markdown" else title, table]
    broken = [p for p in sweep.points if not p.valid]
    if broken:
        details = [f"{format_shape(p.input)}: "
                   + (f"{p.layer} (line {p.line}, column {p.column}): " if p.layer else "")
                   + p.error for p in broken]
        bullet = "- " if fmt == "markdown" else "  "
        parts.append("where invalid sizes break:\n" + "\n".join(bullet + d for d in details))
    if sweep.searched is not None:
        low, high = sweep.searched
        if sweep.smallest is not None:
            parts.append(f"smallest valid input: {format_shape(sweep.smallest)} "
                         f"(the smallest with equal spatial sizes, searched from {low} up)")
        else:
            parts.append(f"no input with equal spatial sizes from {low} to {high} is valid")
    return "\n\n".join(parts)
