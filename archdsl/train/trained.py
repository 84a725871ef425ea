"""Training from Python: `archdsl.train(spec, epochs=…)` and `archdsl.load_run("runs/NAME")` give a
Run: its history, test accuracy and model, `run.plot()` for the curves, `run.predict(images)`.

Torch is imported when a run trains or loads, not with this module.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..analysis import Analysis, analyze
from ..errors import ArchDSLError, RunError
from ..ir import Spec
from ..layers.arguments import suggest
from ..parser import parse, read_text
from . import runs
from .config import TrainConfig, run_directory
from .run_directory import RunDirectory

if TYPE_CHECKING:
    import torch

    from .evaluate import Evaluation


@dataclass
class Run:
    """A training's results: `history` has a record per epoch (as metrics.jsonl), `test` the
    test split's evaluation (None for a loaded run, or a dataset without one), `model` the
    trained network."""

    out_dir: Path
    history: list[dict]
    test: Evaluation | None
    classes: list[str]
    model: torch.nn.Module | None = None  # without DDP
    analysis: Analysis | None = None
    config: TrainConfig | None = None
    test_tta: Evaluation | None = None  # the test split with the run's --tta, where it has one
    ema_model: torch.nn.Module | None = None  # the moving average of the weights (--ema)
    ema_test: Evaluation | None = None  # the test split, by ema_model
    ema_test_tta: Evaluation | None = None  # and with --tta

    @property
    def spec(self) -> str | None:
        """The spec's text as trained (the run's spec.spec)."""
        return None if self.analysis is None or self.analysis.spec is None \
            else self.analysis.spec.text

    @property
    def test_accuracy(self) -> float | None:
        return None if self.test is None else self.test.accuracy

    @property
    def test_tta_accuracy(self) -> float | None:
        """The test accuracy with the run's test-time augmentation (config.tta), if any."""
        return None if self.test_tta is None else self.test_tta.accuracy

    @property
    def ema_test_accuracy(self) -> float | None:
        """The test accuracy of the averaged weights (--ema), if any."""
        return None if self.ema_test is None else self.ema_test.accuracy

    def plot(self):
        """Loss and accuracy per epoch and the loss within epochs, as curves.png shows them: a
        matplotlib Figure."""
        from .plot import curves_figure
        return curves_figure(self.history)

    def predict(self, images) -> Predictions:
        """The trained model's classes for `images`: a tensor or array of one image (C×H×W,
        or H×W for one channel) or a batch (N×C×H×W, or N×H×W), as the dataset stores them
        (uint8 0–255) or as ToTensor gives them (floats 0–1); normalized as in training."""
        import torch

        if self.model is None or self.analysis is None:
            raise RunError("this run holds no model to predict with")
        batch = _batch(torch.as_tensor(images), self.analysis.input)
        model, training = self.model, self.model.training
        device = next(model.parameters(), torch.empty(0)).device
        try:
            with torch.no_grad():
                outputs = model.eval()(batch.to(device)).float()
        finally:
            model.train(training)
        probabilities = torch.softmax(outputs, 1).cpu()
        return Predictions(probabilities.argmax(1), probabilities, tuple(self.classes))

    def __repr__(self) -> str:
        accuracy = "" if self.test is None else f", test accuracy {self.test.accuracy:.2%}"
        epochs = len(self.history)
        return f"<Run {self.out_dir}: {epochs} epoch{'s' * (epochs != 1)}{accuracy}>"

    def _repr_html_(self) -> str:
        from ..report import render_run
        return render_run(self, "html")


@dataclass(frozen=True)
class Predictions:
    """Per image: the predicted class's index and name, and every class's probability."""

    indices: torch.Tensor  # (N,)
    probabilities: torch.Tensor  # (N, classes): the softmax of the outputs
    classes: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [self.classes[i] for i in self.indices.tolist()]

    def __len__(self) -> int:
        return len(self.indices)

    SHOWN = 10  # names in the repr

    def __repr__(self) -> str:
        names = self.names
        shown = ", ".join(map(repr, names[:self.SHOWN])) + ", …" * (len(names) > self.SHOWN)
        return f"<Predictions of {len(self)} image{'s' * (len(self) != 1)}: [{shown}]>"


def _batch(images: torch.Tensor, input_shape: tuple[int, ...]) -> torch.Tensor:
    """Images as the network's normalized float input batch, N×C×H×W."""
    shape = tuple(images.shape)
    if shape == input_shape or (input_shape[0] == 1 and shape == input_shape[1:]):
        images = images.reshape(1, *input_shape)
    elif shape[1:] == input_shape or (input_shape[0] == 1 and shape[1:] == input_shape[1:]):
        images = images.reshape(len(images), *input_shape)
    else:
        expected = "×".join(map(str, input_shape))
        raise RunError(f"images of shape {'×'.join(map(str, shape))} do not fit the network's "
                       f"input {expected}", hint=f"give one image of {expected} or a batch "
                                                 f"N×{expected}")
    if images.dtype.is_floating_point:
        return images.float() * 2 - 1  # ToTensor's 0–1, then Normalize((0.5,), (0.5,))
    from .batches import normalize
    return normalize(images)


def train(spec: str | os.PathLike | Spec | Analysis, *, input: str | None = None,
          out: str | os.PathLike | None = None, resume: bool = False, overwrite: bool = False,
          progress: bool = True, **settings) -> Run:
    """Train `spec` (a .spec file's path, spec text, a parsed Spec or an Analysis) as
    `archdsl train` does, and return the Run. `settings` are the training settings by name,
    those of a spec's train(...) block (epochs, data_dir, subset, lr, …), which they override.
    The run directory is `out`, by default runs/<spec's name> numbered as on the command line.
    A live progress bar shows in a notebook, one line per epoch everywhere."""
    from .loop import loss_warnings, train as run_training

    if resume and out is not None and input is None and not isinstance(spec, Analysis):
        input = runs.trained_input(out)  # the shape it was trained at, where input= gave it
    analysis, path = _analysis(spec, input)
    fields = [f.name for f in dataclasses.fields(TrainConfig)]
    unknown = [name for name in settings if name not in fields]
    if unknown:
        raise RunError(f"unknown training setting {unknown[0]!r}{suggest(unknown[0], fields)}",
                       hint=f"settings: {', '.join(fields)}")
    source = analysis.spec
    if resume:
        if out is None:
            raise RunError("resume=True continues a run: give its directory as out=")
        from .config import resumed_config
        config = resumed_config(Path(out), settings)
        runs.check_same_spec(Path(out), source.text, input)
    else:
        config = TrainConfig.from_spec(source).replace(**settings)
    for warning in (*analysis.warnings, *loss_warnings(analysis)):
        print(warning.render(source.text, source.filename), file=sys.stderr)
    out_dir = run_directory(path or "net", None if out is None else str(out))
    return run_training(analysis, source.text, config, out_dir, resume=resume,
                        overwrite=overwrite, show_progress=progress)


def _analysis(spec, input) -> tuple[Analysis, str | None]:
    """The analysis to train, and the spec file's path where it came from one."""
    if isinstance(spec, Analysis):
        if input is not None:
            raise RunError("input= reshapes a spec; this is an analysis already: analyze the "
                           "spec with the input instead")
        return spec, None
    path = None
    if isinstance(spec, os.PathLike) or (isinstance(spec, str) and "\n" not in spec and
                                         (spec.endswith(".spec") or Path(spec).is_file())):
        path = os.fspath(spec)
        spec = parse(read_text(path), path)
    elif isinstance(spec, str):
        spec = parse(spec)
    return analyze(spec, input), path


def load_run(path: str | os.PathLike) -> Run:
    """A run directory as a Run: its spec, configuration, class names, history, and the model
    with best.pt's weights, in eval mode (and with --ema, `ema_model` with their average)."""
    from ..export import load_trained

    run_dir = Path(path)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir} is not a directory",
                       hint="give the directory a training wrote, e.g. runs/NAME")
    spec_path, checkpoint = runs.spec_and_checkpoint(str(run_dir), None)  # its spec, best.pt
    config_path = run_dir / "config.json"
    try:
        saved = json.loads(config_path.read_text(encoding="utf-8"))
        text = read_text(spec_path)
    except (OSError, ValueError) as error:
        raise RunError(f"cannot load the run {run_dir}: {error}") from None
    except ArchDSLError as error:
        raise RunError(f"cannot load the run {run_dir}: {error.message}") from None
    config = TrainConfig.from_dict(saved, str(config_path))
    analysis = analyze(parse(text, spec_path), RunDirectory(run_dir).recorded_input())
    history = RunDirectory(run_dir).history()
    classes = saved.get("classes") or _known_classes(config.dataset, analysis.output)
    return Run(run_dir, history, None, list(classes), load_trained(analysis, checkpoint),
               analysis, config, ema_model=_averaged_model(analysis, checkpoint))


def _averaged_model(analysis: Analysis, path) -> torch.nn.Module | None:
    """The network with the moving average of the weights that a checkpoint of an --ema run
    holds, in eval mode; None for any other checkpoint."""
    from ..compiler import build
    from . import averaging, checkpoint

    state = checkpoint.load(Path(path))
    if "ema" not in state:
        return None
    model = build(analysis)
    checkpoint.load_model(model, {"model": averaging.weights(state, path)}, Path(path))
    return model.eval()


def _known_classes(dataset: str, output: tuple[int, ...]) -> list[str]:
    """The class names of a run from before config.json kept them."""
    from .datasets import find_dataset
    entry = find_dataset(dataset)
    if entry is not None and entry.classes is not None and len(entry.classes) == output[0]:
        return list(entry.classes)
    return [str(i) for i in range(output[0])]
