"""What every command shares: the app, the spec argument and common options, and the steps
that turn bad input or a failed run into a message and an exit code instead of a traceback."""
from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

from .. import __version__
from ..analysis import Analysis, analyze
from ..errors import ArchDSLError
from ..ir import parse_shape
from ..optimizers import OPTIMIZERS
from ..parser import parse, read_text
from ..train.config import PRECISIONS, TrainConfig

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Describe convolutional networks as text; check shapes, parameters and "
                       "cost exactly.")


Optimizer = Enum("Optimizer", {name: name for name in OPTIMIZERS}, type=str)


Precision = Enum("Precision", {name: name for name in PRECISIONS}, type=str)


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
    text, name, spec = parse_or_exit(path)
    try:
        TrainConfig.from_spec(spec)  # a bad train(...) block is a spec error, even for check
        analysis = analyze(spec, input, batch)
    except ArchDSLError as error:
        warn(error.warnings, text, name)
        typer.echo(error.render(text, name), err=True)
        raise typer.Exit(2) from None
    warn(analysis.warnings, text, name)
    return analysis


def warn(warnings, text: str | None, name: str) -> None:
    """Print warnings to stderr, each with its position and caret; the exit code stays."""
    for warning in warnings:
        typer.echo(warning.render(text, name), err=True)


def run_or_exit(function, *args, text=None, name="<spec>", rank=None, **kwargs):
    """Call the library; a run's error becomes a message and its exit code, never a traceback.
    `rank`: this process's rank in a job of several, named in its messages."""
    try:
        return function(*args, **kwargs)
    except ArchDSLError as error:
        message = error.render(text, name)
        if rank is None:
            typer.echo(message, err=True)
        elif rank == 0 or not getattr(error, "same_on_every_rank", False):
            typer.echo(f"[rank {rank}] {message}", err=True)
        raise typer.Exit(getattr(error, "exit_code", 2)) from None


def parse_or_exit(path: str):
    """Read and parse a spec: (text, name, spec); bad input prints file:line:col, exits 2."""
    text = None
    name = "<stdin>" if path == "-" else path
    try:
        text = read_text(path)
        return text, name, parse(text, name)
    except ArchDSLError as error:
        typer.echo(error.render(text, name), err=True)
        raise typer.Exit(2) from None
