"""The command line: read options, call the library, render. No analysis happens here.

`archdsl.cli:app` is the console script; importing the command modules registers their
commands on it, static analysis first, then the commands that run torch, then the editor's."""
from .common import app
# (they register their commands)
from . import analysis_commands, run_commands, import_command, editor_command  # noqa: F401

__all__ = ["app"]
