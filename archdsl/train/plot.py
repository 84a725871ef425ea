"""curves.png: loss and accuracy per epoch, from the metrics records."""
from __future__ import annotations

from pathlib import Path

from ..files import replace_file


def plot_curves(records: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in records]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for split in ("train", "val"):
        if any(r.get(f"{split}_loss") is not None for r in records):
            loss_axis.plot(epochs, [r.get(f"{split}_loss") for r in records], "o-", label=split)
            accuracy_axis.plot(epochs, [r.get(f"{split}_accuracy") for r in records], "o-",
                               label=split)
    loss_axis.set(title="loss", xlabel="epoch")
    accuracy_axis.set(title="accuracy", xlabel="epoch")
    for axis in (loss_axis, accuracy_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    # Saved through a fresh file and a rename, as every run file is: never through a link.
    try:
        replace_file(path, lambda handle: figure.savefig(handle, dpi=100, format="png"))
    finally:
        plt.close(figure)
