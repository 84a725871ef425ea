"""curves.png and confusion.png: the run's loss and accuracy from the metrics records, and the
test split's confusion matrix.

Figures are made without pyplot, so that neither a file nor `run.plot()` changes the backend
a notebook shows its own plots with.
"""
from __future__ import annotations

import io
from pathlib import Path

from ..files import replace_file

ANNOTATED_CLASSES = 20  # up to this many classes, each cell of the matrix shows its count


def _figure(**kwargs):
    """A matplotlib Figure that a notebook shows as PNG."""
    from matplotlib.figure import Figure

    class Shown(Figure):
        # IPython shows a Figure through the formatter pyplot's inline backend registers; this
        # one, made without pyplot, says how to show itself.
        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            self.savefig(buffer, dpi=100, format="png")
            return buffer.getvalue()

    return Shown(**kwargs)


def curves_figure(records: list[dict]):
    """Loss and accuracy against the epoch, train and (where held out) validation, and the
    training loss within each epoch where the records have it (their "step_losses")."""
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in records]
    figure = _figure(figsize=(10, 4))
    loss_axis, accuracy_axis = figure.subplots(1, 2)
    # Each point of the records is a mean over a stretch of steps: a stair over that stretch.
    for index, (edges, losses) in enumerate(_within_epochs(records)):
        loss_axis.stairs(losses, edges, baseline=None, color="tab:blue", alpha=0.4,
                         label="train, within epochs" if index == 0 else None)
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


def _within_epochs(records: list[dict]) -> list[tuple[list[float], list[float]]]:
    """Per epoch with "step_losses", (the stretches' edges on the epoch axis, their losses): the
    stretch ending at step s of an epoch of n steps ends at epoch - 1 + s / n."""
    stairs = []
    for record in records:
        points = record.get("step_losses")
        if points:
            steps = points[-1][0]
            edges = [record["epoch"] - 1 + step / steps for step in [0] + [s for s, _ in points]]
            stairs.append((edges, [loss for _, loss in points]))
    return stairs


def confusion_figure(confusion: list[list[int]], classes: list[str]):
    """The confusion matrix (rows: true class, columns: predicted), each row shaded by its share
    of the class's examples, so that classes of different sizes compare."""
    count = len(classes)
    size = min(12.0, max(4.5, 0.6 * count + 2))
    figure = _figure(figsize=(size, size * 0.9))
    axis = figure.subplots()
    shares = [[cell / max(1, sum(row)) for cell in row] for row in confusion]
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04, label="share of the true class")
    if count <= ANNOTATED_CLASSES:
        for true, row in enumerate(confusion):
            for predicted, cell in enumerate(row):
                axis.text(predicted, true, str(cell), ha="center", va="center", fontsize=8,
                          color="white" if shares[true][predicted] > 0.5 else "black")
    axis.set_xticks(range(count), classes, rotation=45, ha="right", rotation_mode="anchor")
    axis.set_yticks(range(count), classes)
    total = sum(map(sum, confusion))
    right = sum(confusion[i][i] for i in range(count))
    axis.set(xlabel="predicted", ylabel="true",
             title=f"test split: {right:,} of {total:,} right ({right / max(1, total):.2%})")
    figure.tight_layout()
    return figure


def save_figure(figure, path: Path) -> None:
    # Saved through a fresh file and a rename, as every run file is: never through a link.
    replace_file(path, lambda handle: figure.savefig(handle, dpi=100, format="png"))
