"""An exponential moving average of the weights (--ema DECAY), kept beside the trained ones.

torch.optim.swa_utils.AveragedModel with get_ema_multi_avg_fn: after each optimizer step,
ema = decay × ema + (1 − decay) × weights (the first step copies the weights). It averages the
buffers too (use_buffers=True): BatchNorm's running mean and variance then follow the averaged
weights step by step. Without that the copy would keep the statistics it was made with (those
of the untrained network) and evaluate wrongly, unless a pass over the data recomputed them
(update_bn), which would cost an epoch's forward passes at every evaluation. BatchNorm's step
counter (an integer) is averaged too and means nothing, but it is read only by a BatchNorm
without momentum, which archdsl does not build.

In a checkpoint the average is plain data beside the model: {"weights": a state_dict with the
model's own keys (so `archdsl eval --ema` loads it into the network the spec builds),
"updates": the number of steps averaged}.
"""
from __future__ import annotations

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..errors import RunError


def averaged(model: torch.nn.Module, decay: float) -> AveragedModel | None:
    """The moving average of `model`'s weights, or None where `decay` is 0 (off)."""
    if not decay:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def state(average: AveragedModel) -> dict:
    return {"weights": average.module.state_dict(), "updates": int(average.n_averaged)}


def restore(average: AveragedModel, saved: dict | None) -> None:
    """The average a checkpoint holds; None (a run that had none) leaves it to start afresh
    from the weights at the next step."""
    if saved is None:
        return
    average.module.load_state_dict(saved["weights"])
    average.n_averaged.fill_(saved["updates"])


def weights(checkpoint: dict, path) -> dict:
    """The averaged weights of a run's checkpoint, or a RunError where it has none."""
    saved = checkpoint.get("ema")
    if not isinstance(saved, dict) or not isinstance(saved.get("weights"), dict):
        raise RunError(f"{path} holds no averaged weights: its run trained without --ema",
                       hint="evaluate its own weights (without --ema)")
    return saved["weights"]
