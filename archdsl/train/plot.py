"""curves.png: loss and accuracy per epoch, from the metrics records.

The figure is made without pyplot, so that neither a file nor `run.plot()` changes the backend
a notebook shows its own plots with.
"""
from __future__ import annotations

import io
from pathlib import Path

from ..files import replace_file


def curves_figure(records: list[dict]):
    """A matplotlib Figure: loss and accuracy against the epoch, train and (where held out)
    validation. A notebook shows it as PNG."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    class Curves(Figure):
        # IPython shows a Figure through the formatter pyplot's inline backend registers; this
        # one, made without pyplot, says how to show itself.
        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            self.savefig(buffer, dpi=100, format="png")
            return buffer.getvalue()

    epochs = [r["epoch"] for r in records]
    figure = Curves(figsize=(10, 4))
    loss_axis, accuracy_axis = figure.subplots(1, 2)
    for split in ("train", "val"):
        if any(r.get(f"{split}_loss") is not None for r in records):
            loss_axis.plot(epochs, [r.get(f"{split}_loss") for r in records], "o-", label=split)
            accuracy_axis.plot(epochs, [r.get(f"{split}_accuracy") for r in records], "o-",
                               label=split)
    loss_axis.set(title="loss", xlabel="epoch")
    accuracy_axis.set(title="accuracy", xlabel="epoch")
    for axis in (loss_axis, accuracy_axis):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    return figure


def plot_curves(records: list[dict], path: Path) -> None:
    figure = curves_figure(records)
    # Saved through a fresh file and a rename, as every run file is: never through a link.
    replace_file(path, lambda handle: figure.savefig(handle, dpi=100, format="png"))
