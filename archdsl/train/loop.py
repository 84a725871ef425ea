"""The training loop: data on the device, one seeded permutation per epoch, atomic checkpoints.

Every epoch ends with last.pt (and best.pt when the monitored loss improves), written before the
metrics, so that a kill at any moment leaves a consistent run that --resume continues exactly.

Started by torchrun, the same loop trains data-parallel (see distributed.py): the model in DDP,
each process on its slice of every global batch, the metrics summed over processes, and rank 0
alone printing and writing the run directory, whose checkpoints are those of a single process.
"""
from __future__ import annotations

import contextlib
import functools
import json
import math
import signal
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..analysis import Analysis
from ..compiler import build
from .. import files
from ..errors import ArchDSLWarning, RunError
from . import augment, averaging, checkpoint, distributed, runs
from .batches import DeviceBatches, make_batches
from .config import TrainConfig
from .data import load_dataset, check_fits
from .evaluate import evaluate
from .progress import LOG_EVERY, epoch_progress
from .setup import autocast_factory, make_optimizer, make_scheduler, split_indices
from .trained import Run


class NonFiniteLoss(RunError):
    exit_code = 1
    same_on_every_rank = True  # the processes agree on it before raising it


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: raised between steps, after the last completed epoch was saved."""

    def __init__(self, epoch: int, step: int, signum: int = signal.SIGINT):
        super().__init__(f"interrupted by {signal.Signals(signum).name} in epoch {epoch} at "
                         f"step {step}")
        self.epoch, self.step, self.signum = epoch, step, int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # what a shell reports for a process the signal ended


def train(analysis: Analysis, spec_text: str, config: TrainConfig, out_dir: Path, *,
          resume: bool = False, overwrite: bool = False, show_progress: bool = True,
          log_every: int = LOG_EVERY, echo=print) -> Run:
    """Train in this process, or as one rank of a torchrun job when its environment says so
    (joining the process group for the run, or using the one the caller has set up).

    The run directory is locked for the run's duration (see runs.claimed); one that holds a run
    already is refused unless `resume` continues it or `overwrite` deletes its files first.
    `log_every`: steps between plain progress lines where standard error is not a terminal."""
    world = distributed.World.from_env()
    device = distributed.pick_device(config.device, world)
    claim = runs.claimed(out_dir, resume=resume, overwrite=overwrite) if world.main \
        else contextlib.nullcontext()
    with distributed.joined(world, device), claim:
        return _train(analysis, spec_text, config, out_dir, resume, show_progress, log_every,
                      echo if world.main else _silent, world, device)


def _silent(*args, **kwargs) -> None:
    pass


def _train(analysis, spec_text, config, out_dir, resume, show_progress, log_every, echo, world,
           device) -> Run:
    torch.manual_seed(config.seed)
    num_classes = analysis.output[0] if len(analysis.output) == 1 else None
    with world.local_main_first():  # one download per machine
        dataset = load_dataset(config.dataset, config.data_dir, input_shape=analysis.input,
                               num_classes=num_classes)
    check_fits(analysis.input, analysis.output, dataset)
    train_indices, val_indices = split_indices(len(dataset.train), config)
    if train_indices is not None and not len(train_indices):
        raise RunError(f"no examples are left to train on: --val-split {config.val_split:g} "
                       f"holds out all {len(val_indices)} of --subset {config.subset}",
                       hint="raise --subset or lower --val-split")
    channels_last = device.type == "cuda" and len(analysis.input) == 3
    augmentation = augment.Augmentation.from_config(config)
    if augmentation is not None:
        augmentation.check(dataset.shape)
    # In memory: augmented on the device by the epoch loop; a folder: by its loader's transforms.
    train_batches = make_batches(
        dataset.train if dataset.in_memory or augmentation is None else
        augment.augmented_folder(dataset.train, augmentation, dataset.shape),
        train_indices, device, channels_last)
    val_batches = make_batches(dataset.train, val_indices, device, channels_last) \
        if val_indices is not None else None
    test_batches = make_batches(dataset.test, None, device, channels_last)

    model = build(analysis).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if world.rank:  # the model is the same everywhere; dropout masks should not be
        torch.manual_seed(config.seed + 7919 * world.rank)
    steps_per_epoch = train_batches.batch_count(config.batch_size, world.size)
    optimizer = make_optimizer(config, model)
    scheduler, per_step = make_scheduler(config, optimizer, steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type) if config.amp == "fp16" else None
    autocast = autocast_factory(config.amp, device)

    history, best, stale, start = [], math.inf, 0, 1
    if resume:
        state = checkpoint.load(out_dir / "last.pt", resumable=True)
        checkpoint.load_model(model, state, out_dir / "last.pt")
        checkpoint.check_schedule(state, config, scheduler, out_dir)
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        history, best, stale = state["history"], state["best"], state["stale"]
        start = state["epoch"] + 1
        checkpoint.restore_rng_of_rank(state, world, config)
        echo(f"resuming {out_dir} after epoch {state['epoch']}")
    ema = averaging.averaged(model, config.ema)  # --ema: updated after every optimizer step
    if ema is not None and resume:
        averaging.restore(ema, state.get("ema"))
    if world.main:
        files.write_text(out_dir / "spec.spec", spec_text)
        files.write_text(out_dir / "config.json", json.dumps(
            {**config.to_dict(), "device_used": str(device), "torch": torch.__version__,
             "params": analysis.totals.params, "train_examples": len(train_batches),
             "val_examples": len(val_batches) if val_batches else 0,
             "classes": dataset.classes,
             **({"world_size": world.size} if world.distributed else {})}, indent=2) + "\n")
    if world.distributed:
        echo(f"training {analysis.totals.params:,} parameters data-parallel, world size "
             f"{world.size} ({distributed.backend(device)} on {device.type}), with "
             f"{len(train_batches):,} {dataset.name} images, batch {config.batch_size} per "
             f"process = global batch {config.batch_size * world.size}, "
             f"{config.optimizer} lr {config.lr:g}, {config.epochs} epochs")
    else:
        echo(f"training {analysis.totals.params:,} parameters on {device} with "
             f"{len(train_batches):,} {dataset.name} images, batch {config.batch_size}, "
             f"{config.optimizer} lr {config.lr:g}, {config.epochs} epochs")

    if config.early_stopping and val_batches is None:
        echo("note: --early-stopping watches the validation loss; without --val-split it is off")
    trained = world.wrap(model, device)  # DDP, or the model itself
    forward = torch.compile(trained) if config.compile else trained
    # DDP's forward takes part in collectives; evaluation, whose batches may differ in number
    # between processes, runs the module itself and sums its results afterwards.
    assess = forward if not world.distributed else \
        torch.compile(model) if config.compile else model
    shard = dict(rank=world.rank, world=world.size)
    progress = epoch_progress(show_progress and world.main, every=log_every)
    sync_every = 1 if device.type == "cpu" else 50
    with _stop_flag() as interrupted:
        for epoch in range(start, config.epochs + 1):
            record = _train_epoch(forward, train_batches, optimizer, scheduler if per_step else None,
                                  scaler, autocast, config, epoch, progress, interrupted,
                                  sync_every, steps_per_epoch, world, augmentation,
                                  after_step=None if ema is None else
                                  functools.partial(ema.update_parameters, model))
            if scheduler is not None and not per_step:
                scheduler.step()
            world.sync_buffers(model)
            if ema is not None:
                world.sync_buffers(ema.module)  # rank 0's statistics, as the model's
            if val_batches is not None:
                val = evaluate(assess, functools.partial(val_batches, **shard),
                               len(dataset.classes), autocast=autocast, reduce=world.sum)
                record.update(val_loss=val.loss, val_accuracy=val.accuracy)
            history.append(record)
            # Every process computes the same record (sums over all), so all stop together.
            monitored = record["val_loss"] if val_batches is not None else record["train_loss"]
            improved = monitored < best
            best, stale = (monitored, 0) if improved else (best, stale + 1)
            rng = world.gather(checkpoint.rng_state())
            if world.main:
                state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict() if scheduler else None,
                         "epoch": epoch, "history": history, "best": best, "stale": stale,
                         "rng": rng[0], "config": config.to_dict()}
                if world.distributed:
                    state["rng_per_rank"] = rng
                if ema is not None:
                    state["ema"] = averaging.state(ema)
                checkpoint.save_atomically(state, out_dir / "last.pt")
                if improved:
                    checkpoint.save_atomically(state, out_dir / "best.pt")
                _write_metrics(history, out_dir / "metrics.jsonl")
            echo(_epoch_line(record, config.epochs))
            if config.early_stopping and val_batches is not None and \
                    stale >= config.early_stopping:
                echo(f"early stopping: validation loss has not improved for {stale} epochs")
                break
    test = test_tta = ema_test = ema_test_tta = None
    if test_batches is not None:
        test, test_tta = _test(assess, test_batches, shard, dataset, autocast, world, config)
        echo(f"test accuracy {test.accuracy:.2%} on {len(test_batches):,} images "
             f"(loss {test.loss:.4f}){_tta_note(test_tta, config)}")
        if ema is not None:
            ema_test, ema_test_tta = _test(ema.module, test_batches, shard, dataset, autocast,
                                           world, config)
            echo(f"EMA weights (decay {config.ema:g}): test accuracy {ema_test.accuracy:.2%} "
                 f"(loss {ema_test.loss:.4f}){_tta_note(ema_test_tta, config)}")
    if world.main:
        from .plot import plot_curves
        plot_curves(history, out_dir / "curves.png")
    return Run(out_dir, history, test, dataset.classes, model, analysis, config,
               test_tta=test_tta, ema_model=None if ema is None else ema.module, ema_test=ema_test,
               ema_test_tta=ema_test_tta)


def _test(model, batches, shard, dataset, autocast, world, config):
    """The test split's evaluation, and with --tta that of its test-time augmentation."""
    def run(tta):
        return evaluate(model, functools.partial(batches, **shard), len(dataset.classes),
                        autocast=autocast, reduce=world.sum, tta=tta)
    return run("off"), None if config.tta == "off" else run(config.tta)


def _tta_note(evaluation, config) -> str:
    return "" if evaluation is None else f", with {config.tta} TTA {evaluation.accuracy:.2%}"


def _train_epoch(forward, batches, optimizer, step_scheduler, scaler, autocast, config, epoch,
                 progress, interrupted, sync_every, steps, world, augmentation=None,
                 after_step=None) -> dict:
    device = batches.device
    augmented = augmentation.for_epoch(epoch, len(batches), device) \
        if augmentation is not None and isinstance(batches, DeviceBatches) else None
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    first_bad = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    progress.start(f"epoch {epoch}/{config.epochs}", len(batches), steps)
    started = time.perf_counter()
    try:
        for step, (images, labels) in enumerate(batches(config.batch_size, _epoch_seed(config,
                                                                                      epoch),
                                                        world.rank, world.size,
                                                        augment=augmented), 1):
            # This process's part of the batch's mean loss (all of it in a world of one).
            weight = len(labels) if not world.distributed else \
                batches.global_size(step - 1, config.batch_size, world.size) / world.size
            with autocast():
                outputs = forward(images)
                loss = _loss(outputs, labels, config, weight)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            if after_step is not None:
                after_step()
            if step_scheduler is not None:
                step_scheduler.step()
            loss = loss.detach().float()
            # Recorded on the device, read at sync points: the exact step without a sync per step.
            first_bad = torch.where((first_bad == 0) & ~torch.isfinite(loss), step, first_bad)
            loss_sum += loss * weight
            correct += (outputs.argmax(1) == labels).sum()
            seen += len(labels)
            if step % sync_every == 0 or step == steps or progress.due(step):
                # With several processes, all of them learn of a NaN or a signal at this step.
                bad, signum = world.agree(first_bad, interrupted())
                _check_finite(bad, epoch)
                progress.update(step, seen * world.size, float(loss_sum) / max(1, seen))
                if signum:
                    raise Interrupted(epoch, step, signum)
            elif not world.distributed and interrupted():
                raise Interrupted(epoch, step, interrupted())
    finally:
        progress.stop()
    seconds = time.perf_counter() - started
    loss_total, correct_total = float(loss_sum), int(correct)
    if world.distributed:  # the epoch's sums over all processes
        totals = world.sum(torch.stack([loss_sum.double(), correct.double(),
                                        torch.tensor(seen, dtype=torch.float64, device=device)]))
        loss_total, correct_total, seen = totals.tolist()
    return {"epoch": epoch, "train_loss": loss_total / seen,
            "train_accuracy": int(correct_total) / seen, "val_loss": None, "val_accuracy": None,
            "seconds": round(seconds, 3), "images_per_s": round(seen / seconds, 1),
            "lr": optimizer.param_groups[0]["lr"]}


def _loss(outputs, labels, config, weight):
    """Cross-entropy averaged over the batch. Under DDP, which averages gradients over the
    processes, each one's sum is divided by its `weight`, the global batch over the world size,
    so that the average is the mean over the global batch even where the slices differ in size."""
    if weight == len(labels):
        return F.cross_entropy(outputs, labels, label_smoothing=config.label_smoothing)
    return F.cross_entropy(outputs, labels, label_smoothing=config.label_smoothing,
                           reduction="sum") / weight


def loss_warnings(analysis: Analysis) -> tuple[ArchDSLWarning, ...]:
    """A network that ends in probabilities (Softmax): _loss's cross-entropy applies
    log-softmax itself, so the model would learn through a softmax of a softmax."""
    last = analysis.nodes[-1]
    if not last.layer.probabilities:
        return ()
    return (ArchDSLWarning(
        f"the network ends in {last.layer.dsl_name}, but training uses cross-entropy, which "
        f"applies log-softmax itself: drop the final {last.layer.dsl_name} and train on the "
        f"logits", last.span, hint="the trained outputs are then logits; their softmax gives "
                                   "the probabilities"),)


def _check_finite(bad_step: int, epoch: int) -> None:
    if bad_step:
        raise NonFiniteLoss(f"the loss became NaN or infinite in epoch {epoch} at step "
                            f"{bad_step}; training stopped",
                            hint="lower --lr, add BatchNorm, or check the data; "
                                 "checkpoints of earlier epochs are untouched")


def _epoch_seed(config: TrainConfig, epoch: int) -> int:
    return config.seed * 100_003 + epoch


def _epoch_line(record: dict, epochs: int) -> str:
    line = (f"epoch {record['epoch']}/{epochs}  train loss {record['train_loss']:.4f} "
            f"acc {record['train_accuracy']:.2%}")
    if record["val_loss"] is not None:
        line += f"  val loss {record['val_loss']:.4f} acc {record['val_accuracy']:.2%}"
    return line + f"  {record['seconds']:.1f} s ({record['images_per_s']:,.0f} img/s)"


def _write_metrics(history: list[dict], path: Path) -> None:
    files.write_text(path, "".join(json.dumps(record) + "\n" for record in history))


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C; schedulers, `docker stop`, `timeout`


@contextlib.contextmanager
def _stop_flag():
    """Turn Ctrl-C and SIGTERM into a flag the loop checks between steps: a function that gives
    the first signal's number, 0 before any. A second signal interrupts at once."""
    received = []

    def handler(signum, frame):
        if received:
            raise KeyboardInterrupt
        received.append(signum)

    try:
        previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    except ValueError:  # not the main thread: leave signals alone
        yield lambda: 0
        return
    try:
        yield lambda: received[0] if received else 0
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)
