"""`archdsl draw`: a box per row, edges from each row's inputs, SVG/PNG/DOT files."""
import shutil
import xml.etree.ElementTree as ET

import pytest
from typer.testing import CliRunner

import archdsl
from archdsl.cli import app
from archdsl.draw import COLORS, diagram
from archdsl.layers import layer_class, layer_names
from conftest import ROOT, SPECS

runner = CliRunner()
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot is not installed (apt-get install graphviz)")
SVG = "{http://www.w3.org/2000/svg}"


def analysis_of(path):
    return archdsl.analyze(archdsl.parse(path.read_text(), str(path)))


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_dot_has_a_box_per_row_and_an_edge_per_input(spec):
    analysis = analysis_of(spec)
    graph = diagram(analysis)
    source = graph.source
    for row in analysis.rows:
        assert f'id="{row.name}"' in source or f"id={row.name}" in source
    edges = sum(len(node.inputs) for node in analysis.nodes)
    assert source.count("->") == edges


@needs_dot
@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_svg_of_every_shipped_spec(spec, tmp_path):
    out = tmp_path / "net.svg"
    result = runner.invoke(app, ["draw", str(spec), "-o", str(out)])
    assert result.exit_code == 0, result.output
    root = ET.parse(out).getroot()
    assert root.tag == f"{SVG}svg"
    node_ids = {g.get("id") for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
    rows = analysis_of(spec).rows
    assert {row.name for row in rows} <= node_ids
    edges = [g for g in root.iter(f"{SVG}g") if g.get("class") == "edge"]
    assert len(edges) == sum(len(row.inputs) for row in rows)
    assert f"{len(rows)} layers" in result.stdout


@needs_dot
def test_png(tmp_path):
    out = tmp_path / "net.png"
    result = runner.invoke(app, ["draw", str(ROOT / "specs/zoo/resnet18.spec"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_residual_and_skip_edges(tmp_path):
    """ResNet's sums read two rows; U-Net's crops read a named result, drawn dashed."""
    source = diagram(analysis_of(ROOT / "specs/zoo/resnet18.spec")).source
    assert source.count("subgraph cluster_layer1 {") == 1
    assert 'subgraph "cluster_layer2.down.shortcut" {' in source
    adds = [row for row in analysis_of(ROOT / "specs/zoo/resnet18.spec").rows
            if row.type == "Add"]
    assert len(adds) == 8 and all(len(row.inputs) == 2 for row in adds)
    unet = diagram(analysis_of(ROOT / "specs/zoo/unet.spec")).source
    assert unet.count("style=dashed") == 4  # the four skips' edges (frames: "rounded,dashed")
    for name in ("enc1", "enc2", "enc3", "enc4"):
        assert f"label={name}" in unet


def test_dot_source_needs_no_graphviz_binary(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot here
    out = tmp_path / "net.dot"
    result = runner.invoke(app, ["draw", str(ROOT / "specs/simple_cnn.spec"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("digraph") and "conv1" in text and "linear2" in text


def test_missing_dot_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    out = tmp_path / "net.svg"
    result = runner.invoke(app, ["draw", str(ROOT / "specs/simple_cnn.spec"), "-o", str(out)])
    assert result.exit_code == 2
    assert "needs Graphviz's `dot` program" in result.stderr
    assert "apt-get install graphviz" in result.stderr and "-o net.dot" in result.stderr
    assert not out.exists()


def test_unknown_suffix_and_explicit_format(tmp_path):
    spec = str(ROOT / "specs/mlp.spec")
    result = runner.invoke(app, ["draw", spec, "-o", str(tmp_path / "net.jpg")])
    assert result.exit_code == 2 and "cannot tell the diagram's format" in result.stderr
    result = runner.invoke(app, ["draw", spec, "-o", str(tmp_path / "net.txt"), "-f", "dot"])
    assert result.exit_code == 0 and (tmp_path / "net.txt").read_text().startswith("digraph")


def test_bad_spec_exits_2(tmp_path):
    result = runner.invoke(app, ["draw", "-", "-o", str(tmp_path / "x.dot")],
                           input="input 1x8x8\nConv2(4, 3)\n")
    assert result.exit_code == 2 and "unknown layer 'Conv2'" in result.stderr


def test_boxes_are_coloured_by_the_kind_each_layer_declares():
    """The colour comes from the layer class (Layer.kind), not from a list of layer names."""
    analysis = archdsl.analyze("input 1x8x8\nConv(4, 3) -> ReLU -> MaxPool(2) -> Flatten "
                               "-> Linear(3)")
    graph = diagram(analysis)
    fills = {row.name: next(line for line in graph.body if f"id={row.name} " in line)
             .split("fillcolor=")[1].split(" ")[0] for row in analysis.rows}
    assert fills == {"conv": '"#cfe2f3"', "relu": "white", "maxpool": '"#fff2cc"',
                     "flatten": '"#eeeeee"', "linear": '"#d9ead3"'}


def test_every_layer_kind_has_a_colour():
    kinds = {name: layer_class(name).kind for name in layer_names()}
    assert {name: kind for name, kind in kinds.items() if kind not in COLORS} == {}
