"""`archdsl import`: an existing nn.Module, traced with torch.fx, written as a spec.

trace.py turns the module into an ImportedGraph (graph.py), structure.py writes that graph as
spec text. Importing this package imports no torch; from_module does."""
from __future__ import annotations


def from_module(module, input=(1, 28, 28), origin: str | None = None) -> str:
    """The spec of an nn.Module at an input of shape `input` (C×H×W, no batch axis), in
    `archdsl fmt`'s layout; `origin` names it in the header (default: its class)."""
    from .structure import write_spec
    from .trace import trace

    return write_spec(trace(module, tuple(input), origin))


__all__ = ["from_module"]
