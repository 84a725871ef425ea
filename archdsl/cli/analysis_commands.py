"""The commands that read specs and report on them: pure Python, they never import torch."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import (BatchOption, FormatOption, Format, InputOption, SpecArgument, app, load,
                     Optimizer, Precision, parse_or_exit, run_or_exit)


@app.command()
def check(
    spec: SpecArgument, input: InputOption = None, format: FormatOption = Format.table,
    batch: Annotated[Optional[int], typer.Option(
        "--batch", min=1, help="Batch size for activation memory; adds the memory of a training "
                               "step at this batch to the totals.")] = None,
    fit: Annotated[Optional[str], typer.Option(
        metavar="SIZE", help="The largest batch whose training memory fits in SIZE (16GiB, "
                             "8G, 512MiB), with its breakdown.")] = None,
    optimizer: Annotated[Optional[Optimizer], typer.Option(
        help="The optimizer whose state training memory counts (default: the spec's "
             "train(...), else adam).")] = None,
    amp: Annotated[Optional[Precision], typer.Option(
        help="Training memory under autocast: bf16 or fp16 (default: the spec's train(...), "
             "else off).")] = None,
):
    """Every layer's output shape, parameters and MACs, then the totals.

    With --batch, --fit, --optimizer or --amp, also the memory of a training step: parameters,
    gradients, optimizer state, what autograd keeps for backward, and the inference peak.
    Exits 1 when one of the spec's assertions (`assert params < 100k`) fails, or when not
    even one example fits in --fit."""
    from ..budget import check_budget, failures, parse_bound
    from ..memory import largest_batch, planned_training_memory, training_memory
    from ..report import render_check

    analysis = load(spec, input, batch or 1)
    memory = fitted = None
    if batch is not None or fit is not None or optimizer is not None or amp is not None:
        memory = planned_training_memory(analysis, batch, optimizer and optimizer.value,
                                         amp and amp.value)
    if fit is not None:
        try:
            budget = int(parse_bound(fit))
        except ValueError:
            raise typer.BadParameter(f"not a size: {fit!r}; write 16GiB, 8G or 512MiB",
                                     param_hint="--fit") from None
        fitted = largest_batch(analysis, budget, memory.optimizer, memory.momentum,
                               memory.precision)
        memory = fitted or training_memory(analysis, 1, memory.optimizer, memory.momentum,
                                           memory.precision)
    results = check_budget(analysis, memory)
    typer.echo(render_check(analysis, results, format.value, memory,
                            budget if fit is not None else None))
    failed = failures(results)
    for error in failed:
        typer.echo(error.render(analysis.spec.text, analysis.spec.filename), err=True)
    if fit is not None and fitted is None:
        typer.echo(f"error: not even one example fits in {fit}: a training step at batch 1 "
                   f"takes {memory.total:,} bytes", err=True)
    if failed or (fit is not None and fitted is None):
        raise typer.Exit(1)


@app.command()
def compare(
    specs: Annotated[list[str], typer.Argument(help="Two or more .spec files; ratios are to "
                                                    "the first.")],
    baseline: Annotated[Optional[str], typer.Option(
        "--baseline", metavar="mlp:W1[,W2…]",
        help="Add the MLP with these hidden widths built on the first spec's input and "
             "output.")] = None,
    input: InputOption = None, format: FormatOption = Format.table, batch: BatchOption = 1,
):
    """Specs side by side: depth, weights and biases, parameters, MACs, memory."""
    from ..compare import compare as compare_analyses, mlp_baseline, parse_baseline
    from ..report import render_comparison

    analyses = [load(path, input, batch) for path in specs]
    if baseline is not None:
        try:
            hidden = parse_baseline(baseline)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--baseline") from None
        analyses.append(mlp_baseline(analyses[0], hidden))
    typer.echo(render_comparison(compare_analyses(analyses), format.value))


@app.command()
def explain(
    spec: SpecArgument,
    layer: Annotated[Optional[str], typer.Option(
        metavar="NAME", help="Only this row, or the rows of this scope (e.g. layer2).")] = None,
    input: InputOption = None, format: FormatOption = Format.table,
):
    """Per layer: output size formula, parameters and MACs as products, receptive field.

    Formulas have their numbers filled in; the receptive field and jump (effective stride) of
    each layer's outputs are in input pixels."""
    from ..explain import explain as explain_analysis
    from ..report import render_explanation

    analysis = load(spec, input)
    try:
        explanation = explain_analysis(analysis, layer)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--layer") from None
    typer.echo(render_explanation(explanation, format.value))


@app.command()
def sweep(
    spec: SpecArgument,
    inputs: Annotated[Optional[str], typer.Option(
        "--input", metavar="CxHxW[,CxHxW…]", help="Input shapes, e.g. 1x28x28,1x32x32.")] = None,
    size: Annotated[Optional[str], typer.Option(
        metavar="START:STOP:STEP", help="Sizes for every spatial axis with the spec's channels: "
                                        "28:224:32, 28:64 (step 1) or 28,32,64.")] = None,
    format: FormatOption = Format.table, batch: BatchOption = 1,
):
    """Output shape, parameters and MACs across input sizes; where sizes break.

    For an invalid size, the layer that breaks and why; then the smallest valid input."""
    from ..report import render_sweep
    from ..sweep import parse_shapes, parse_sizes, sweep as run_sweep

    if (inputs is None) == (size is None):
        raise typer.BadParameter("give either --input shapes or --size sizes",
                                 param_hint="--input / --size")
    try:
        shapes = parse_shapes(inputs) if inputs is not None else None
        sizes = parse_sizes(size) if size is not None else None
    except ValueError as error:
        raise typer.BadParameter(str(error),
                                 param_hint="--input" if inputs is not None else "--size") from None
    text, name, parsed = parse_or_exit(spec)
    try:
        result = run_or_exit(run_sweep, parsed, shapes, sizes, batch, text=text, name=name)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--size") from None
    typer.echo(render_sweep(result, format.value))


@app.command("fmt")
def format_command(
    specs: Annotated[list[str], typer.Argument(
        help="One or more .spec files, or - to read standard input.")],
    check_only: Annotated[bool, typer.Option(
        "--check", help="Print nothing if every spec is already canonical, else a diff; "
                        "exit 1 if not.")] = False,
    write: Annotated[bool, typer.Option(
        "--write", "-w", help="Rewrite the files that are not canonical, in place.")] = False,
):
    """Print specs in canonical layout, comments kept; or check them, or rewrite them."""
    import difflib

    from ..fmt import format_spec, in_file_style, write_atomically

    if check_only and write:
        raise typer.BadParameter("give --check or --write, not both", param_hint="--check")
    if write and "-" in specs:
        raise typer.BadParameter("--write rewrites files; standard input is not one",
                                 param_hint="--write")
    # Every spec is formatted before anything is written or printed: one bad spec leaves all
    # the files as they were.
    results = []
    for spec in specs:
        text, name, _ = parse_or_exit(spec)
        results.append((spec, name, text, run_or_exit(format_spec, text, name, text=text,
                                                      name=name)))
    changed = [(spec, name, text, in_file_style(formatted, text))
               for spec, name, text, formatted in results
               if in_file_style(formatted, text) != text]
    if write:
        for spec, _, _, formatted in changed:
            run_or_exit(write_atomically, Path(spec), formatted)
            typer.echo(f"reformatted {spec}")
        return
    if not check_only:
        for _, _, _, formatted in results:
            typer.echo(formatted, nl=False)
        return
    for _, name, text, formatted in changed:
        typer.echo("".join(difflib.unified_diff(
            text.splitlines(keepends=True), formatted.splitlines(keepends=True),
            fromfile=name, tofile=f"{name} (formatted)")), nl=False)
    if changed:
        raise typer.Exit(1)


class DiagramFormat(str, Enum):
    svg = "svg"
    png = "png"
    pdf = "pdf"
    dot = "dot"


@app.command()
def draw(
    spec: SpecArgument,
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write: .svg, .png, "
                                                                ".pdf or .dot (DOT source).")],
    format: Annotated[Optional[DiagramFormat], typer.Option(
        "--format", "-f", help="Default: from the file's suffix.")] = None,
    input: InputOption = None,
):
    """A diagram of the network: a box per layer with its output shape, branches and skips.

    Rendering needs Graphviz's `dot` program; .dot files are written without it."""
    from ..draw import draw as draw_diagram

    analysis = load(spec, input)
    path = run_or_exit(draw_diagram, analysis, output, format and format.value)
    typer.echo(f"{path}: {len(analysis.rows)} layers")
