"""`archdsl explain`: each layer's arithmetic with the numbers filled in, as plain data.

The formulas come from the layers themselves (Layer.explain: the output size, the parameter
count, the MACs); this module adds the receptive field and jump of each layer's outputs, which
the analysis computes (rf += (k − 1)·jump, jump *= stride; the largest over merging paths), and
writes that step out.
"""
from __future__ import annotations

from dataclasses import dataclass

from .analysis import Analysis, Row
from .ir import INPUT
from .layers import format_shape
from .layers.arguments import suggest
from .layers.geometry import axis_names
from .memory import kept_tensors

SCHEMA = "archdsl.explain/1"


@dataclass(frozen=True)
class LayerExplanation:
    name: str
    type: str
    layer: str  # the row's description, e.g. Conv2d(1→16, k=3, s=1, p=1)
    inputs: tuple[tuple[int, ...], ...]
    output: tuple[int, ...]
    shape: tuple[str, ...]  # the output size: a formula per spatial axis, or a sentence
    params: int
    params_formula: str
    frozen: bool  # parameters not trainable
    buffers: int
    buffers_formula: str | None
    macs: int
    macs_formula: str
    rf: tuple[int, ...] | None  # receptive field of an output, per spatial axis, in input pixels
    jump: tuple[int, ...] | None  # distance in input pixels between neighbouring outputs
    rf_formula: str | None
    # What autograd keeps for this layer's backward pass in training, for one example:
    # (tensor, its shape, its storage's bytes, the row that counts that storage) each, the
    # storage counted once, by the first row that keeps it (archdsl/memory.py).
    saved: tuple[tuple[str, tuple[int, ...], int, str], ...] = ()
    saved_bytes: int = 0  # the bytes this row keeps that no earlier row kept

    def to_dict(self) -> dict:
        data = dict(vars(self))
        data.update(saved=[{"tensor": tensor, "shape": list(shape), "bytes": size,
                            "counted_by": by} for tensor, shape, size, by in self.saved])
        data.update(inputs=[list(s) for s in self.inputs], output=list(self.output),
                    shape=list(self.shape), rf=None if self.rf is None else list(self.rf),
                    jump=None if self.jump is None else list(self.jump))
        return data


@dataclass(frozen=True)
class Explanation:
    name: str
    input: tuple[int, ...]
    output: tuple[int, ...]
    layers: tuple[LayerExplanation, ...]

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "name": self.name, "input": list(self.input),
                "output": list(self.output), "layers": [e.to_dict() for e in self.layers]}

    def __repr__(self) -> str:
        return (f"<Explanation {self.name}: {format_shape(self.input)} → "
                f"{format_shape(self.output)}, {len(self.layers)} "
                f"layer{'s' * (len(self.layers) != 1)}>")

    def _repr_html_(self) -> str:
        from .report import render_explanation
        return render_explanation(self, "html")


def explain(analysis: Analysis, layer: str | None = None) -> Explanation:
    """Every row's explanation; with `layer`, that row only, or the rows of that scope
    (`layer2` selects `layer2.down.body.conv1` and the rest). An unknown name raises
    ValueError naming the closest row."""
    fields = {INPUT: (tuple(1 for _ in analysis.input[1:]),) * 2}
    fields.update({row.name: (row.rf, row.jump) for row in analysis.rows})
    chosen = [(row, node) for row, node in zip(analysis.rows, analysis.nodes)
              if layer is None or row.name == layer or row.name.startswith(layer + ".")]
    if not chosen:
        # rows and their scopes: `layer9` is closest to the scope `layer4`, not to a row in it
        names = {".".join(parts[:end]) for parts in (row.name.split(".") for row in analysis.rows)
                 for end in range(1, len(parts) + 1)}
        raise ValueError(f"no layer is named {layer!r}{suggest(layer, sorted(names))}")
    kept = dict(zip((row.name for row in analysis.rows), kept_tensors(analysis, batch=1)))
    return Explanation(analysis.name, analysis.input, analysis.output, tuple(
        _explain_row(row, node.layer, [fields[source] for source in row.inputs], kept[row.name])
        for row, node in chosen))


def _explain_row(row: Row, layer, sources, kept) -> LayerExplanation:
    facts = row.facts
    text = layer.explain(facts)
    return LayerExplanation(
        saved=tuple((t.kept.tensor, t.kept.shape, t.bytes, t.counted_by) for t in kept),
        saved_bytes=sum(t.bytes for t in kept if t.new),
        name=row.name, type=row.type, layer=row.layer, inputs=facts.inputs,
        output=row.output, shape=tuple(text["shape"]), params=row.params,
        params_formula=text["params"], frozen=row.params > 0 and row.trainable == 0,
        buffers=row.buffers, buffers_formula=text["buffers"], macs=row.macs,
        macs_formula=text["macs"], rf=row.rf or None, jump=row.jump or None,
        rf_formula=_rf_formula(facts.window, sources) if row.rf else None)


def _rf_formula(window, sources) -> str:
    """`rf = 4 + (3−1)·2 = 8, jump = 2·1 = 2`: one axis, or each axis where they differ.
    Where paths merge, the largest receptive field and jump over the inputs count."""
    axes = len(window)
    rf_in = tuple(max(rf[a] for rf, _ in sources) for a in range(axes))
    jump_in = tuple(max(jump[a] for _, jump in sources) for a in range(axes))
    merged = ""
    if len(sources) > 1:
        merged = (f"largest over {len(sources)} inputs: rf max("
                  + ", ".join(_size(rf) for rf, _ in sources) + f") = {_size(rf_in)}, jump max("
                  + ", ".join(_size(j) for _, j in sources) + f") = {_size(jump_in)}")
    steps = []
    for r, j, (k, s) in zip(rf_in, jump_in, window):
        if (k, s) == (1, 1):
            steps.append(f"rf {r}, jump {j}: unchanged")
        else:
            steps.append(f"rf = {r} + ({k}−1)·{j} = {r + (k - 1) * j}, "
                         f"jump = {j}·{s} = {j * s}")
    if len(set(steps)) == 1:
        step = steps[0]
    else:
        step = "; ".join(f"{axis}: {text}" for axis, text in zip(axis_names(axes), steps))
    if merged and all(w == (1, 1) for w in window):
        return merged
    return f"{merged}; {step}" if merged else step


def _size(values: tuple[int, ...]) -> str:
    return str(values[0]) if len(set(values)) == 1 else "×".join(map(str, values))
