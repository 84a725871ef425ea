"""What autograd keeps for the backward pass of a training step, from the analysis alone.

Each layer states what it keeps (Facts.saved, from Layer.kept); this module adds those up over
the network at a batch size, counting each storage once: a ReLU's output that the next
convolution keeps as its input is one tensor, and a view (Flatten, Chunk) keeps its root's
storage. Parameters and buffers are never counted. Pure Python, like the analysis: predicted
for float32 on the CPU, in train mode, as torch.autograd.graph.saved_tensors_hooks measures it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .analysis import Analysis, FLOAT_BYTES
from .ir import INPUT
from .layers import Kept


@dataclass(frozen=True)
class KeptTensor:
    """One tensor a row keeps for backward, at a batch size: its storage's bytes and the row
    that counts them (this row, or the earlier one that kept the same storage first)."""

    row: str
    kept: Kept
    bytes: int
    counted_by: str
    new: bool  # first counted here: a storage a row keeps twice (a · a) is counted once


def kept_tensors(analysis: Analysis, batch: int, input_requires_grad: bool = False
                 ) -> tuple[tuple[KeptTensor, ...], ...]:
    """Per row, the tensors autograd keeps for its backward pass at this batch size. In
    training the network's input needs no gradient, so layers on it without parameters are not
    recorded at all; `input_requires_grad` takes the network as part of a larger one (a layer
    measured as it sits after layers with parameters). A view's storage is its root's; a
    parameter's (LayerScale's output) is no activation and is left out."""
    root: dict[str, str | None] = {INPUT: INPUT}  # each value's storage: a root row, the input
    size = {INPUT: batch * FLOAT_BYTES * math.prod(analysis.input)}
    grad = {INPUT: input_requires_grad}
    counted: dict[object, str] = {}  # storage -> the row that counts it
    seen: set = set()
    rows = []
    for row in analysis.rows:
        facts, sources = row.facts, row.inputs
        by_name = {("input" if i == 0 else f"input{i}"): source for i, source in enumerate(sources)}
        recorded = row.trainable > 0 or any(grad[source] for source in sources)
        grad[row.name] = recorded
        if facts.output_storage == "input":
            root[row.name] = root[sources[0]]
        elif facts.output_storage == "parameter":
            root[row.name] = None
        else:
            root[row.name] = row.name
            size[row.name] = batch * FLOAT_BYTES * math.prod(facts.output)
        found = []
        for kept in (Kept(*fields) for fields in facts.saved) if recorded else ():
            if kept.when and not any(grad[by_name[name]] for name in kept.when):
                continue
            if kept.tensor in by_name and not (kept.copied_above_batch_1 and batch > 1):
                storage = root[by_name[kept.tensor]]
            elif kept.tensor == "output":
                storage = root[row.name]
            else:  # a tensor of the layer's own
                storage = (row.name, kept.tensor)
                size[storage] = (batch if kept.per_example else 1) * kept.itemsize * \
                    math.prod(kept.shape)
            if storage is None:
                continue
            found.append(KeptTensor(row.name, kept, size[storage],
                                    counted.setdefault(storage, row.name), storage not in seen))
            seen.add(storage)
        rows.append(tuple(found))
    return tuple(rows)


def saved_bytes(analysis: Analysis, batch: int,
                input_requires_grad: bool = False) -> tuple[tuple[int, ...], int]:
    """(the bytes each row keeps for backward that no earlier row kept, their total) at this
    batch size; see kept_tensors."""
    per_row = tuple(sum(t.bytes for t in tensors if t.new)
                    for tensors in kept_tensors(analysis, batch, input_requires_grad))
    return per_row, sum(per_row)
