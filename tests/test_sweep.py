"""`archdsl sweep`: one spec at several input sizes; where sizes break; the smallest valid size."""
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archdsl import parse, read_spec
from archdsl.cli import app
from archdsl.sweep import parse_shapes, parse_sizes, sweep
from conftest import ROOT

SIMPLE = str(ROOT / "specs/simple_cnn.spec")
UNET = str(ROOT / "specs/zoo/unet.spec")
runner = CliRunner()


def simple_cnn_params(size: int) -> int:
    """Conv 1→16 and 16→32 (3×3), two 2×2 pools, Linear(32·(size//4)²→128), Linear(128→10)."""
    features = 32 * (size // 2 // 2) ** 2
    return (16 * 9 + 16) + (32 * 16 * 9 + 32) + (128 * features + 128) + (10 * 128 + 10)


def test_sizes_and_shapes_options():
    assert parse_sizes("28:224:32") == [28, 60, 92, 124, 156, 188, 220]
    assert parse_sizes("28:32") == [28, 29, 30, 31, 32]
    assert parse_sizes("28, 32,64") == [28, 32, 64]
    assert parse_shapes("1x28x28,3x32x32") == [(1, 28, 28), (3, 32, 32)]
    for bad in ("28:", "a", "0:10", "30:20", "1:2:3:4", "1:100000"):
        with pytest.raises(ValueError):
            parse_sizes(bad)
    with pytest.raises(ValueError, match="1x28x28"):
        parse_shapes("1x28x28,1×32×32")


def test_parameters_and_macs_change_with_the_input():
    result = sweep(read_spec(SIMPLE), sizes=[28, 32, 64])
    assert [p.input for p in result.points] == [(1, 28, 28), (1, 32, 32), (1, 64, 64)]
    assert [p.params for p in result.points] == [simple_cnn_params(n) for n in (28, 32, 64)]
    assert result.points[0].params == 206_922 and result.points[0].macs == 1_218_048
    # conv MACs grow with the area; linear1's with its input features
    conv = lambda n: n * n * 16 * 9 + (n // 2) ** 2 * 32 * 16 * 9  # noqa: E731
    assert result.points[1].macs == conv(32) + 32 * 8 * 8 * 128 + 128 * 10
    assert all(p.output == (10,) for p in result.points)


def test_invalid_size_names_the_layer_and_the_reason():
    result = sweep(read_spec(SIMPLE), shapes=[(1, 3, 3), (1, 28, 28)])
    broken, fine = result.points
    assert not broken.valid and fine.valid
    assert broken.layer == "maxpool2"  # 3 -> conv 3 -> pool 1 -> conv 1 -> pool: 0
    assert broken.error.startswith("MaxPool: output would be 0×0")
    # the second MaxPool, on the line `  -> Conv(32, 3, p=1) -> ReLU -> MaxPool(2)`
    lines = Path(SIMPLE).read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if "Conv(32" in text)
    assert (broken.line, broken.column) == (line, lines[line - 1].index("MaxPool") + 1)


def test_smallest_valid_size():
    # simple CNN: two 2×2 pools need 4 (3 pools to 1, which the second pool refuses)
    assert sweep(read_spec(SIMPLE), sizes=[28]).smallest == (1, 4, 4)
    # U-Net with valid convolutions: 188 is the smallest input it takes (output 4×4)
    result = sweep(read_spec(UNET), shapes=[(1, 572, 572)])
    assert result.smallest == (1, 188, 188) and result.searched == (1, 572)
    # validity need not be monotonic: odd sizes break the residual sum, 1 breaks the pool
    spec = parse("input 1x9x9\n[MaxPool(2) -> Upsample(2)] + Identity -> Flatten", "odd.spec")
    result = sweep(spec, sizes=[7, 8, 9])
    assert result.smallest == (1, 2, 2)
    assert [p.valid for p in result.points] == [False, True, False]
    assert result.points[0].layer == "add" and "shapes differ" in result.points[0].error


def test_breaking_layer_inside_a_definition_is_named_by_its_scope():
    result = sweep(read_spec(UNET), shapes=[(1, 100, 100)])
    (point,) = result.points
    assert point.layer == "bottom.conv1" and point.error.startswith("Conv: output would be 0×0")


def test_flat_input_has_no_size_to_sweep():
    spec = parse("input 784\nLinear(10)")
    with pytest.raises(ValueError, match="spatial"):
        sweep(spec, sizes=[28])
    result = sweep(spec, shapes=[(784,), (100,)])
    assert result.smallest is None and result.searched is None
    assert [p.params for p in result.points] == [7850, 1010]


def test_sweep_command_table():
    result = runner.invoke(app, ["sweep", SIMPLE, "--size", "2:30:14"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "1×2×2" in out and "breaks at maxpool2" in out  # 2 -> pool -> 1 -> pool: 0
    assert f"{simple_cnn_params(16):,}" in out and f"{simple_cnn_params(30):,}" in out
    assert "smallest valid input: 1×4×4" in out


def test_sweep_command_json():
    result = runner.invoke(app, ["sweep", SIMPLE, "--input", "1x28x28,1x2x2", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["schema"] == "archdsl.sweep/1"
    ok, broken = data["sizes"]
    assert ok == {"input": [1, 28, 28], "valid": True, "output": [10], "params": 206_922,
                  "macs": 1_218_048, "activation_bytes": 4 * 44_170}
    assert broken["valid"] is False and broken["layer"] == "maxpool2"
    assert data["smallest_valid"] == [1, 4, 4]


def test_sweep_without_input_line_takes_channels_from_input_option():
    text = "Conv(8, 3) -> ReLU -> GlobalAvgPool -> Linear(2)"
    result = runner.invoke(app, ["sweep", "-", "--input", "3x5x5,3x2x2"], input=text)
    assert result.exit_code == 0, result.output
    assert "smallest valid input: 3×3×3" in result.stdout
    refused = runner.invoke(app, ["sweep", "-", "--size", "8:16:4"], input=text)
    assert refused.exit_code == 2 and "no input shape" in refused.output


@pytest.mark.parametrize("args", [[], ["--size", "8", "--input", "1x8x8"], ["--size", "x"],
                                  ["--input", "1x0x8"]])
def test_sweep_bad_options_exit_2(args):
    result = runner.invoke(app, ["sweep", SIMPLE, *args])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_sweep_spec_error_exits_2_with_position():
    result = runner.invoke(app, ["sweep", "-", "--size", "8"], input="input 1x8x8\nConv(8)")
    assert result.exit_code == 2
    assert "<stdin>:2:1: Conv is missing its argument 'kernel'" in result.output
