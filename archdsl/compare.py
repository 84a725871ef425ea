"""Side-by-side comparison of analyses, and the MLP baseline generated from a spec."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .analysis import Analysis, analyze
from .layers import format_shape


@dataclass(frozen=True)
class Entry:
    analysis: Analysis
    weights_by_type: dict[str, int]  # e.g. {"Conv": 4752, "Linear": 201984}
    params_ratio: float  # to the first entry
    macs_ratio: float | None  # None where the first entry does no MACs


@dataclass(frozen=True)
class Comparison:
    """The entries of a comparison, ratios to the first; a sequence of them."""

    entries: tuple[Entry, ...]

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def __getitem__(self, index):
        return self.entries[index]

    def __repr__(self) -> str:
        shown = ", ".join(f"{e.analysis.name} {e.analysis.totals.params:,} parameters"
                          for e in self.entries)
        return f"<Comparison of {len(self.entries)}: {shown}>"

    def _repr_html_(self) -> str:
        """A notebook's display: `compare`'s table (report.render_comparison)."""
        from .report import render_comparison
        return render_comparison(self, "html")


def compare(analyses: list[Analysis]) -> Comparison:
    """Analyses side by side: each one's weights by layer type, its ratios to the first."""
    if not analyses:
        raise ValueError("compare needs at least one analysis")
    first = analyses[0].totals
    entries = []
    for analysis in analyses:
        by_type: dict[str, int] = {}
        for row in analysis.rows:
            if row.weights:
                by_type[row.type] = by_type.get(row.type, 0) + row.weights
        totals = analysis.totals
        entries.append(Entry(analysis, by_type,
                             totals.params / first.params if first.params else math.nan,
                             totals.macs / first.macs if first.macs else None))
    return Comparison(tuple(entries))


def parse_baseline(text: str) -> tuple[int, ...]:
    """`mlp:128,64` -> (128, 64). Raises ValueError with a readable message."""
    kind, _, widths = text.partition(":")
    if kind != "mlp":
        raise ValueError(f"unknown baseline {kind!r}: the only kind is mlp, as in mlp:128,64")
    try:
        hidden = tuple(int(w) for w in widths.split(",")) if widths else ()
    except ValueError:
        raise ValueError(f"hidden widths must be integers, as in mlp:128,64; got {widths!r}") \
            from None
    if any(w < 1 for w in hidden):
        raise ValueError(f"hidden widths must be positive, got {widths!r}")
    from .parser import MAX_DIGITS
    if any(len(str(w)) > MAX_DIGITS for w in hidden):
        raise ValueError(f"hidden widths must have at most {MAX_DIGITS} digits, got {widths!r}")
    return hidden


def mlp_baseline(reference: Analysis, hidden: tuple[int, ...]) -> Analysis:
    """The MLP that sees the same input and gives the same output size, written in archdsl."""
    steps = ["Flatten", *(f"Linear({w}) -> ReLU" for w in hidden),
             f"Linear({math.prod(reference.output)})"]
    text = f"input {format_shape(reference.input).replace('×', 'x')}\n" + " -> ".join(steps)
    from .parser import parse
    name = "mlp:" + ",".join(map(str, hidden)) if hidden else "mlp"
    return analyze(parse(text, f"{name} baseline"), batch=reference.totals.batch)
