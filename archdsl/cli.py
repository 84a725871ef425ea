"""The command line: read options, call the library, render. No analysis happens here."""
from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated, Optional

import typer

from . import __version__
from .analysis import Analysis, analyze
from .compare import compare as compare_analyses, mlp_baseline, parse_baseline
from .errors import ArchDSLError
from .ir import parse_shape
from .parser import parse, read_text
from .report import render_analysis, render_comparison

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Describe convolutional networks as text; check shapes, parameters and "
                       "cost exactly.")


class Format(str, Enum):
    table = "table"
    markdown = "markdown"
    json = "json"


def _shape_option(value: Optional[str]):
    if value is None:
        return None
    try:
        return parse_shape(value)
    except ArchDSLError as error:
        raise typer.BadParameter(error.message) from None


SpecArgument = Annotated[str, typer.Argument(help="A .spec file, or - to read standard input.")]
InputOption = Annotated[Optional[str], typer.Option(
    "--input", callback=_shape_option, metavar="CxHxW",
    help="Input shape, e.g. 1x28x28; overrides the spec's input line.")]
FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
BatchOption = Annotated[int, typer.Option("--batch", min=1,
                                          help="Batch size for activation memory.")]


def _version(value: bool):
    if value:
        typer.echo(f"archdsl {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False):
    """archdsl: a convolutional network as text."""


def load(path: str, input=None, batch: int = 1) -> Analysis:
    """Read, parse and analyze a spec; on bad input print file:line:col with a caret, exit 2."""
    text = None
    name = "<stdin>" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else read_text(path)
        return analyze(parse(text, name), input, batch)
    except ArchDSLError as error:
        typer.echo(error.render(text, name), err=True)
        raise typer.Exit(2) from None


@app.command()
def check(spec: SpecArgument, input: InputOption = None, format: FormatOption = Format.table,
          batch: BatchOption = 1):
    """Every layer's output shape, parameters and MACs, then the totals."""
    typer.echo(render_analysis(load(spec, input, batch), format.value))


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
    analyses = [load(path, input, batch) for path in specs]
    if baseline is not None:
        try:
            hidden = parse_baseline(baseline)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--baseline") from None
        analyses.append(mlp_baseline(analyses[0], hidden))
    typer.echo(render_comparison(compare_analyses(analyses), format.value))
