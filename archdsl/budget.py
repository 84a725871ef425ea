"""Budget assertions: `assert params < 100k` in a spec, checked against the analysis' totals.

A bound is a number with an optional suffix, case-insensitive: k, M, G multiply by 10³, 10⁶,
10⁹; Ki, Mi, Gi by 2¹⁰, 2²⁰, 2³⁰ (for the byte metrics, whose bounds may end in B: 8GiB).
`archdsl check` prints every assertion's result and exits 1 when one fails, naming it with its
position in the spec.
"""
from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from .binding import resolve
from .errors import ArchDSLError

if TYPE_CHECKING:  # the parser imports this module; keep it free of the analysis at import
    from .analysis import Analysis
    from .ir import AssertDecl

# Metric -> what it measures. Each is a total of the analysis (see analysis.Totals).
METRICS = {
    "params": "parameters",
    "trainable": "trainable parameters",
    "non_trainable": "non-trainable (frozen) parameters",
    "weights": "parameters named weight",
    "biases": "parameters named bias",
    "buffers": "buffer elements (running statistics)",
    "macs": "multiply-accumulates per example",
    "depth": "conv and linear layers",
    "layers": "rows of the analysis",
    "param_bytes": "parameter memory in bytes, float32",
    "activation_bytes": "forward activation memory in bytes, float32, at the --batch",
    "train_memory": "training memory in bytes (parameters, buffers, gradients, optimizer state "
                    "and what backward keeps) with the spec's train(...) settings, at the "
                    "--batch, else its train(batch_size=…)",
    "output": "elements of the network's output",
}

# The metrics that count bytes: their bounds may end in B (8GiB).
BYTE_METRICS = ("param_bytes", "activation_bytes", "train_memory")

SUFFIXES = {"": 1, "k": 10 ** 3, "m": 10 ** 6, "g": 10 ** 9,
            "ki": 2 ** 10, "mi": 2 ** 20, "gi": 2 ** 30}
_BOUND = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([kmg]i?)?b?", re.IGNORECASE)

COMPARATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def parse_bound(text: str) -> Decimal:
    """`100k` -> 100000, `1.5M` -> 1500000, `2Mi` and `2MiB` -> 2097152 (exact, as a Decimal)."""
    match = _BOUND.fullmatch(text)
    if match is None:
        raise ValueError(f"not a bound: {text!r}")
    number, suffix = match.groups()
    return Decimal(number) * SUFFIXES[(suffix or "").lower()]


def metric_value(analysis: "Analysis", metric: str, memory=None) -> int:
    """The metric's value; `memory`, the TrainingMemory that train_memory reads (by default
    the step `archdsl train` would take with the spec's settings)."""
    if metric == "train_memory":
        from .memory import planned_training_memory
        return (memory or planned_training_memory(analysis)).total
    if metric == "layers":
        return len(analysis.rows)
    if metric == "output":
        return math.prod(analysis.output)
    return getattr(analysis.totals, metric)


@dataclass(frozen=True)
class BudgetResult:
    assertion: "AssertDecl"
    bound: int | float  # the assertion's bound resolved to a builtin (binding.resolve)
    value: int
    passed: bool

    @property
    def statement(self) -> str:
        """The assertion as written, with canonical spacing: `params < 100k`."""
        a = self.assertion
        return f"{a.metric} {a.comparator} {a.text}"

    def to_dict(self) -> dict:
        a = self.assertion
        return {"metric": a.metric, "comparator": a.comparator, "bound": self.bound,
                "bound_text": a.text, "value": self.value, "passed": self.passed,
                "line": a.span.line, "column": a.span.column}


class BudgetError(ArchDSLError):
    """An assertion of the spec does not hold: rendered at the assert line; exit code 1."""

    exit_code = 1


def check_budget(analysis: "Analysis", memory=None) -> list[BudgetResult]:
    """Every assertion of the analysed spec, in the order written, with its metric's value
    (train_memory from `memory`, a memory.TrainingMemory, where given)."""
    spec = analysis.spec
    results = []
    for assertion in (spec.assertions if spec is not None else ()):
        value, bound = metric_value(analysis, assertion.metric, memory), resolve(assertion.bound)
        passed = COMPARATORS[assertion.comparator](value, bound)
        results.append(BudgetResult(assertion, bound, value, passed))
    return results


def failures(results: list[BudgetResult]) -> list[BudgetError]:
    """One error per failed assertion, positioned at its assert line."""
    errors = []
    for result in results:
        if result.passed:
            continue
        a = result.assertion
        shown = a.text if a.text == str(result.bound) else f"{a.text} ({result.bound:,})"
        errors.append(BudgetError(
            f"assertion failed: {a.metric} is {result.value:,}, not {a.comparator} {shown}",
            a.span))
    return errors
