"""What the trainer shows: a live bar per epoch (rich, on terminals only) and one line per epoch."""
from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn


class EpochProgress:
    def __init__(self, enabled: bool, stream=None):
        self.console = Console(file=stream or sys.stderr)
        self.enabled = enabled and self.console.is_terminal
        self.progress = None

    def start(self, label: str, total_images: int) -> None:
        self.started = time.perf_counter()
        if not self.enabled:
            return
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  {task.fields[rate]:,.0f} img/s"),
            TimeRemainingColumn(), console=self.console, transient=True)
        self.progress.start()
        self.task = self.progress.add_task(label, total=total_images, loss=float("nan"), rate=0.0)

    def update(self, images: int, loss: float) -> None:
        if self.progress is not None:
            rate = images / max(1e-9, time.perf_counter() - self.started)
            self.progress.update(self.task, completed=images, loss=loss, rate=rate)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
