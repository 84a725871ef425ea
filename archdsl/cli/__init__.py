"""The command line: read options, call the library, render. No analysis happens here.

`archdsl.cli:main` is the console script, and `app` its typer application; importing the
command modules registers their commands on it, static analysis first, then the commands that
run torch, then the editor's."""
import gc

from .common import app
# (they register their commands)
from . import analysis_commands, run_commands, import_command, editor_command  # noqa: F401

__all__ = ["app", "main"]


def main() -> None:
    """`archdsl` and `python -m archdsl`: the app, then an exit without the final collection.

    At exit the interpreter's garbage collector would walk every object the process still
    holds (lark's tables, typer's pydantic schemas, the analysis) in search of cycles, only for
    the process to end: a sixth of `archdsl check`'s time. gc.freeze() takes them out of its
    view; their memory goes back to the system as it always does."""
    try:
        app(prog_name="archdsl")
    finally:
        gc.freeze()
