"""A spec as a file that runs without archdsl, checked after writing: a trained spec as ONNX or
TorchScript, or any spec as Python source (codegen.py), which needs no weights.

ONNX goes through torch.onnx.export's default exporter since torch 2.9, the one built on
torch.export (`dynamo=True`), which needs the packages `onnx` and `onnxscript`; the file is then
run with onnxruntime. Both need nothing from the network. TorchScript is torch.jit.trace, loaded
back with torch.jit.load (torch marks torch.jit deprecated, but it still ships and loads in C++).
Either way the batch axis stays free: the files take any batch size.
"""
from __future__ import annotations

import contextlib
import copy
import io
import keyword
import math
import runpy
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from .analysis import Analysis
from .compiler import build
from .errors import RunError
from .suffixes import format_from_suffix
from .train import checkpoint

FORMATS = ("onnx", "torchscript", "python")
_SUFFIXES = {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript", ".py": "python"}
ONNX_PACKAGES = {"onnx": "onnx", "onnxscript": "onnxscript"}
ONNX_HINT = "pip install 'archdsl[export]' (onnx, onnxscript and onnxruntime)"
_SINGLE_FILE_LIMIT = 2 ** 31 - 2 ** 27  # protobuf's 2 GiB, less room for the graph


@dataclass(frozen=True)
class Check:
    """How the exported file's outputs compare with the module's on random inputs."""

    runtime: str  # onnxruntime or torch.jit.load
    batch: int
    max_abs_diff: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance


def load_trained(analysis: Analysis, path: Path) -> torch.nn.Module:
    """The spec's module with a checkpoint's weights (`runs/NAME/best.pt`, or a bare state_dict),
    in eval mode; a RunError when the weights belong to another network."""
    if not Path(path).is_file():
        raise RunError(f"checkpoint {path} does not exist")
    state = checkpoint.load(Path(path))  # a run's checkpoint or a bare state_dict
    model = build(analysis)
    checkpoint.load_model(model, state, Path(path))
    return model.eval()


def _exportable(model: torch.nn.Module) -> torch.nn.Module:
    """`model`, or a copy with the submodules that share a name with an nn.Module attribute
    (U-Net's `double`) renamed: torch.jit and torch.export reach submodules by attribute and
    would find the method. The forward pass holds its modules directly, so it is unchanged;
    only those names get a `_` (`up1.double_.conv1.weight`)."""
    if not any(hasattr(type(m), k) for m in model.modules() for k in m._modules):
        return model
    model = copy.deepcopy(model)
    for module in list(model.modules()):
        for key in [k for k in module._modules if hasattr(type(module), k)]:
            new = key + "_"
            while new in module._modules or hasattr(type(module), new):
                new += "_"
            module._modules = {(new if k == key else k): v
                               for k, v in module._modules.items()}
    return model


def output_format(path: Path, given: str | None = None) -> str:
    """The format asked for, else the one the file's suffix names (.onnx, .pt)."""
    return format_from_suffix(path, given, _SUFFIXES, "export")


def export(model: torch.nn.Module, analysis: Analysis, path: Path, fmt: str) -> Path:
    """Write `model` (eval mode) as ONNX or TorchScript, with a free batch axis."""
    if fmt not in FORMATS or fmt == "python":
        raise RunError(f"unknown export format {fmt!r}; choose {' or '.join(FORMATS)}")
    example = _example(analysis, 2)  # batch 2: torch.export would fix a batch of 1
    model = _exportable(model)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        if fmt == "onnx":
            _export_onnx(model, example, path, analysis.totals.param_bytes)
        else:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                warnings.filterwarnings("ignore", category=FutureWarning)
                traced = torch.jit.trace(model, example, check_trace=False)  # verify() checks
                torch.jit.save(traced, str(path))
    return path


def _export_onnx(model, example, path: Path, param_bytes: int) -> None:
    for module, package in ONNX_PACKAGES.items():
        try:
            __import__(module)
        except ImportError:
            raise RunError(f"exporting ONNX needs the package {package!r}, which is not "
                           f"installed", hint=ONNX_HINT) from None
    batch = torch.export.Dim("batch")
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example,), str(path), dynamo=True, verbose=False,
                              input_names=["input"], output_names=["output"],
                              dynamic_shapes=({0: batch},),
                              external_data=param_bytes > _SINGLE_FILE_LIMIT)
    except Exception as err:  # the exporter raises many kinds: report its first line
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise RunError(f"torch.onnx.export failed: {reason}") from None


def verify(model: torch.nn.Module, analysis: Analysis, path: Path, fmt: str, batch: int = 3,
           seed: int = 0) -> Check:
    """Run the written file on `batch` random inputs (a batch other than the export's) and
    compare with the module. Tolerance: 1e-4 of the largest output, at least 1e-5."""
    x = _example(analysis, batch, seed)
    with torch.no_grad():
        expected = model(x)
    if fmt == "onnx":
        runtime, got = "onnxruntime", _run_onnx(path, x)
    else:
        runtime = "torch.jit.load"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = torch.jit.load(str(path))
        with torch.no_grad():
            got = loaded(x)
    if tuple(got.shape) != tuple(expected.shape):
        raise RunError(f"{path} gives shape {tuple(got.shape)}, the module "
                       f"{tuple(expected.shape)}")
    return _check(runtime, batch, got, expected)


def export_python(analysis: Analysis, path: Path, class_name: str | None = None) -> str:
    """Write the spec as Python source (codegen.python_source); the class's name."""
    from .codegen import default_class_name, python_source
    name = class_name or default_class_name(analysis.name)
    if not name.isidentifier() or keyword.iskeyword(name):
        raise RunError(f"{name!r} cannot name a Python class",
                       hint="give --class-name an identifier, e.g. Net")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(python_source(analysis, name), encoding="utf-8")
    return name


def verify_python(analysis: Analysis, path: Path, class_name: str, batch: int = 3,
                  seed: int = 0) -> Check:
    """Run the written file, build its class, load the compiled spec's state_dict into it
    strictly, and compare the two in eval mode on `batch` random inputs (verify's tolerance)."""
    try:
        namespace = runpy.run_path(str(path))
        exported = namespace[class_name]()
    except Exception as err:  # whatever the file raises: report it
        raise RunError(f"{path} does not run: {type(err).__name__}: {err}") from None
    model = build(analysis).eval()
    try:
        exported.load_state_dict(model.state_dict(), strict=True)
    except RuntimeError as err:
        raise RunError(f"{path}: {class_name} does not take the compiled spec's state_dict: "
                       f"{str(err).strip().splitlines()[-1].strip()}") from None
    exported.eval()
    x = _example(analysis, batch, seed)
    with torch.no_grad():
        expected, got = model(x), exported(x)
    if tuple(got.shape) != tuple(expected.shape):
        raise RunError(f"{path} gives shape {tuple(got.shape)}, the module "
                       f"{tuple(expected.shape)}")
    return _check(f"{Path(path).name}'s {class_name}", batch, got, expected)


def _check(runtime: str, batch: int, got: torch.Tensor, expected: torch.Tensor) -> Check:
    diff = (got - expected).abs().max().item()
    scale = expected.abs().max().item()
    return Check(runtime, batch, diff if math.isfinite(diff) else math.inf,
                 max(1e-5, 1e-4 * scale))


def _run_onnx(path: Path, x: torch.Tensor) -> torch.Tensor:
    try:
        import onnxruntime
    except ImportError:
        raise RunError("checking the ONNX file needs the package 'onnxruntime', which is not "
                       "installed", hint=ONNX_HINT + "; or skip the check with --no-verify") \
            from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(["output"], {"input": x.numpy()})
    return torch.from_numpy(output)


def _example(analysis: Analysis, batch: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *analysis.input, generator=generator)
