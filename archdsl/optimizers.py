"""The optimizers `archdsl train` builds and `check` budgets for: one entry each, torch-free.

An entry says which torch class it is and what state it keeps per trainable parameter, so that
the trainer (train/setup.py) builds it and memory.py counts its state from the same place.
Adding an optimizer is one entry.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OptimizerKind:
    name: str  # as `train(optimizer=…)` and `--optimizer` spell it
    title: str  # as people write it: Adam, SGD
    torch_class: str  # "module:Class"
    state_copies: int  # tensors the size of each trainable parameter that its state holds
    takes_momentum: bool = False  # SGD: momentum=0 keeps no copy at all
    step_counters: bool = False  # one float32 scalar per parameter tensor ("step"), on the CPU

    def copies(self, momentum: float) -> int:
        """Parameter-sized tensors of state at this momentum (only SGD reads it)."""
        return 0 if self.takes_momentum and not momentum else self.state_copies

    def describe(self, momentum: float) -> str:
        """`SGD, momentum 0.9`, `Adam`: as a label of its state."""
        return f"{self.title}, momentum {momentum:g}" if self.takes_momentum else self.title


OPTIMIZERS: dict[str, OptimizerKind] = {}


def register(kind: OptimizerKind) -> OptimizerKind:
    if kind.name in OPTIMIZERS:
        raise ValueError(f"optimizer {kind.name!r} is registered already")
    OPTIMIZERS[kind.name] = kind
    return kind


register(OptimizerKind("sgd", "SGD", "torch.optim:SGD", 1, takes_momentum=True))
register(OptimizerKind("adam", "Adam", "torch.optim:Adam", 2, step_counters=True))
register(OptimizerKind("adamw", "AdamW", "torch.optim:AdamW", 2, step_counters=True))
