"""The command line: read options, call the library, render. No analysis happens here."""
from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__
from .analysis import Analysis, analyze
from .compare import compare as compare_analyses, mlp_baseline, parse_baseline
from .errors import ArchDSLError
from .ir import parse_shape
from .parser import decode, parse, read_text
from .train.config import TrainConfig
from .report import render_comparison, render_evaluation

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Describe convolutional networks as text; check shapes, parameters and "
                       "cost exactly.")


class Format(str, Enum):
    table = "table"
    markdown = "markdown"
    json = "json"


def _shape_option(value: Optional[str]):
    if value is None:
        return None
    try:
        return parse_shape(value)
    except ArchDSLError as error:
        raise typer.BadParameter(error.message) from None


SpecArgument = Annotated[str, typer.Argument(help="A .spec file, or - to read standard input.")]
InputOption = Annotated[Optional[str], typer.Option(
    "--input", callback=_shape_option, metavar="CxHxW",
    help="Input shape, e.g. 1x28x28; overrides the spec's input line.")]
FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
BatchOption = Annotated[int, typer.Option("--batch", min=1,
                                          help="Batch size for activation memory.")]


def _version(value: bool):
    if value:
        typer.echo(f"archdsl {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False):
    """archdsl: a convolutional network as text."""


def load(path: str, input=None, batch: int = 1) -> Analysis:
    """Read, parse and analyze a spec; on bad input print file:line:col with a caret, exit 2."""
    text = None
    name = "<stdin>" if path == "-" else path
    try:
        text = decode(sys.stdin.buffer.read()) if path == "-" else read_text(path)
        spec = parse(text, name)
        TrainConfig.from_spec(spec)  # a bad train(...) block is a spec error, even for check
        return analyze(spec, input, batch)
    except ArchDSLError as error:
        typer.echo(error.render(text, name), err=True)
        raise typer.Exit(2) from None


@app.command()
def check(spec: SpecArgument, input: InputOption = None, format: FormatOption = Format.table,
          batch: BatchOption = 1):
    """Every layer's output shape, parameters and MACs, then the totals.

    Exits 1 when one of the spec's assertions (`assert params < 100k`) fails."""
    from .budget import check_budget, failures
    from .report import render_check

    analysis = load(spec, input, batch)
    results = check_budget(analysis)
    typer.echo(render_check(analysis, results, format.value))
    failed = failures(results)
    for error in failed:
        typer.echo(error.render(analysis.spec.text, analysis.spec.filename), err=True)
    if failed:
        raise typer.Exit(1)


@app.command()
def compare(
    specs: Annotated[list[str], typer.Argument(help="Two or more .spec files; ratios are to "
                                                    "the first.")],
    baseline: Annotated[Optional[str], typer.Option(
        "--baseline", metavar="mlp:W1[,W2…]",
        help="Add the MLP with these hidden widths built on the first spec's input and "
             "output.")] = None,
    input: InputOption = None, format: FormatOption = Format.table, batch: BatchOption = 1,
):
    """Specs side by side: depth, weights and biases, parameters, MACs, memory."""
    analyses = [load(path, input, batch) for path in specs]
    if baseline is not None:
        try:
            hidden = parse_baseline(baseline)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--baseline") from None
        analyses.append(mlp_baseline(analyses[0], hidden))
    typer.echo(render_comparison(compare_analyses(analyses), format.value))


class Optimizer(str, Enum):
    sgd = "sgd"
    adam = "adam"
    adamw = "adamw"


class Scheduler(str, Enum):
    none = "none"
    step = "step"
    cosine = "cosine"
    onecycle = "onecycle"


class Precision(str, Enum):
    off = "off"
    bf16 = "bf16"
    fp16 = "fp16"


def _run_or_exit(function, *args, text=None, name="<spec>", rank=None, **kwargs):
    """Call the library; a run's error becomes a message and its exit code, never a traceback.
    `rank`: this process's rank in a job of several, named in its messages."""
    try:
        return function(*args, **kwargs)
    except ArchDSLError as error:
        message = error.render(text, name)
        if rank is None:
            typer.echo(message, err=True)
        elif rank == 0 or not getattr(error, "same_on_every_rank", False):
            typer.echo(f"[rank {rank}] {message}", err=True)
        raise typer.Exit(getattr(error, "exit_code", 2)) from None


def _train_arguments(spec: str, out_dir: Path, resume: bool, input, overrides: dict) -> list[str]:
    """The options of this `archdsl train` for the processes of --nproc: what was given, with the
    run directory fixed (each process would otherwise number its own)."""
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
        help="fashion-mnist, mnist, cifar10, synthetic, or an ImageFolder directory.")] = None,
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
    seed: Annotated[Optional[int], typer.Option()] = None,
    out: Annotated[Optional[str], typer.Option(help="Run directory (default runs/<spec>).")] = None,
    resume: Annotated[Optional[str], typer.Option(
        metavar="RUN_DIR", help="Continue a run after its last completed epoch.")] = None,
    nproc: Annotated[Optional[int], typer.Option(
        min=1, metavar="N", help="Train data-parallel in N processes on this machine, one per "
                                 "GPU (or on the CPU), started with torchrun; --batch-size is "
                                 "per process.")] = None,
    input: InputOption = None,
):
    """Train a spec: progress per epoch, checkpoints, metrics and curves in a run directory."""
    from .train import distributed
    from .train.config import resumed_config, run_directory
    from .train.loop import Interrupted, train as run_training

    world = _run_or_exit(distributed.World.from_env)
    launching = nproc is not None and nproc > 1 and not world.distributed
    if launching and spec == "-":
        typer.echo("error: --nproc starts processes that each read the spec: give a file, not -",
                   err=True)
        raise typer.Exit(2)

    analysis = load(spec, input)
    overrides = dict(
        dataset=dataset, data_dir=data_dir, epochs=epochs, batch_size=batch_size, lr=lr,
        optimizer=optimizer and optimizer.value, momentum=momentum, weight_decay=weight_decay,
        scheduler=scheduler and scheduler.value, label_smoothing=label_smoothing,
        val_split=val_split, early_stopping=early_stopping, subset=subset, device=device,
        amp=amp and amp.value, compile=compile, seed=seed)
    if resume is not None:
        config = _run_or_exit(resumed_config, Path(resume), overrides)
        out_dir = Path(resume)
    else:
        source = analysis.spec
        config = _run_or_exit(TrainConfig.from_spec, source, text=source.text,
                              name=source.filename).replace(**overrides)
        out_dir = run_directory(spec, out)
    if launching:
        # Refuse a device the processes cannot have before starting them.
        from .train.setup import autocast_factory
        last = distributed.World(rank=nproc - 1, size=nproc, local_rank=nproc - 1)
        _run_or_exit(autocast_factory, config.amp,
                     _run_or_exit(distributed.pick_device, config.device, last))
        arguments = _train_arguments(spec, out_dir, resume is not None, input, overrides)
        raise typer.Exit(distributed.launch(nproc, arguments, typer.echo))
    try:
        result = _run_or_exit(run_training, analysis, analysis.spec.text, config, out_dir,
                              resume=resume is not None,
                              rank=world.rank if world.distributed else None)
    except Interrupted as stop:
        if not world.main:
            raise typer.Exit(130) from None
        if (out_dir / "last.pt").exists():
            spec_path = out_dir / "spec.spec" if spec == "-" else spec
            typer.echo(f"\n{stop}; the last completed epoch is saved in {out_dir}/last.pt\n"
                       f"resume with: archdsl train {spec_path} --resume {out_dir}", err=True)
        else:
            typer.echo(f"\n{stop}; no epoch was completed, so there is nothing to resume",
                       err=True)
        raise typer.Exit(130) from None
    if world.main:
        typer.echo(f"run saved in {result.out_dir}")


@app.command("eval")
def evaluate(
    spec: SpecArgument,
    checkpoint: Annotated[str, typer.Option(help="A checkpoint, e.g. runs/NAME/best.pt.")],
    dataset: Annotated[Optional[str], typer.Option(help="Default: the run's dataset.")] = None,
    data_dir: Annotated[Optional[str], typer.Option()] = None,
    device: Annotated[str, typer.Option()] = "auto",
    format: FormatOption = Format.table,
    input: InputOption = None,
):
    """Test accuracy, per-class accuracy and the confusion matrix of a checkpoint."""
    from .train.evaluate import evaluate_checkpoint

    analysis = load(spec, input)
    if not Path(checkpoint).is_file():
        typer.echo(f"error: checkpoint {checkpoint} does not exist", err=True)
        raise typer.Exit(2)
    result = _run_or_exit(evaluate_checkpoint, analysis, Path(checkpoint), dataset=dataset,
                          data_dir=data_dir, device=device)
    typer.echo(render_evaluation(result, format.value))


def _parse_or_exit(path: str):
    """Read and parse a spec: (text, name, spec); bad input prints file:line:col, exits 2."""
    text = None
    name = "<stdin>" if path == "-" else path
    try:
        text = decode(sys.stdin.buffer.read()) if path == "-" else read_text(path)
        return text, name, parse(text, name)
    except ArchDSLError as error:
        typer.echo(error.render(text, name), err=True)
        raise typer.Exit(2) from None


@app.command()
def explain(
    spec: SpecArgument,
    layer: Annotated[Optional[str], typer.Option(
        metavar="NAME", help="Only this row, or the rows of this scope (e.g. layer2).")] = None,
    input: InputOption = None, format: FormatOption = Format.table,
):
    """Per layer: output size formula, parameters and MACs as products, receptive field.

    Formulas have their numbers filled in; the receptive field and jump (effective stride) of
    each layer's outputs are in input pixels."""
    from .explain import explain as explain_analysis
    from .report import render_explanation

    analysis = load(spec, input)
    try:
        explanation = explain_analysis(analysis, layer)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--layer") from None
    typer.echo(render_explanation(explanation, format.value))


@app.command()
def sweep(
    spec: SpecArgument,
    inputs: Annotated[Optional[str], typer.Option(
        "--input", metavar="CxHxW[,CxHxW…]", help="Input shapes, e.g. 1x28x28,1x32x32.")] = None,
    size: Annotated[Optional[str], typer.Option(
        metavar="START:STOP:STEP", help="Sizes for every spatial axis with the spec's channels: "
                                        "28:224:32, 28:64 (step 1) or 28,32,64.")] = None,
    format: FormatOption = Format.table, batch: BatchOption = 1,
):
    """Output shape, parameters and MACs across input sizes; where sizes break.

    For an invalid size, the layer that breaks and why; then the smallest valid input."""
    from .report import render_sweep
    from .sweep import parse_shapes, parse_sizes, sweep as run_sweep

    if (inputs is None) == (size is None):
        raise typer.BadParameter("give either --input shapes or --size sizes",
                                 param_hint="--input / --size")
    try:
        shapes = parse_shapes(inputs) if inputs is not None else None
        sizes = parse_sizes(size) if size is not None else None
    except ValueError as error:
        raise typer.BadParameter(str(error),
                                 param_hint="--input" if inputs is not None else "--size") from None
    text, name, parsed = _parse_or_exit(spec)
    try:
        result = _run_or_exit(run_sweep, parsed, shapes, sizes, batch, text=text, name=name)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--size") from None
    typer.echo(render_sweep(result, format.value))


@app.command("fmt")
def format_command(
    spec: SpecArgument,
    check_only: Annotated[bool, typer.Option(
        "--check", help="Print nothing if the spec is already canonical, else a diff; "
                        "exit 1 if not.")] = False,
):
    """Print the spec in canonical layout, comments kept."""
    import difflib

    from .fmt import format_spec

    text, name, _ = _parse_or_exit(spec)
    formatted = _run_or_exit(format_spec, text, name, text=text, name=name)
    if not check_only:
        typer.echo(formatted, nl=False)
        return
    if formatted != text:
        typer.echo("".join(difflib.unified_diff(
            text.splitlines(keepends=True), formatted.splitlines(keepends=True),
            fromfile=name, tofile=f"{name} (formatted)")), nl=False)
        raise typer.Exit(1)


class DiagramFormat(str, Enum):
    svg = "svg"
    png = "png"
    pdf = "pdf"
    dot = "dot"


@app.command()
def draw(
    spec: SpecArgument,
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write: .svg, .png, "
                                                                ".pdf or .dot (DOT source).")],
    format: Annotated[Optional[DiagramFormat], typer.Option(
        "--format", "-f", help="Default: from the file's suffix.")] = None,
    input: InputOption = None,
):
    """A diagram of the network: a box per layer with its output shape, branches and skips.

    Rendering needs Graphviz's `dot` program; .dot files are written without it."""
    from .draw import draw as draw_diagram

    analysis = load(spec, input)
    path = _run_or_exit(draw_diagram, analysis, output, format and format.value)
    typer.echo(f"{path}: {len(analysis.rows)} layers")


class ExportFormat(str, Enum):
    onnx = "onnx"
    torchscript = "torchscript"


@app.command("export")
def export_command(
    spec: SpecArgument,
    checkpoint: Annotated[str, typer.Option(help="A checkpoint, e.g. runs/NAME/best.pt.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write.")],
    format: Annotated[ExportFormat, typer.Option("--format", "-f")] = ExportFormat.onnx,
    verify: Annotated[bool, typer.Option(
        "--verify/--no-verify",
        help="Run the file and compare its outputs with PyTorch's.")] = True,
    input: InputOption = None,
):
    """Write a trained spec as ONNX or TorchScript (any batch size), then check that it runs
    and gives PyTorch's outputs."""
    from .export import export as export_model, load_trained, verify as verify_export

    analysis = load(spec, input)
    model = _run_or_exit(load_trained, analysis, Path(checkpoint))
    _run_or_exit(export_model, model, analysis, output, format.value)
    typer.echo(f"{output}: {format.value}, input N×{'×'.join(map(str, analysis.input))}, "
               f"{output.stat().st_size / 2**20:.1f} MiB")
    if verify:
        check = _run_or_exit(verify_export, model, analysis, output, format.value)
        verdict = "matches" if check.ok else "DIFFERS FROM"
        typer.echo(f"{check.runtime} {verdict} PyTorch on {check.batch} random inputs: "
                   f"max |difference| {check.max_abs_diff:.2g} (tolerance {check.tolerance:.2g})")
        if not check.ok:
            raise typer.Exit(1)
