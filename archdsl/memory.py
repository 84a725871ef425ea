"""The memory of a training step, from the analysis alone: what autograd keeps for backward,
the model's state, and the inference peak (`archdsl check --batch`, `--fit`).

Each layer states what it keeps (Facts.saved, from Layer.kept); this module adds those up over
the network at a batch size, counting each storage once: a ReLU's output that the next
convolution keeps as its input is one tensor, and a view (Flatten, Chunk) keeps its root's
storage. Parameters and buffers are never counted there. Pure Python, like the analysis:
predicted in train mode on the CPU, in float32 or under bf16 autocast, as
torch.autograd.graph.saved_tensors_hooks measures it; parameters, gradients and optimizer state
(optimizers.OPTIMIZERS) as the tensors that exist after an optimizer step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .analysis import Analysis, FLOAT_BYTES
from .ir import INPUT
from .layers import Kept
from .optimizers import OPTIMIZERS


@dataclass(frozen=True)
class KeptTensor:
    """One tensor a row keeps for backward, at a batch size: its storage's bytes and the row
    that counts them (this row, or the earlier one that kept the same storage first)."""

    row: str
    kept: Kept
    bytes: int
    counted_by: str
    new: bool  # first counted here: a storage a row keeps twice (a · a) is counted once


# Bytes per element of each precision; fp16 is modelled as bf16 (autocast's lists are the same).
ITEMSIZES = {"float32": 4, "bf16": 2, "fp16": 2}


def kept_tensors(analysis: Analysis, batch: int, input_requires_grad: bool = False,
                 precision: str = "float32", input_precision: str = "float32"
                 ) -> tuple[tuple[KeptTensor, ...], ...]:
    """Per row, the tensors autograd keeps for its backward pass at this batch size. In
    training the network's input needs no gradient, so layers on it without parameters are not
    recorded at all; `input_requires_grad` takes the network as part of a larger one (a layer
    measured as it sits after layers with parameters). A view's storage is its root's; a
    parameter's (LayerScale's output) is no activation and is left out.

    precision "bf16": under torch.autocast on the CPU. A layer that autocast lowers computes in
    bfloat16 and keeps bfloat16 copies of its float32 input and of its weight; the others
    compute in their inputs' type (the widest of them), or in float32 where autocast says so.
    `input_precision`: the input's type (bf16: the network sits after a lowered layer)."""
    low = ITEMSIZES[precision]
    root: dict[str, str | None] = {INPUT: INPUT}  # each value's storage: a root row, the input
    itemsize = {INPUT: ITEMSIZES[input_precision]}  # each value's bytes per element
    size = {INPUT: batch * itemsize[INPUT] * math.prod(analysis.input)}
    grad = {INPUT: input_requires_grad}
    counted: dict[object, str] = {}  # storage -> the row that counts it
    seen: set = set()
    rows = []
    for row in analysis.rows:
        facts, sources = row.facts, row.inputs
        by_name = {("input" if i == 0 else f"input{i}"): source for i, source in enumerate(sources)}
        recorded = row.trainable > 0 or any(grad[source] for source in sources)
        grad[row.name] = recorded
        computes = {"lower": low, "float32": FLOAT_BYTES}.get(
            facts.autocast, max(itemsize[source] for source in sources))
        if facts.output_storage == "input":
            root[row.name], itemsize[row.name] = root[sources[0]], itemsize[sources[0]]
        elif facts.output_storage == "parameter":
            root[row.name], itemsize[row.name] = None, FLOAT_BYTES
        else:
            root[row.name], itemsize[row.name] = row.name, computes
            size[row.name] = batch * computes * math.prod(facts.output)
        found = []
        for kept in (Kept(*fields) for fields in facts.saved) if recorded else ():
            if kept.when and not any(grad[by_name[name]] for name in kept.when):
                continue
            if kept.parameter:  # counted only as the low-precision copy autocast makes
                if computes == FLOAT_BYTES:
                    continue
                storage = (row.name, kept.tensor)
                size[storage] = computes * math.prod(kept.shape)
            elif kept.tensor in by_name:
                source = by_name[kept.tensor]
                storage = root[source]
                if facts.autocast != "follow" and itemsize[source] != computes:
                    # autocast's copy in the layer's type (a product of two types promotes
                    # inside its kernel and keeps its factors as they are)
                    storage = (row.name, kept.tensor)
                    size[storage] = batch * computes * math.prod(kept.shape)
                elif kept.copied_above_batch_1 and batch > 1:
                    storage = (row.name, kept.tensor)
                    size[storage] = batch * itemsize[source] * math.prod(kept.shape)
            elif kept.tensor == "output":
                storage = root[row.name]
            else:  # a tensor of the layer's own
                storage = (row.name, kept.tensor)
                size[storage] = (batch if kept.per_example else 1) * math.prod(kept.shape) * \
                    (computes if kept.typed else kept.itemsize)
            if storage is None:
                continue
            found.append(KeptTensor(row.name, kept, size[storage],
                                    counted.setdefault(storage, row.name), storage not in seen))
            seen.add(storage)
        rows.append(tuple(found))
    return tuple(rows)


def saved_bytes(analysis: Analysis, batch: int, input_requires_grad: bool = False,
                precision: str = "float32", input_precision: str = "float32"
                ) -> tuple[tuple[int, ...], int]:
    """(the bytes each row keeps for backward that no earlier row kept, their total) at this
    batch size; see kept_tensors."""
    per_row = tuple(sum(t.bytes for t in tensors if t.new)
                    for tensors in kept_tensors(analysis, batch, input_requires_grad, precision,
                                                input_precision))
    return per_row, sum(per_row)


def live_bytes_peak(analysis: Analysis, batch: int) -> int:
    """The inference peak: the most activation bytes alive at once in a forward pass without
    grad, the input included (its caller holds it). A layer's inputs stay alive while it
    computes its output, and each storage is freed after the last layer that reads it (or a
    view of it); the network's output is returned, so it lives to the end. Within a layer, the
    tensors of its own helper module's steps are not counted."""
    rows = analysis.rows
    root: dict[str, str | None] = {INPUT: INPUT}
    size = {INPUT: batch * FLOAT_BYTES * math.prod(analysis.input)}
    born = {INPUT: -1}
    last = {INPUT: len(rows)}  # held by the caller throughout
    for index, row in enumerate(rows):
        storage = row.facts.inference_storage
        if storage == "input":
            root[row.name] = root[row.inputs[0]]
        elif storage == "parameter":
            root[row.name] = None
        else:
            root[row.name] = row.name
            size[row.name], born[row.name], last[row.name] = \
                batch * FLOAT_BYTES * math.prod(row.facts.output), index, index
        for source in (*row.inputs, row.name):
            if root[source] is not None:
                last[root[source]] = max(last[root[source]], index)
    if rows and root[rows[-1].name] is not None:
        last[root[rows[-1].name]] = len(rows)
    # One sweep: a storage's bytes join at the row that makes it and leave after its last reader.
    change = [0] * (len(rows) + 3)  # slot i + 1 for row i; slot 0 the input, before them
    for storage, bytes_ in size.items():
        change[born[storage] + 1] += bytes_
        change[last[storage] + 2] -= bytes_
    live, peak = change[0], size[INPUT]
    for index in range(1, len(rows) + 1):
        live += change[index]
        peak = max(peak, live)
    return peak


@dataclass(frozen=True)
class TrainingMemory:
    """What one training step holds, in bytes, at a batch size: every figure plain data.

    Counted: parameters, buffers, one gradient per trainable parameter, the optimizer's state,
    and what autograd keeps for backward (kept_tensors). Not counted: the allocator's rounding,
    cuDNN/oneDNN workspaces, the CUDA context, the loss's own small tensors, and gradients in
    flight during backward (the tensors it has freed by then are larger)."""

    batch: int
    precision: str  # "float32", or "bf16" / "fp16": what autocast lowers to
    optimizer: str  # its registry name
    optimizer_label: str  # "Adam", "SGD, momentum 0.9"
    momentum: float  # SGD's; the others keep no state by it
    parameters: int
    buffers: int
    gradients: int
    optimizer_state: int
    step_counters: int  # of optimizer_state: Adam's per-tensor step, kept on the CPU
    activations: int
    inference_peak: int  # parameters + buffers + the most activations alive at once, without
    #                      grad, in float32

    @property
    def total(self) -> int:
        return (self.parameters + self.buffers + self.gradients + self.optimizer_state +
                self.activations)

    def to_dict(self) -> dict:
        return {"batch": self.batch, "precision": self.precision, "optimizer": self.optimizer,
                "parameters": self.parameters, "buffers": self.buffers,
                "gradients": self.gradients, "optimizer_state": self.optimizer_state,
                "momentum": self.momentum, "step_counters": self.step_counters,
                "activations": self.activations,
                "total": self.total, "inference_peak": self.inference_peak}


def training_memory(analysis: Analysis, batch: int, optimizer: str = "adam",
                    momentum: float = 0.9, precision: str = "float32") -> TrainingMemory:
    """The memory of a training step with this optimizer (optimizers.OPTIMIZERS), in float32
    or under autocast (`precision` "bf16"): its parameters, gradients and optimizer state stay
    float32, and what it keeps for backward includes its 16-bit copies of the weights."""
    kind = OPTIMIZERS[optimizer]
    rows = analysis.rows
    trainable = analysis.totals.trainable * FLOAT_BYTES
    tensors = sum(len(row.facts.parameters) for row in rows if row.trainable)
    counters = 4 * tensors if kind.step_counters else 0
    parameters = analysis.totals.param_bytes
    buffers = sum(row.facts.buffer_bytes for row in rows)
    return TrainingMemory(
        batch=batch, precision=precision, optimizer=kind.name,
        optimizer_label=kind.describe(momentum),
        momentum=momentum,
        parameters=parameters, buffers=buffers, gradients=trainable,
        optimizer_state=kind.copies(momentum) * trainable + counters, step_counters=counters,
        activations=saved_bytes(analysis, batch, precision=precision)[1],
        inference_peak=parameters + buffers + live_bytes_peak(analysis, batch))


MAX_BATCH = 2 ** 31


def largest_batch(analysis: Analysis, budget: int, optimizer: str = "adam",
                  momentum: float = 0.9, precision: str = "float32") -> TrainingMemory | None:
    """The training memory at the largest batch whose total fits in `budget` bytes (at most
    MAX_BATCH), or None where not even one example fits. The total grows with the batch, so
    the search doubles, then halves."""
    def fits(batch):
        return training_memory(analysis, batch, optimizer, momentum, precision).total <= budget

    if not fits(1):
        return None
    low, high = 1, 2
    while high <= MAX_BATCH and fits(high):
        low, high = high, high * 2
    high = min(high, MAX_BATCH + 1)
    while high - low > 1:  # fits(low), not fits(high)
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return training_memory(analysis, low, optimizer, momentum, precision)


def planned_training_memory(analysis: Analysis, batch: int | None = None,
                            optimizer: str | None = None, amp: str | None = None
                            ) -> TrainingMemory:
    """The training memory of the step `archdsl train` would take: at `batch`, else the spec's
    train(batch_size=…), with `optimizer`, else the spec's (and its momentum), under `amp`
    ("off", "bf16", "fp16"), else the spec's; the trainer's defaults where the spec has no
    train(...) block."""
    from .train.config import TrainConfig  # torch-free: the settings only

    config = TrainConfig.from_spec(analysis.spec) if analysis.spec is not None else TrainConfig()
    amp = amp or config.amp
    return training_memory(analysis, batch or config.batch_size, optimizer or config.optimizer,
                           config.momentum, "float32" if amp == "off" else amp)
