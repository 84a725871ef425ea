"""`archdsl lsp`: the language server for editors. pygls is imported only when it runs, so that
no other command pays for it at start."""
from __future__ import annotations

import typer

from .common import app


@app.command()
def lsp():
    """The language server for editors, over stdio: diagnostics, shapes, hover, completion.

    Every error and warning as you type; on hover, a layer's resolved form, output shape,
    parameters and MACs; each line's output shape at its end; completion of layers and
    argument keywords; formatting as `archdsl fmt`. Needs the extra named lsp (pygls)."""
    try:
        from ..lsp import serve
    except ImportError as error:
        typer.echo(f"error: archdsl lsp needs pygls and lsprotocol ({error.msg})\n"
                   f"hint: pip install 'archdsl[lsp]'", err=True)
        raise typer.Exit(2) from None
    serve()
