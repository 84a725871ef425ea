"""What the trainer shows while an epoch runs: on a terminal a live bar (rich); in a Jupyter
kernel (`archdsl.train(...)` in a notebook) a live bar in the cell's output; elsewhere (a log
file, a notebook's `!archdsl train`, CI) a plain line every `every` steps. Each epoch then ends
with one line, which the loop prints."""
from __future__ import annotations

import html
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


def epoch_progress(enabled: bool, every: int = LOG_EVERY):
    """The notebook's bar inside a Jupyter kernel, else the terminal's (or its plain lines)."""
    if enabled and _in_kernel():
        return NotebookProgress(every)
    return EpochProgress(enabled, every=every)


def _in_kernel() -> bool:
    """Whether this process is a Jupyter kernel that shows rich output (not a terminal IPython)."""
    if "IPython" not in sys.modules:  # never imported: not a kernel, and not worth importing
        return False
    from IPython import get_ipython
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class NotebookProgress:
    """One bar per epoch in the cell's output, updated in place through a display id: HTML where
    the front end renders it (JupyterLab, Notebook, VS Code, an HTML export), text elsewhere.
    It needs no widgets, so the saved notebook keeps each epoch's final bar."""

    SECONDS_BETWEEN_UPDATES = 0.2  # each update is a message to the front end

    def __init__(self, every: int = LOG_EVERY):
        self.every = every  # the loop reads the loss at these steps, as for EpochProgress
        self.handle = None
        self.images, self.loss = 0, float("nan")

    def start(self, label: str, total_images: int, total_steps: int) -> None:
        from IPython.display import display

        self.started = self.shown = time.perf_counter()
        self.label, self.total = label, total_images
        self.images, self.loss = 0, float("nan")
        self.handle = display(self._bundle(0, float("nan"), 0.0), raw=True, display_id=True)

    def due(self, step: int) -> bool:
        return bool(self.every) and step % self.every == 0

    def update(self, step: int, images: int, loss: float) -> None:
        now = time.perf_counter()
        self.images, self.loss = images, loss
        if self.handle is not None and (now - self.shown >= self.SECONDS_BETWEEN_UPDATES or
                                        images >= self.total):
            self.shown = now
            self.handle.update(self._bundle(images, loss, now - self.started), raw=True)

    def stop(self) -> None:
        """The bar as the epoch left it: complete, or where an interruption stopped it."""
        if self.handle is not None:
            self.handle.update(self._bundle(self.images, self.loss,
                                            time.perf_counter() - self.started), raw=True)
        self.handle = None

    def _bundle(self, images: int, loss: float, seconds: float) -> dict:
        fraction = images / self.total if self.total else 1.0
        rate = images / seconds if seconds > 0 else 0.0
        facts = f"{images:,}/{self.total:,} images  loss {loss:.4f}  {rate:,.0f} img/s  " \
                f"{seconds:.1f} s"
        filled = round(30 * fraction)
        text = f"{self.label}  [{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%}  {facts}"
        bar = (f'<div style="display:flex;gap:0.8em;align-items:center;font-family:monospace">'
               f'<span>{html.escape(self.label)}</span>'
               f'<progress value="{images}" max="{max(self.total, 1)}" style="width:16em">'
               f'</progress><span>{fraction:.0%}  {html.escape(facts)}</span></div>')
        return {"text/plain": text, "text/html": bar}
