"""A spec's network as a diagram: one box per row, an edge for every input it reads (Graphviz).

Boxes carry the row's name, its layer and its output shape; rows of one scope (`layer2`,
`layer2.down`) sit in one frame. Branches and merges follow `Row.inputs`, so residual sums and
concatenations show as such; a named skip read later (`Concat(enc1, crop=true)`) is dashed.
"""
from __future__ import annotations

import html
from pathlib import Path

import graphviz

from .analysis import Analysis
from .errors import RunError
from .ir import INPUT
from .layers import format_shape
from .suffixes import format_from_suffix

_SUFFIXES = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
COLORS = {  # fill colour by the kind each layer class declares (Layer.kind)
    "conv": "#cfe2f3", "linear": "#d9ead3", "pool": "#fff2cc", "resize": "#fff2cc",
    "norm": "#ead1dc", "scale": "#d9d2e9", "merge": "#f4cccc", "regularization": "#eeeeee",
    "shape": "#eeeeee", "activation": "white",
}
INSTALL = ("install Graphviz, which provides it: `apt-get install graphviz` (Debian, Ubuntu), "
           "`brew install graphviz` (macOS), `conda install graphviz`")
INSTALL_HINT = f"{INSTALL}; or write DOT source with `-o net.dot`"


class Diagram(graphviz.Digraph):
    """A Digraph that a notebook shows as SVG through graphviz's own Jupyter integration, and
    where Graphviz's `dot` cannot render it, as its DOT source with the install hint."""

    layers: int | None = None  # the rows drawn, for the repr

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs) -> dict:
        try:
            return super()._repr_mimebundle_(include, exclude, **kwargs)
        except graphviz.ExecutableNotFound:
            problem = f"showing the diagram needs Graphviz's `dot` program, which is not on " \
                      f"the PATH: {INSTALL}. Its DOT source:"
        except graphviz.CalledProcessError as error:
            detail = (error.stderr or b"").decode(errors="replace").strip()
            problem = f"Graphviz's dot failed: {detail or error}"
        text = f"{problem}\n\n{self.source}"
        return {"text/plain": text, "text/html": f"<pre>{html.escape(text)}</pre>"}

    def __repr__(self) -> str:
        return f"<Diagram {self.name}: {self.layers} layer{'s' * (self.layers != 1)}, DOT " \
               f"source in .source>"


def diagram(analysis: Analysis) -> Diagram:
    """The graph: an `input` node, then one box per row in execution order."""
    graph = Diagram(analysis.name, graph_attr={
        "rankdir": "TB", "fontname": "Helvetica", "fontsize": "11", "nodesep": "0.3",
        "ranksep": "0.3", "labeljust": "l"})
    graph.attr("node", shape="box", style="rounded,filled", fillcolor="white",
               fontname="Helvetica", fontsize="10", margin="0.12,0.04")
    graph.attr("edge", arrowsize="0.6")
    ids = {INPUT: "input"}
    graph.node("input", _label("input", None, analysis.input), shape="ellipse",
               fillcolor="#f3f3f3")
    scopes: dict[str, list] = {}  # scope -> its rows, for the frames
    for index, (node, row) in enumerate(zip(analysis.nodes, analysis.rows)):
        ids[row.name] = f"r{index}"
        scope = row.name.rpartition(".")[0]
        scopes.setdefault(scope, []).append((f"r{index}", row, node.layer.kind))
    _add_scope(graph, "", scopes)
    for node, row in zip(analysis.nodes, analysis.rows):
        references = node.layer.references()  # named skips, read after the input
        skips = dict(zip(node.inputs[len(node.inputs) - len(references):], references))
        for source in node.inputs:
            style = {"style": "dashed", "color": "#a61c00", "fontcolor": "#a61c00",
                     "fontsize": "9", "label": skips[source]} if source in skips else {}
            graph.edge(ids[source], ids[row.name], **style)
    graph.layers = len(analysis.rows)
    return graph


def _add_scope(graph, scope: str, scopes: dict) -> None:
    """The rows of `scope`, then every direct child scope as a nested frame."""
    for node_id, row, kind in scopes.get(scope, []):
        graph.node(node_id, _label(row.name.rpartition(".")[2], row.layer, row.output),
                   fillcolor=COLORS.get(kind, "white"), id=row.name,
                   tooltip=f"{row.name}: {row.layer}")
    prefix = scope + "." if scope else ""
    children = sorted({s[len(prefix):].split(".")[0] for s in scopes
                       if s.startswith(prefix) and s != scope},
                      key=lambda c: min(i for i, s in enumerate(scopes)
                                        if s == prefix + c or s.startswith(prefix + c + ".")))
    for child in children:
        name = prefix + child
        with graph.subgraph(name=f"cluster_{name}") as frame:
            frame.attr(label=name, style="rounded,dashed", color="#999999", fontcolor="#666666")
            _add_scope(frame, name, scopes)


def _label(name: str, layer: str | None, shape) -> str:
    lines = [f"<b>{html.escape(name)}</b>"]
    if layer is not None and layer != name:
        lines.append(html.escape(layer))
    lines.append(f'<font color="#555555">{html.escape(format_shape(shape))}</font>')
    return "<" + "<br/>".join(lines) + ">"


def output_format(path: Path, given: str | None = None) -> str:
    """The format asked for, else the one the file's suffix names."""
    return format_from_suffix(path, given, _SUFFIXES, "diagram")


def draw(analysis: Analysis, path: Path, fmt: str | None = None) -> Path:
    """Write the diagram to `path`: DOT source as it is, other formats rendered by `dot`."""
    fmt = output_format(path, fmt)
    if path.is_dir():
        raise RunError(f"{path} is a directory; -o names the file to write",
                       hint=f"write into it with -o {path / 'net'}.{fmt}")
    graph = diagram(analysis)
    if fmt == "png":
        graph.attr(dpi="144")  # sharp text; SVG and PDF scale by themselves
    if fmt == "dot":
        data = graph.source.encode()
    else:
        try:
            data = graph.pipe(format=fmt)
        except graphviz.ExecutableNotFound:
            raise RunError(f"drawing {fmt.upper()} needs Graphviz's `dot` program, which is not "
                           f"on the PATH", hint=INSTALL_HINT) from None
        except graphviz.CalledProcessError as error:
            detail = (error.stderr or b"").decode(errors="replace").strip()
            raise RunError(f"Graphviz's dot failed: {detail or error}") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as error:
        raise RunError(f"cannot write {path}: {error.strerror or error}") from None
    return path
