"""`archdsl export`: ONNX (run with onnxruntime) and TorchScript (torch.jit.load) give the
module's outputs, for a trained chain and for graphs with residual sums and cropped concats."""
import sys
import warnings

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import archdsl
from archdsl.cli import app
from archdsl.compiler import build
from archdsl.errors import RunError
from archdsl.export import export, load_trained, verify
from archdsl.train.config import TrainConfig
from archdsl.train.loop import train
from conftest import ROOT, SPECS

onnxruntime = pytest.importorskip("onnxruntime")
runner = CliRunner()
SIMPLE = ROOT / "specs/simple_cnn.spec"
# U-Net's pattern, small: a cropped skip into a concat, a residual sum, an up-convolution, and
# rows named `double` like U-Net's (nn.Module.double is a method: torch.jit would find that).
SKIPS = """input 1x20x20
def Double(c) = [Conv(c, 3) -> ReLU]
Double(4) as enc -> MaxPool(2) -> Conv(8, 3) -> ReLU
  -> [Conv(8, 3, p=1) -> BatchNorm] + Identity
  -> ConvTranspose(4, 2, s=2) -> Concat(enc, crop=true) -> Double(2) -> Flatten -> Linear(3)
"""


def analysis_of(text, name="<spec>", input=None):
    return archdsl.analyze(archdsl.parse(text, name), input)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """simple_cnn after one tiny epoch on synthetic data: runs/NAME/best.pt."""
    out = tmp_path_factory.mktemp("run")
    analysis = analysis_of(SIMPLE.read_text(), str(SIMPLE))
    train(analysis, SIMPLE.read_text(), TrainConfig(dataset="synthetic", subset=64, epochs=1,
                                                    batch_size=32, device="cpu"),
          out, show_progress=False, echo=lambda line: None)
    return out / "best.pt"


def random_model(analysis, seed=0):
    """A freshly built model with BatchNorm statistics that are not the identity, so that
    eval-mode normalization is exercised."""
    torch.manual_seed(seed)
    model = build(analysis)
    for name, buffer in model.named_buffers():
        if name.endswith("running_mean"):
            buffer.normal_(0, 0.1)
        elif name.endswith("running_var"):
            buffer.uniform_(0.5, 2.0)
    return model


def random_checkpoint(analysis, path, seed=0):
    """random_model's weights in the checkpoint format of runs/NAME/best.pt."""
    torch.save({"model": random_model(analysis, seed).state_dict()}, path)
    return path


def run_onnx(path, x):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.numpy()})[0]


@pytest.mark.parametrize("fmt,suffix", [("onnx", "onnx"), ("torchscript", "pt")])
def test_cli_exports_a_trained_checkpoint(trained, tmp_path, fmt, suffix):
    out = tmp_path / f"model.{suffix}"
    result = runner.invoke(app, ["export", str(SIMPLE), "--checkpoint", str(trained),
                                 "--format", fmt, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"{out}: {fmt}, input N×1×28×28" in result.stdout
    assert "matches PyTorch on 3 random inputs" in result.stdout
    # Independently of verify(): the file, loaded fresh, gives the checkpoint's outputs.
    model = load_trained(analysis_of(SIMPLE.read_text()), trained)
    x = torch.randn(5, 1, 28, 28)
    with torch.no_grad():
        expected = model(x).numpy()
    if fmt == "onnx":
        got = run_onnx(out, x)
    else:
        with torch.no_grad():
            got = torch.jit.load(str(out))(x).numpy()
    assert got.shape == (5, 10)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name, fmt", [("model.pt", "torchscript"), ("model.ONNX", "onnx")])
def test_cli_takes_the_format_from_the_suffix(trained, tmp_path, name, fmt):
    # As draw does: -o model.pt is TorchScript without --format (it was ONNX named .pt).
    out = tmp_path / name
    result = runner.invoke(app, ["export", str(SIMPLE), "--checkpoint", str(trained), "-o",
                                 str(out), "--no-verify"])
    assert result.exit_code == 0, result.output
    assert f"{out}: {fmt}, input N×1×28×28" in result.stdout
    if fmt == "torchscript":
        assert isinstance(torch.jit.load(str(out)), torch.jit.ScriptModule)
    else:
        assert run_onnx(out, torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_cli_refuses_a_suffix_that_names_no_format(trained, tmp_path):
    result = runner.invoke(app, ["export", str(SIMPLE), "--checkpoint", str(trained), "-o",
                                 str(tmp_path / "model.bin")])
    assert result.exit_code == 2
    assert result.stderr == ("error: cannot tell the export's format from 'model.bin'\n"
                             "hint: name the file .onnx, .pt or .py, or pass --format\n")
    assert not (tmp_path / "model.bin").exists()


def test_onnx_of_a_graph_spec(tmp_path):
    """Residual sum, cropped concat, renamed rows, from a checkpoint; every shipped spec, ResNet
    and U-Net among them, is checked below."""
    analysis = analysis_of(SKIPS)
    model = load_trained(analysis, random_checkpoint(analysis, tmp_path / "best.pt"))
    out = export(model, analysis, tmp_path / "model.onnx", "onnx")
    x = torch.randn(1, *analysis.input)  # the export used a batch of 2: the batch is free
    with torch.no_grad():
        expected = model(x).numpy()
    got = run_onnx(out, x)
    assert got.shape == (1, *analysis.output)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())
    assert verify(model, analysis, out, "onnx").ok


def test_torchscript_of_a_graph_spec(tmp_path):
    analysis = analysis_of(SKIPS)
    model = load_trained(analysis, random_checkpoint(analysis, tmp_path / "best.pt"))
    out = export(model, analysis, tmp_path / "model.pt", "torchscript")
    check = verify(model, analysis, out, "torchscript")
    assert check.ok and check.runtime == "torch.jit.load" and check.batch == 3


def test_rows_named_like_module_methods_are_renamed_for_export(tmp_path):
    """nn.Module.double is a method: the exported module calls the row `double_`, while the
    model given stays as it was."""
    analysis = analysis_of(SKIPS)
    model = load_trained(analysis, random_checkpoint(analysis, tmp_path / "best.pt"))
    keys = list(model.state_dict())
    assert "double.conv.weight" in keys
    out = export(model, analysis, tmp_path / "model.pt", "torchscript")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exported = list(torch.jit.load(str(out)).state_dict())
    assert exported == [k.replace("double.", "double_.") for k in keys]
    assert list(model.state_dict()) == keys


def test_a_bare_state_dict_loads_too(tmp_path):
    analysis = analysis_of(SKIPS)
    path = tmp_path / "weights.pt"
    torch.save(build(analysis).state_dict(), path)
    assert isinstance(load_trained(analysis, path), torch.nn.Module)


def test_checkpoint_of_another_network(trained, tmp_path):
    result = runner.invoke(app, ["export", str(ROOT / "specs/mlp.spec"), "--checkpoint",
                                 str(trained), "-o", str(tmp_path / "m.onnx")])
    assert result.exit_code == 2
    assert "does not fit this spec" in result.stderr and "spec.spec" in result.stderr
    assert not (tmp_path / "m.onnx").exists()


def test_cli_exports_a_run_directory_with_its_spec_and_best_checkpoint(trained, tmp_path):
    run = trained.parent
    for arguments in (["export", str(run)], ["export", str(SIMPLE), "--checkpoint", str(run)]):
        out = tmp_path / "model.pt"
        result = runner.invoke(app, [*arguments, "--format", "torchscript", "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert f"{out}: torchscript, input N×1×28×28" in result.stdout
        model = load_trained(analysis_of(SIMPLE.read_text()), trained)
        x = torch.randn(3, 1, 28, 28)
        with torch.no_grad():
            np.testing.assert_allclose(torch.jit.load(str(out))(x).numpy(), model(x).numpy(),
                                       rtol=1e-4, atol=1e-5)
        out.unlink()


def test_missing_checkpoint(tmp_path):
    result = runner.invoke(app, ["export", str(SIMPLE), "--checkpoint",
                                 str(tmp_path / "none.pt"), "-o", str(tmp_path / "m.onnx")])
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_missing_onnx_packages_are_named(monkeypatch, tmp_path):
    analysis = analysis_of(SKIPS)
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import fails
    with pytest.raises(RunError, match="needs the package 'onnxscript'") as error:
        export(build(analysis).eval(), analysis, tmp_path / "m.onnx", "onnx")
    assert "archdsl[export]" in error.value.hint


# U-Net at its smallest valid input (archdsl sweep): 572×572 costs 150 GMACs an example.
SMALLER_INPUT = {"unet": "1x188x188"}


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_every_shipped_spec_exports(spec, fmt, tmp_path):
    analysis = analysis_of(spec.read_text(), str(spec), SMALLER_INPUT.get(spec.stem))
    model = random_model(analysis).eval()  # as load_trained gives it, without the file
    out = export(model, analysis, tmp_path / "model", fmt)
    check = verify(model, analysis, out, fmt, batch=2)
    assert check.ok, check


def test_a_file_without_weights(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"epoch": 3, "model": {"note": "not tensors"}}, path)
    with pytest.raises(RunError, match="is not an archdsl checkpoint: it has no model weights"):
        load_trained(analysis_of(SKIPS), path)


def test_cli_exports_python_without_a_checkpoint(tmp_path):
    out = tmp_path / "model.py"
    result = runner.invoke(app, ["export", str(SIMPLE), "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"{out}: python, class SimpleCnn, input N×1×28×28"
    assert lines[1].startswith("model.py's SimpleCnn takes the compiled spec's state_dict and "
                               "matches it on 3 random inputs: max |difference| ")
    # Independently of the check: the file, run fresh, takes the compiled state_dict strictly.
    namespace = {}
    exec(out.read_text(), namespace)
    network = build(analysis_of(SIMPLE.read_text())).eval()
    model = namespace["SimpleCnn"]().eval()
    model.load_state_dict(network.state_dict(), strict=True)
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(model(x), network(x))


def test_cli_python_format_by_option_and_class_name(tmp_path):
    out = tmp_path / "net.txt"
    result = runner.invoke(app, ["export", str(SIMPLE), "--format", "python", "--class-name",
                                 "Net", "--no-verify", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{out}: python, class Net, input N×1×28×28\n"
    assert "class Net(nn.Module):" in out.read_text()


def test_cli_python_export_of_a_run_directory_reads_its_spec(trained, tmp_path):
    out = tmp_path / "model.py"
    result = runner.invoke(app, ["export", str(trained.parent), "-o", str(out), "--no-verify"])
    assert result.exit_code == 0, result.output
    name = trained.parent.name
    assert f"class {name[:1].upper() + name[1:]}(nn.Module):" in out.read_text()


def test_cli_python_export_takes_no_checkpoint(trained, tmp_path):
    result = runner.invoke(app, ["export", str(SIMPLE), "--checkpoint", str(trained), "-o",
                                 str(tmp_path / "model.py")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: the Python export writes code, not weights: it "
                                    "takes no --checkpoint\nhint: load a checkpoint's weights")
    assert not (tmp_path / "model.py").exists()


def test_cli_python_export_refuses_a_class_name_python_refuses(tmp_path):
    result = runner.invoke(app, ["export", str(SIMPLE), "--class-name", "class", "-o",
                                 str(tmp_path / "model.py")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: 'class' cannot name a Python class\n")
