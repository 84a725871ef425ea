"""Loss, accuracy and the confusion matrix of a model over batches."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..analysis import Analysis
from ..compiler import build
from ..errors import RunError
from . import checkpoint
from .batches import make_batches
from .data import check_fits, load_dataset
from .setup import pick_device


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    confusion: torch.Tensor  # [true class, predicted class] counts

    @property
    def per_class(self) -> list[float]:
        totals = self.confusion.sum(1).clamp(min=1)
        return (self.confusion.diag() / totals).tolist()


@torch.no_grad()
def evaluate(model, batches, num_classes: int, batch_size: int = 1024, autocast=None,
             reduce=None, tta: str = "off") -> Evaluation:
    """`reduce`, where given, sums the device tensors across processes before they are read.
    `tta`: score each image by the mean logits of its test-time augmentations (see tta_logits)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device if any(True for _ in model.parameters()) else None
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
    for images, labels in batches(batch_size):
        with autocast() if autocast else torch.autocast("cpu", enabled=False):
            outputs = model(images) if tta == "off" else tta_logits(model, images, tta)
        loss_sum += F.cross_entropy(outputs.float(), labels, reduction="sum").double()
        confusion += torch.bincount(labels * num_classes + outputs.argmax(1),
                                    minlength=num_classes * num_classes)
    if reduce is not None:
        loss_sum, confusion = reduce(loss_sum), reduce(confusion)
    model.train(was_training)
    confusion = confusion.view(num_classes, num_classes).cpu()
    count = max(1, int(confusion.sum()))
    return Evaluation(float(loss_sum) / count, float(confusion.diag().sum()) / count, confusion)


def tta_logits(model, images: torch.Tensor, tta: str) -> torch.Tensor:
    """airbench's test-time augmentation: "flip" averages the logits of each image and its
    mirror image; "flip-shift" averages that with the same for the image shifted by one pixel
    up and left and by one down and right (reflect padding), weighing the plain view half."""
    def mirrored(x):
        return 0.5 * model(x).float() + 0.5 * model(x.flip(-1)).float()

    logits = mirrored(images)
    if tta == "flip":
        return logits
    if tta != "flip-shift":
        raise ValueError(f"unknown test-time augmentation {tta!r}")
    height, width = images.shape[-2:]
    padded = F.pad(images, (1, 1, 1, 1), mode="reflect")
    shifted = [padded[..., :height, :width], padded[..., 2:height + 2, 2:width + 2]]
    return 0.5 * logits + 0.5 * torch.stack([mirrored(x) for x in shifted]).mean(0)


def evaluate_checkpoint(analysis: Analysis, path: Path, *, dataset: str | None = None,
                        data_dir: str | None = None, device: str = "auto",
                        ema: bool = False) -> dict:
    """Test-split accuracy, per-class accuracy and confusion matrix of a saved model, as data;
    `ema`: of the moving average of its weights that the run kept (--ema)."""
    state = checkpoint.load(path)
    if ema:
        from .averaging import weights
        state = {**state, "model": weights(state, path)}
    saved = state.get("config", {})
    target = pick_device(device)
    num_classes = analysis.output[0] if len(analysis.output) == 1 else None
    data = load_dataset(dataset or saved.get("dataset", "fashion-mnist"),
                        data_dir or saved.get("data_dir"), input_shape=analysis.input,
                        num_classes=num_classes)
    check_fits(analysis.input, analysis.output, data)
    if data.test is None:
        raise RunError(f"{data.name} has no test split to evaluate on")
    model = build(analysis).to(target)
    checkpoint.load_model(model, state, path)
    result = evaluate(model, make_batches(data.test, None, target), len(data.classes))
    return {"dataset": data.name, "checkpoint": str(path), "epoch": state.get("epoch"),
            **({"weights": "ema"} if ema else {}),
            "examples": int(result.confusion.sum()), "loss": result.loss,
            "accuracy": result.accuracy, "classes": data.classes,
            "per_class": result.per_class, "confusion": result.confusion.tolist()}
