"""Device, optimizer, schedule, precision and data split, from the configuration."""
from __future__ import annotations

import contextlib
import importlib

import torch

from ..errors import RunError
from ..optimizers import OPTIMIZERS
from .config import TrainConfig


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise RunError(f"unknown device {name!r}", hint="use auto, cpu, cuda, cuda:N or mps") \
            from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RunError(f"--device {name}: CUDA is not available on this machine",
                           hint="use --device cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RunError(f"--device {name}: this machine has {torch.cuda.device_count()} "
                           f"CUDA device(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise RunError(f"--device {name}: MPS is not available on this machine",
                       hint="use --device cpu (or auto)")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise RunError(f"unsupported device {name!r}", hint="use auto, cpu, cuda, cuda:N or mps")
    return device


def make_optimizer(config: TrainConfig, model) -> torch.optim.Optimizer:
    kind = OPTIMIZERS[config.optimizer]
    module, name = kind.torch_class.split(":")
    settings = {"lr": config.lr}
    if kind.takes_momentum:
        settings["momentum"] = config.momentum
    if config.weight_decay is not None:  # None: the optimizer's own default
        settings["weight_decay"] = config.weight_decay
    parameters = [p for p in model.parameters() if p.requires_grad]
    return getattr(importlib.import_module(module), name)(parameters, **settings)


def make_scheduler(config: TrainConfig, optimizer, steps_per_epoch: int):
    """(scheduler or None, whether it steps per batch rather than per epoch)."""
    total = config.epochs * steps_per_epoch
    if config.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, config.step_size, config.gamma), False
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total), True
    if config.scheduler == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=total), True
    return None, False


def autocast_factory(amp: str, device: torch.device):
    if amp == "off":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    if amp == "fp16" and device.type != "cuda":
        raise RunError("--amp fp16 needs a CUDA device", hint="use --amp bf16 on the CPU")
    return lambda: torch.autocast(device.type, dtype=dtype)


def split_indices(count: int, config: TrainConfig):
    """(train indices, validation indices or None): the first `subset` examples, then a seeded
    hold-out of `val_split` of them."""
    if config.subset:
        count = min(count, config.subset)
    indices = torch.arange(count)
    if not config.val_split:
        return (indices if config.subset else None), None
    held = max(1, round(count * config.val_split))
    order = torch.randperm(count, generator=torch.Generator().manual_seed(config.seed))
    return indices[order[held:]].sort().values, indices[order[:held]].sort().values
