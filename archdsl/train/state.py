"""What a training carries from one epoch to the next, and keeps in last.pt: the model, its
optimizer, learning-rate schedule and fp16 loss scaler, the record of every epoch so far, the best
monitored loss and the epochs since it improved.

The checkpoint's keys are those of every run so far: "model", "optimizer", "scheduler", "epoch",
"history", "best", "stale", "rng" (rank 0's random state), "config", and with several processes
"rng_per_rank". The loss scaler's state is not among them: a resumed fp16 run starts from a fresh
scale, which GradScaler re-learns within a few steps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import averaging, checkpoint
from .config import TrainConfig
from .setup import make_optimizer, make_scheduler


@dataclass
class TrainState:
    model: torch.nn.Module  # the module itself, not its DDP or compiled wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    steps_per_batch: bool  # whether the scheduler steps after every batch, not every epoch
    scaler: torch.amp.GradScaler | None  # with --amp fp16
    config: TrainConfig
    history: list[dict] = field(default_factory=list)  # a record per epoch, as metrics.jsonl
    best: float = math.inf  # the lowest monitored loss so far (validation, else training)
    stale: int = 0  # epochs since it was reached
    epoch: int = 0  # the last completed epoch
    ema: object = None  # --ema: the moving average of the weights (averaging.averaged)

    @classmethod
    def fresh(cls, model: torch.nn.Module, config: TrainConfig, steps_per_epoch: int,
              device: torch.device) -> "TrainState":
        """Epoch 0 of a run: the optimizer, schedule and scaler the configuration asks for."""
        optimizer = make_optimizer(config, model)
        scheduler, steps_per_batch = make_scheduler(config, optimizer, steps_per_epoch)
        scaler = torch.amp.GradScaler(device.type) if config.amp == "fp16" else None
        return cls(model, optimizer, scheduler, steps_per_batch, scaler, config,
                   ema=averaging.averaged(model, config.ema))

    def end_epoch(self, record: dict, monitored: float) -> bool:
        """Count the epoch (its `record` joins the history); whether `monitored` improved on the
        best so far, which makes this epoch's checkpoint best.pt."""
        self.history.append(record)
        self.epoch = record["epoch"]
        improved = monitored < self.best
        self.best, self.stale = (monitored, 0) if improved else (self.best, self.stale + 1)
        return improved

    def to_checkpoint(self, random_states: list[dict]) -> dict:
        """The state as plain data and tensors for torch.save; `random_states` is every
        process's (World.random_states)."""
        saved = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                 "epoch": self.epoch, "history": self.history, "best": self.best,
                 "stale": self.stale, "rng": random_states[0], "config": self.config.to_dict()}
        if len(random_states) > 1:
            saved["rng_per_rank"] = random_states
        if self.ema is not None:
            saved["ema"] = averaging.state(self.ema)
        return saved

    def restore(self, saved: dict, source: Path, world) -> None:
        """Continue from `saved`, a checkpoint read from `source` (last.pt) by checkpoint.load:
        a RunError where its weights or its schedule do not fit this run."""
        checkpoint.load_model(self.model, saved, source)
        checkpoint.check_schedule(saved, self.config, self.scheduler, source.parent)
        self.optimizer.load_state_dict(saved["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(saved["scheduler"])
        self.history, self.best, self.stale = saved["history"], saved["best"], saved["stale"]
        self.epoch = saved["epoch"]
        if self.ema is not None:
            averaging.restore(self.ema, saved.get("ema"))
        world.restore_random_states(saved, self.config.seed)
