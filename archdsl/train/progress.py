"""What the trainer shows while an epoch runs: on a terminal a live bar (rich); elsewhere (a log
file, a notebook's `!archdsl train`, CI) a plain line every `every` steps. Each epoch then ends
with one line, which the loop prints."""
from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

LOG_EVERY = 100  # steps between plain lines: the tutorial printed its loss every 100 batches


class EpochProgress:
    def __init__(self, enabled: bool, stream=None, every: int = LOG_EVERY):
        self.stream = stream or sys.stderr
        self.console = Console(file=self.stream)
        self.enabled = enabled and self.console.is_terminal
        # The loop reads the loss every `every` steps on every rank alike, since under torchrun
        # that read is a collective; only here, with no terminal, does it print a line.
        self.every = every
        self.prints_lines = enabled and not self.enabled
        self.progress = None

    def start(self, label: str, total_images: int, total_steps: int) -> None:
        self.started = time.perf_counter()
        self.label, self.total_steps = label, total_steps
        if not self.enabled:
            return
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  {task.fields[rate]:,.0f} img/s"),
            TimeRemainingColumn(), console=self.console, transient=True)
        self.progress.start()
        self.task = self.progress.add_task(label, total=total_images, loss=float("nan"), rate=0.0)

    def due(self, step: int) -> bool:
        """Whether the loop reads the loss at `step` (the same answer on every rank), for a
        plain line where one is printed."""
        return bool(self.every) and step % self.every == 0

    def update(self, step: int, images: int, loss: float) -> None:
        rate = images / max(1e-9, time.perf_counter() - self.started)
        if self.progress is not None:
            self.progress.update(self.task, completed=images, loss=loss, rate=rate)
        elif self.prints_lines and self.due(step):
            print(f"{self.label}  step {step}/{self.total_steps}  loss {loss:.4f}  "
                  f"{rate:,.0f} img/s", file=self.stream, flush=True)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
