"""Static analysis: every layer's shapes, parameters, buffers, MACs and receptive field.

Pure Python on purpose: `check` and `compare` answer without importing torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .errors import ArchDSLError, ArchDSLWarning, InputShapeError, ShapeError, START, call_site
from .ir import INPUT, MAX_ELEMENTS, Node, Spec, parse_shape
from .lowering import lower
from .layers import Facts, format_shape, Shape

SCHEMA = "archdsl.analysis/1"
FLOAT_BYTES = 4  # float32 parameters and activations


@dataclass(frozen=True)
class Row:
    """One layer, as data, read from its Facts. `biases` are the parameters the layer counts as
    biases, `weights` the others."""

    name: str
    type: str
    layer: str
    args: dict
    input: Shape  # the first input's shape; input_shapes has every input's
    output: Shape
    params: int
    weights: int
    biases: int
    trainable: int
    buffers: int
    macs: int
    rf: tuple[int, ...] | None
    jump: tuple[int, ...] | None
    inputs: tuple[str, ...]  # the rows (or "input") this layer reads
    facts: Facts = field(repr=False)  # what the layer resolved to; explain and compiler read it

    @property
    def input_shapes(self) -> tuple[Shape, ...]:
        return self.facts.inputs

    @property
    def parameter_shapes(self) -> dict[str, Shape]:
        return dict(self.facts.parameters)

    @property
    def buffer_shapes(self) -> dict[str, Shape]:
        return dict(self.facts.buffers)


@dataclass(frozen=True)
class Totals:
    params: int
    trainable: int
    non_trainable: int
    weights: int
    biases: int
    buffers: int
    macs: int
    param_bytes: int
    activation_bytes: int
    batch: int
    depth: int  # layers that do multiply-accumulates: conv and linear


@dataclass(frozen=True)
class Analysis:
    name: str
    input: Shape
    output: Shape
    rows: tuple[Row, ...]
    totals: Totals
    nodes: tuple[Node, ...] = field(repr=False)
    spec: Spec | None = field(default=None, repr=False)
    # What works but almost surely means something else; the CLI prints them.
    warnings: tuple[ArchDSLWarning, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict:
        """The stable JSON form, schema archdsl.analysis/1."""
        return {
            "schema": SCHEMA, "name": self.name,
            "input": list(self.input), "output": list(self.output),
            "layers": [_row_dict(row) for row in self.rows],
            "totals": vars(self.totals).copy(),
        }

    def __repr__(self) -> str:
        return (f"<Analysis {self.name}: {format_shape(self.input)} → {format_shape(self.output)}, "
                f"{len(self.rows)} layer{'s' * (len(self.rows) != 1)}, "
                f"{self.totals.params:,} parameters, "
                f"{self.totals.macs:,} MACs>")

    def _repr_html_(self) -> str:
        """A notebook's display: what `check` prints, its table, totals and the spec's
        assertions (report.render_check), with the warnings check prints to standard error.
        Analysed at a batch above 1, also the memory of a training step at it, as
        `check --batch` prints it."""
        from .budget import check_budget
        from .memory import planned_training_memory
        from .report import render_check
        memory = planned_training_memory(self, self.totals.batch) if self.totals.batch > 1 \
            else None
        return render_check(self, check_budget(self, memory), "html", memory)


def analyze(spec: Spec | str, input: Shape | str | None = None, batch: int = 1) -> Analysis:
    """Analyze a spec (or spec text) for an input shape: the spec's own unless `input` is given."""
    if isinstance(spec, str):
        from .parser import parse
        spec = parse(spec)
    shape = _input_shape(spec, input)
    warnings = input_warnings(shape, spec.input.span if input is None else None)
    nodes = lower(spec)
    shapes: dict[str, Shape] = {INPUT: shape}
    fields = {INPUT: (tuple(1 for _ in shape[1:]), tuple(1 for _ in shape[1:]))}
    rows = []
    for node in nodes:
        try:
            row = _analyze_node(node, shapes, fields)
        except ArchDSLError as error:
            error.warnings = tuple(warnings)  # a batch axis in the input may be the cause
            raise _placed(error, node, nodes, spec.text)
        order = node.torch_order
        if order is not None and order.size == row.input[0] and order.likely and \
                not any(w.span == node.span for w in warnings):  # once for a repeat's copies
            warnings.append(_placed(ArchDSLWarning(
                f"archdsl infers the {node.layer.torch_inferred} ({order.size} here) from the "
                f"input; write {order.rewritten}",
                hint=f"as written, archdsl reads {order.reading}; to mean that, give "
                     f"{order.last} by keyword"), node, nodes, spec.text))
        shapes[node.name] = row.output
        fields[node.name] = (row.rf, row.jump)
        rows.append(row)
    warnings += _unmultiplied_factors(nodes, rows, spec.text, warnings)
    return Analysis(spec.filename, shape, rows[-1].output, tuple(rows), _totals(rows, batch),
                    nodes, spec, tuple(warnings))


def _unmultiplied_factors(nodes, rows, text: str, earlier) -> list[ArchDSLWarning]:
    """A factor (LayerScale: the scale alone, C×1×1) that no product multiplies by: it was
    meant to scale its input, which is `LayerScale * [block]`."""
    multiplied = {source for node in nodes if node.layer.multiplies for source in node.inputs}
    found = []
    for node, row in zip(nodes, rows):
        if not node.layer.factor or node.name in multiplied or                 any(w.span == node.span for w in [*earlier, *found]):
            continue
        found.append(_placed(ArchDSLWarning(
            f"{row.type}'s output is the factor alone ({format_shape(row.output)}), not its "
            f"input scaled: multiply a branch by it",
            hint=f"{row.type}(…) * [block] multiplies the block's output by it"),
            node, nodes, text))
    return found


def input_warnings(shape: Shape, span) -> list[ArchDSLWarning]:
    """An input that reads as C×H×W but was meant otherwise: an image without its channel axis
    (28x28, a 1-D input of 28 channels), with a batch axis (1x1x28x28, a 3-D input), or with
    its channels last (28x28x1)."""
    text = "x".join(map(str, shape))
    if len(shape) == 2 and shape[0] == shape[1] >= 8:
        meaning, advice = (f"{shape[0]} channels of length {shape[1]} (a 1-D input)",
                           f"for one channel of {shape[0]}×{shape[1]}, write input 1x{text}")
    elif len(shape) == 4 and shape[1] <= 4 < shape[2]:
        meaning, advice = (f"{shape[0]} channel{'s' * (shape[0] != 1)} of "
                           f"{'×'.join(map(str, shape[1:]))} (a 3-D input)",
                           f"drop the batch axis: input {'x'.join(map(str, shape[1:]))}")
    elif len(shape) == 3 and shape[2] <= 4 < shape[0]:
        meaning, advice = (f"{shape[0]} channels of {shape[1]}×{shape[2]}",
                           f"channels first: input {shape[2]}x{shape[0]}x{shape[1]}")
    else:
        return []
    return [ArchDSLWarning(f"input {text} reads as {meaning}: the input is C×H×W without the "
                           f"batch axis; {advice}", span)]


def _placed(error: ArchDSLError, node: Node, nodes: tuple[Node, ...], text: str) -> ArchDSLError:
    """The error at the node's call. Where that call stands for several layers (a repeat's body,
    a definition's), notes name the failing one and the definition calls it came from."""
    error.at(node.span)
    if node.expanded_from or sum(other.span == node.span for other in nodes) > 1:
        error.notes.append(f"in layer {node.name}")
        error.notes += ["expanded from " + call_site(text, span)
                        for span in reversed(node.expanded_from)]
    return error


def _input_shape(spec: Spec, given) -> Shape:
    if isinstance(given, str):
        return parse_shape(given)
    if given is not None:
        return parse_shape("x".join(map(str, given)))
    if spec.input is None:
        raise InputShapeError("the spec declares no input shape", START,
                              hint="add a line such as 'input 1x28x28' or pass --input 1x28x28")
    return spec.input.shape


def _analyze_node(node: Node, shapes, fields) -> Row:
    layer = node.layer
    facts = layer.resolve(*(shapes[source] for source in node.inputs))
    if math.prod(facts.output) > MAX_ELEMENTS:  # as the input: beyond this no count is real
        raise ShapeError(f"the output is too large: more than {MAX_ELEMENTS:,} elements")
    params, biases = facts.params, facts.bias_count
    rf, jump = _receptive_field(facts.window, [fields[source] for source in node.inputs])
    return Row(
        name=node.name, type=layer.dsl_name, layer=facts.description,
        args={k: v for k, v in vars(layer).items()}, input=facts.inputs[0], output=facts.output,
        params=params, weights=params - biases, biases=biases,
        trainable=0 if layer.frozen else params, buffers=facts.buffer_count, macs=facts.macs,
        rf=rf, jump=jump, inputs=node.inputs, facts=facts)


def _receptive_field(window, sources):
    """Grow the receptive field through one layer: rf += (k − 1)·jump, jump *= stride. Where
    paths merge, the largest receptive field (and jump) over the paths counts."""
    if window is None or any(rf is None for rf, _ in sources):
        return None, None
    rf = tuple(map(max, *(rf for rf, _ in sources))) if len(sources) > 1 else sources[0][0]
    jump = tuple(map(max, *(j for _, j in sources))) if len(sources) > 1 else sources[0][1]
    return (tuple(r + (k - 1) * j for (k, _), r, j in zip(window, rf, jump)),
            tuple(j * s for (_, s), j in zip(window, jump)))


def _totals(rows: list[Row], batch: int) -> Totals:
    params = sum(r.params for r in rows)
    trainable = sum(r.trainable for r in rows)
    return Totals(
        params=params, trainable=trainable, non_trainable=params - trainable,
        weights=sum(r.weights for r in rows), biases=sum(r.biases for r in rows),
        buffers=sum(r.buffers for r in rows), macs=sum(r.macs for r in rows),
        param_bytes=params * FLOAT_BYTES,
        activation_bytes=batch * FLOAT_BYTES * sum(math.prod(r.output) for r in rows),
        batch=batch, depth=sum(1 for r in rows if r.macs))


def _row_dict(row: Row) -> dict:
    data = {k: v for k, v in vars(row).items() if k != "facts"}
    data.update(input=list(row.input), output=list(row.output), inputs=list(row.inputs),
                rf=list(row.rf) if row.rf else None, jump=list(row.jump) if row.jump else None,
                args={k: list(v) if isinstance(v, tuple) else v for k, v in row.args.items()})
    return data
