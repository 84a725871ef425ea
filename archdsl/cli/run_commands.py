"""The commands that run networks with torch: train, eval and export."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..report import render_evaluation
from ..train.config import MAX_SEED, TrainConfig
from ..train.datasets import list_datasets
from .common import (FormatOption, Format, InputOption, Optimizer, Precision, SpecArgument, app,
                     load, run_or_exit, warn)




class Scheduler(str, Enum):
    none = "none"
    step = "step"
    cosine = "cosine"
    onecycle = "onecycle"


def _choices(setting: str) -> type[Enum]:
    """The values a Literal setting of TrainConfig takes, as the Enum typer shows and checks."""
    import typing
    annotation = typing.get_type_hints(TrainConfig)[setting]
    values = typing.get_args(annotation)
    return Enum(setting.title().replace("_", ""), {value: value for value in values}, type=str)


CropPadding, Flip, TTA = _choices("crop_padding"), _choices("flip"), _choices("tta")


def _train_arguments(spec: str, out_dir: Path, resume: bool, input, overrides: dict) -> list[str]:
    """The options of this `archdsl train` for the processes of --nproc: what was given, with the
    run directory fixed (each process would otherwise number its own). `overrides`: options by
    name, None where not given."""
    arguments = [spec, "--resume" if resume else "--out", str(out_dir)]
    for name, value in overrides.items():
        option = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            arguments.append(option if value else f"--no-{name}")
        elif value is not None:
            arguments += [option, str(value)]
    if input is not None:
        arguments += ["--input", "x".join(map(str, input))]
    return arguments


@app.command()
def train(
    spec: SpecArgument,
    dataset: Annotated[Optional[str], typer.Option(
        help=f"{', '.join(list_datasets())}, or an ImageFolder directory.")] = None,
    data_dir: Annotated[Optional[str], typer.Option(help="Where to look for the data first.")] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1)] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="Examples per step.")] = None,
    lr: Annotated[Optional[float], typer.Option(min=0.0, help="Learning rate.")] = None,
    optimizer: Annotated[Optional[Optimizer], typer.Option()] = None,
    momentum: Annotated[Optional[float], typer.Option(min=0.0, help="SGD momentum.")] = None,
    weight_decay: Annotated[Optional[float], typer.Option(min=0.0)] = None,
    scheduler: Annotated[Optional[Scheduler], typer.Option()] = None,
    label_smoothing: Annotated[Optional[float], typer.Option(min=0.0, max=1.0)] = None,
    val_split: Annotated[Optional[float], typer.Option(
        min=0.0, max=0.9, help="Fraction of the training set held out for validation.")] = None,
    early_stopping: Annotated[Optional[int], typer.Option(
        min=0, metavar="PATIENCE", help="Stop after this many epochs without a better "
                                        "validation loss.")] = None,
    subset: Annotated[Optional[int], typer.Option(
        min=1, metavar="N", help="Train on the first N training examples.")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = None,
    amp: Annotated[Optional[Precision], typer.Option(help="Mixed precision.")] = None,
    compile: Annotated[Optional[bool], typer.Option(
        "--compile/--no-compile", help="torch.compile the model.")] = None,
    seed: Annotated[Optional[int], typer.Option(min=0, max=MAX_SEED)] = None,
    crop: Annotated[Optional[int], typer.Option(
        min=0, metavar="PIXELS", help="Augment: pad by PIXELS, crop back at a random offset "
                                      "(0: off).")] = None,
    crop_padding: Annotated[Optional[CropPadding], typer.Option(
        help="How --crop pads: mirrored pixels, or black.")] = None,
    flip: Annotated[Optional[Flip], typer.Option(
        help="Augment: flip horizontally, at random or (as airbench) each image in alternate "
             "epochs.")] = None,
    cutout: Annotated[Optional[int], typer.Option(
        min=0, metavar="PIXELS", help="Augment: blank a random PIXELS×PIXELS square "
                                      "(0: off).")] = None,
    tta: Annotated[Optional[TTA], typer.Option(
        help="Test-time augmentation: also score the test split by the mean of each image's "
             "and its mirror's logits (flip), and of its one-pixel shifts' (flip-shift).")] = None,
    ema: Annotated[Optional[float], typer.Option(
        min=0.0, max=1.0, metavar="DECAY", help="Keep a moving average of the weights, "
        "updated every step with this decay (0.999, say; 0: off), evaluated and checkpointed "
        "beside them.")] = None,
    out: Annotated[Optional[str], typer.Option(help="Run directory (default runs/<spec>).")] = None,
    resume: Annotated[Optional[str], typer.Option(
        metavar="RUN_DIR", help="Continue a run after its last completed epoch.")] = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Train into an --out that holds a run, deleting its checkpoints, "
                            "metrics, figures, spec.spec and config.json first.")] = False,
    allow_spec_change: Annotated[bool, typer.Option(
        "--allow-spec-change", help="Resume with a spec that differs from the run's "
                                    "spec.spec.")] = False,
    log_every: Annotated[Optional[int], typer.Option(
        min=0, metavar="STEPS", help="Where standard error is not a terminal, print a progress "
                                     "line every STEPS steps (default 100; 0: none).")] = None,
    nproc: Annotated[Optional[int], typer.Option(
        min=1, metavar="N", help="Train data-parallel in N processes on this machine, one per "
                                 "GPU (or on the CPU), started with torchrun; --batch-size is "
                                 "per process.")] = None,
    input: InputOption = None,
):
    """Train a spec: progress per epoch, checkpoints, metrics and curves in a run directory."""
    from ..train import distributed, runs
    from ..train.config import resumed_config, run_directory
    from ..train.loop import Interrupted, loss_warnings, train as run_training
    from ..train.progress import LOG_EVERY

    world = run_or_exit(distributed.World.from_env)
    launching = nproc is not None and nproc > 1 and not world.distributed
    if launching and spec == "-":
        typer.echo("error: --nproc starts processes that each read the spec: give a file, not -",
                   err=True)
        raise typer.Exit(2)

    if resume is not None and input is None:
        input = runs.trained_input(resume)  # the shape it was trained at, where --input gave it
    analysis = load(spec, input)
    overrides = dict(
        dataset=dataset, data_dir=data_dir, epochs=epochs, batch_size=batch_size, lr=lr,
        optimizer=optimizer and optimizer.value, momentum=momentum, weight_decay=weight_decay,
        scheduler=scheduler and scheduler.value, label_smoothing=label_smoothing,
        val_split=val_split, early_stopping=early_stopping, subset=subset, device=device,
        amp=amp and amp.value, compile=compile, seed=seed, crop=crop,
        crop_padding=crop_padding and crop_padding.value, flip=flip and flip.value, cutout=cutout,
        tta=tta and tta.value, ema=ema)
    if resume is not None:
        config = run_or_exit(resumed_config, Path(resume), overrides)
        out_dir = Path(resume)
        if not allow_spec_change:
            run_or_exit(runs.check_same_spec, out_dir, analysis.spec.text, input)
    else:
        source = analysis.spec
        config = run_or_exit(TrainConfig.from_spec, source, text=source.text,
                              name=source.filename)
        config = run_or_exit(config.replace, **overrides)
        out_dir = run_directory(spec, out)
    if launching:
        # Refuse a device the processes cannot have before starting them.
        from ..train.setup import autocast_factory
        last = distributed.World(rank=nproc - 1, size=nproc, local_rank=nproc - 1)
        run_or_exit(autocast_factory, config.amp,
                     run_or_exit(distributed.pick_device, config.device, last))
        run_or_exit(runs.check_target, out_dir, resume=resume is not None, overwrite=overwrite)
        flags = dict(overwrite=overwrite or None, allow_spec_change=allow_spec_change or None,
                     log_every=log_every)
        arguments = _train_arguments(spec, out_dir, resume is not None, input,
                                     {**overrides, **flags})
        raise typer.Exit(distributed.launch(nproc, arguments, typer.echo))
    if world.main:
        warn(loss_warnings(analysis), analysis.spec.text, analysis.spec.filename)
    try:
        result = run_or_exit(run_training, analysis, analysis.spec.text, config, out_dir,
                              resume=resume is not None, overwrite=overwrite,
                              log_every=LOG_EVERY if log_every is None else log_every,
                              rank=world.rank if world.distributed else None)
    except Interrupted as stop:
        if not world.main:
            raise typer.Exit(stop.exit_code) from None
        if (out_dir / "last.pt").exists():
            spec_path = out_dir / "spec.spec" if spec == "-" else spec
            typer.echo(f"\n{stop}; the last completed epoch is saved in {out_dir}/last.pt\n"
                       f"resume with: archdsl train {spec_path} --resume {out_dir}", err=True)
        else:
            typer.echo(f"\n{stop}; no epoch was completed, so there is nothing to resume",
                       err=True)
        raise typer.Exit(stop.exit_code) from None
    if world.main:
        typer.echo(f"run saved in {result.out_dir}")


RunSpecArgument = Annotated[str, typer.Argument(
    help="A .spec file, - to read standard input, or a run directory (runs/NAME: its "
         "spec.spec and, without --checkpoint, its best.pt).")]
CheckpointOption = Annotated[Optional[str], typer.Option(
    help="A checkpoint (runs/NAME/best.pt), or a run directory for its best.pt.")]


@app.command("eval")
def evaluate(
    spec: RunSpecArgument,
    checkpoint: CheckpointOption = None,
    dataset: Annotated[Optional[str], typer.Option(help="Default: the run's dataset.")] = None,
    data_dir: Annotated[Optional[str], typer.Option()] = None,
    device: Annotated[str, typer.Option()] = "auto",
    ema: Annotated[bool, typer.Option(
        "--ema", help="Evaluate the moving average of the weights that a run trained with "
                      "--ema kept.")] = False,
    format: FormatOption = Format.table,
    input: InputOption = None,
):
    """Test accuracy, per-class accuracy and the confusion matrix of a checkpoint."""
    from ..train.evaluate import evaluate_checkpoint
    from ..train.runs import directory_input, spec_and_checkpoint

    input = input or directory_input(spec)
    spec, checkpoint = run_or_exit(spec_and_checkpoint, spec, checkpoint)
    analysis = load(spec, input)
    result = run_or_exit(evaluate_checkpoint, analysis, checkpoint, dataset=dataset,
                          data_dir=data_dir, device=device, ema=ema)
    typer.echo(render_evaluation(result, format.value))


class ExportFormat(str, Enum):
    onnx = "onnx"
    torchscript = "torchscript"
    python = "python"


@app.command("export")
def export_command(
    spec: RunSpecArgument,
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write: .onnx, .pt "
                                                                "for TorchScript, or .py for "
                                                                "Python source.")],
    format: Annotated[Optional[ExportFormat], typer.Option(
        "--format", "-f", help="Default: from the file's suffix.")] = None,
    verify: Annotated[bool, typer.Option(
        "--verify/--no-verify",
        help="Run the file and compare its outputs with PyTorch's.")] = True,
    checkpoint: CheckpointOption = None,
    class_name: Annotated[Optional[str], typer.Option(
        help="Python: the network's class (default: from the spec's file name).")] = None,
    input: InputOption = None,
):
    """Write a trained spec as ONNX or TorchScript, or any spec as PyTorch code; then check it.

    ONNX and TorchScript take any batch size and need a checkpoint; Python source needs none.
    The check runs the file and compares its outputs with PyTorch's."""
    from ..export import (export as export_model, load_trained, output_format,
                          verify as verify_export)
    from ..train.runs import directory_input, spec_and_checkpoint

    input = input or directory_input(spec)
    fmt = run_or_exit(output_format, output, format and format.value)
    if fmt == "python":
        _export_python(spec, output, verify, checkpoint, class_name, input)
        return
    spec, checkpoint = run_or_exit(spec_and_checkpoint, spec, checkpoint)
    analysis = load(spec, input)
    model = run_or_exit(load_trained, analysis, checkpoint)
    run_or_exit(export_model, model, analysis, output, fmt)
    typer.echo(f"{output}: {fmt}, input N×{'×'.join(map(str, analysis.input))}, "
               f"{output.stat().st_size / 2**20:.1f} MiB")
    if verify:
        check = run_or_exit(verify_export, model, analysis, output, fmt)
        verdict = "matches" if check.ok else "DIFFERS FROM"
        typer.echo(f"{check.runtime} {verdict} PyTorch on {check.batch} random inputs: "
                   f"max |difference| {check.max_abs_diff:.2g} (tolerance {check.tolerance:.2g})")
        if not check.ok:
            raise typer.Exit(1)


def _export_python(spec: str, output: Path, verify: bool, checkpoint, class_name, input) -> None:
    """The spec as Python source: code, not weights, so no checkpoint."""
    from ..export import export_python, verify_python
    from ..train.runs import spec_without_checkpoint

    spec = run_or_exit(spec_without_checkpoint, spec, checkpoint)
    analysis = load(spec, input)
    name = run_or_exit(export_python, analysis, output, class_name)
    typer.echo(f"{output}: python, class {name}, input N×{'×'.join(map(str, analysis.input))}")
    if verify:
        check = run_or_exit(verify_python, analysis, output, name)
        verdict = "matches" if check.ok else "DIFFERS FROM"
        typer.echo(f"{check.runtime} takes the compiled spec's state_dict and {verdict} it on "
                   f"{check.batch} random inputs: max |difference| {check.max_abs_diff:.2g} "
                   f"(tolerance {check.tolerance:.2g})")
        if not check.ok:
            raise typer.Exit(1)
