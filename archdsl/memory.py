"""What autograd keeps for the backward pass of a training step, from the analysis alone.

Each layer states what it keeps (Facts.saved, from Layer.kept); this module adds those up over
the network at a batch size, counting each storage once: a ReLU's output that the next
convolution keeps as its input is one tensor, and a view (Flatten, Chunk) keeps its root's
storage. Parameters and buffers are never counted. Pure Python, like the analysis: predicted
for float32 on the CPU, in train mode, as torch.autograd.graph.saved_tensors_hooks measures it.
"""
from __future__ import annotations

import math

from .analysis import Analysis, FLOAT_BYTES
from .ir import INPUT


def saved_bytes(analysis: Analysis, batch: int,
                input_requires_grad: bool = False) -> tuple[tuple[int, ...], int]:
    """(the bytes each row keeps for backward that no earlier row kept, their total) at this
    batch size. In training the network's input needs no gradient: layers on it that have no
    parameters are not recorded at all. `input_requires_grad` measures a layer as it sits
    inside a network, after layers with parameters."""
    # Each value's storage: a root row (or the input), or None where it is a parameter's.
    root: dict[str, str | None] = {INPUT: INPUT}
    size = {INPUT: batch * FLOAT_BYTES * math.prod(analysis.input)}
    grad = {INPUT: input_requires_grad}
    counted: set = set()
    per_row = []
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
        new = 0
        for kept in facts.saved if recorded else ():
            if kept.when and not any(grad[by_name[name]] for name in kept.when):
                continue
            if kept.tensor in by_name and not (kept.copied_above_batch_1 and batch > 1):
                storage = root[by_name[kept.tensor]]
                nbytes = size.get(storage, 0)
            elif kept.tensor == "output":
                storage, nbytes = root[row.name], size.get(root[row.name], 0)
            else:  # a tensor of the layer's own
                storage = (row.name, kept.tensor)
                nbytes = (batch if kept.per_example else 1) * kept.itemsize * \
                    math.prod(kept.shape)
            if storage is not None and storage not in counted:
                counted.add(storage)
                new += nbytes
        per_row.append(new)
    return tuple(per_row), sum(per_row)
