"""`%load_ext archdsl`: the `%%archdsl` cell magic, `archdsl check` in a notebook cell.

The cell's text is a spec. The cell shows its analysis (or, with --explain, its explanation, and
with --draw, its diagram too) and binds the analysis to NAME where one is given. Bad input shows
as the terminal shows it, `<cell>:line:col: message` with the caret, never as a traceback.
Torch-free, as `check` is.
"""
from __future__ import annotations

import sys

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from .analysis import analyze
from .budget import check_budget, failures
from .errors import ArchDSLError
from .ir import parse_shape
from .parser import parse
from .train.config import TrainConfig

CELL = "<cell>"  # the spec's name in messages, where the cell binds no name


@magics_class
class ArchDSLMagics(Magics):
    @magic_arguments()
    @argument("name", nargs="?", help="Bind the analysis to this name.")
    @argument("--input", metavar="CxHxW", help="Input shape, e.g. 1x28x28; overrides the spec's "
                                                "input line.")
    @argument("--batch", type=int, default=1, help="Batch size for activation memory.")
    @argument("--explain", nargs="?", const="", metavar="LAYER",
              help="Show each layer's arithmetic (as `archdsl explain`), or only LAYER's.")
    @argument("--draw", action="store_true", help="Show the diagram too (as `archdsl draw`).")
    @cell_magic
    def archdsl(self, line: str, cell: str):
        """Analyze the cell's spec: %%archdsl [NAME] [--input CxHxW] [--batch N]
        [--explain [LAYER]] [--draw]"""
        options = parse_argstring(self.archdsl, line)
        if options.name is not None and not options.name.isidentifier():
            raise UsageError(f"{options.name!r} is not a Python name to bind the analysis to")
        if options.batch < 1:
            raise UsageError(f"--batch must be at least 1, got {options.batch}")
        try:
            shape = None if options.input is None else parse_shape(options.input)
        except ArchDSLError as error:
            raise UsageError(f"--input: {error.message}") from None
        name = options.name or CELL
        analysis = _analysis_or_none(cell, name, shape, options.batch)
        if analysis is None:
            return
        if options.name is not None:
            self.shell.user_ns[options.name] = analysis
        if options.explain is not None:
            from .explain import explain
            try:
                display(explain(analysis, options.explain or None))
            except ValueError as error:
                print(f"error: --explain: {error}", file=sys.stderr)
        else:
            display(analysis)
        if options.draw:
            from .draw import diagram
            display(diagram(analysis))
        for error in failures(check_budget(analysis)):
            print(error.render(cell, name), file=sys.stderr)


def _analysis_or_none(text: str, name: str, shape, batch: int):
    """The analysis, its warnings printed; or None, with the error printed as `check` does."""
    try:
        spec = parse(text, name)
        TrainConfig.from_spec(spec)  # a bad train(...) block is a spec error, as for check
        analysis = analyze(spec, shape, batch)
    except ArchDSLError as error:
        _print(error.warnings, text, name)
        print(error.render(text, name), file=sys.stderr)
        return None
    _print(analysis.warnings, text, name)
    return analysis


def _print(warnings, text: str, name: str) -> None:
    for warning in warnings:
        print(warning.render(text, name), file=sys.stderr)


def load_ipython_extension(ipython) -> None:
    ipython.register_magics(ArchDSLMagics)
