"""`archdsl import`: a PyTorch module (torchvision's, a class in a file, a factory) as a spec."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import _shape_option, app, run_or_exit


def _arguments(values: list[str]) -> dict:
    """`--arg name=value` options as keyword arguments: Python literals (3, 0.5, True, 'a',
    (1, 2)), true/false/none in any case, and anything else as a string."""
    arguments = {}
    for value in values:
        name, equals, text = value.partition("=")
        if not equals or not name.isidentifier():
            raise typer.BadParameter(f"expected name=value, got {value!r}", param_hint="--arg")
        words = {"true": True, "false": False, "none": None}
        if text.lower() in words:
            arguments[name] = words[text.lower()]
            continue
        try:
            arguments[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            arguments[name] = text
    return arguments


@app.command("import")
def import_command(
    target: Annotated[str, typer.Argument(
        metavar="TARGET",
        help="torchvision:NAME, path/to/model.py:NAME or package.module:NAME: an nn.Module "
             "class, or a function returning a module.")],
    input: Annotated[str, typer.Option(
        "--input", callback=_shape_option, metavar="CxHxW",
        help="The input shape to trace the module at, e.g. 3x224x224; the spec's input line.")],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="The .spec file to write; standard output without it.")] = None,
    arg: Annotated[Optional[list[str]], typer.Option(
        "--arg", metavar="NAME=VALUE",
        help="A keyword argument for the class or function, e.g. --arg num_classes=10; "
             "repeat it for more.")] = None,
):
    """Write a PyTorch module as a spec, traced with torch.fx at the input shape given.

    Branches, definitions and repeats come out as a person writes them; what has no archdsl
    counterpart is listed, with where it is called, and exits 2."""
    from ..analysis import analyze
    from ..importer import from_module
    from ..importer.targets import load_target
    from ..parser import parse

    module, origin = run_or_exit(load_target, target, _arguments(arg or []))
    text = run_or_exit(from_module, module, input, origin)
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        typer.echo(f"error: cannot write {output}: {error.strerror or error}", err=True)
        raise typer.Exit(2) from None
    totals = analyze(parse(text, str(output))).totals
    typer.echo(f"{output}: {origin}, input {'×'.join(map(str, input))}, "
               f"{text.count(chr(10))} lines, {totals.params:,} parameters")
