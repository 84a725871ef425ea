"""archdsl/memory.py: the bytes autograd keeps for backward, predicted for every shipped spec,
against saved_tensors_hooks on the compiled network in train mode (the input needs no grad, as
in training), at two batch sizes."""
from pathlib import Path

import pytest
import torch

import archdsl
from archdsl.compiler import build
from archdsl.memory import saved_bytes
from conftest import SPECS
from saved_tensors import measured_bytes

# The smallest inputs these specs take; the others' images at most 64×64, where the last
# BatchNorm still sees more than one value per channel at batch 1 (training refuses one).
SMALL = {"unet": "1x188x188", "alexnet": "3x63x63"}


def small_input(spec: Path) -> str:
    shape = archdsl.parse(spec.read_text(), str(spec)).input.shape
    if spec.stem in SMALL:
        return SMALL[spec.stem]
    if len(shape) == 3 and max(shape[1:]) > 64:
        shape = (shape[0], 64, 64)
    return "x".join(map(str, shape))


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_saved_bytes_match_autograd(spec):
    analysis = archdsl.analyze(archdsl.parse(spec.read_text(), str(spec)), small_input(spec))
    with torch.device("meta"):  # VGG's 100M weights: uninitialized is enough to count
        network = build(analysis)
    network.to_empty(device="cpu")
    for tensor in network.parameters():
        torch.nn.init.normal_(tensor.data, 0, 0.01)
    for name, buffer in network.named_buffers():
        buffer.fill_(1 if name.endswith("running_var") else 0)
    for batch in (1, 2):
        per_row, total = saved_bytes(analysis, batch)
        assert len(per_row) == len(analysis.rows)
        assert total == measured_bytes(network, torch.randn(batch, *analysis.input)), batch


def test_a_storage_two_layers_keep_counts_once():
    # ReLU keeps its output, which the next convolution keeps as its input; Flatten is a view
    # of that convolution's output, which Linear keeps
    analysis = archdsl.analyze("input 3x8x8\nConv(4, 3) -> ReLU -> Conv(4, 3) -> Flatten -> "
                               "Linear(2)")
    per_row, total = saved_bytes(analysis, 2)
    assert per_row == (2 * 4 * 3 * 8 * 8, 2 * 4 * 4 * 6 * 6, 0, 0, 2 * 4 * 4 * 4 * 4)
    assert total == measured_bytes(build(analysis), torch.randn(2, 3, 8, 8))


def test_layers_on_the_input_without_parameters_keep_nothing():
    # the input needs no gradient in training: autograd records nothing before the first
    # parameter, and Dropout's mask is not kept
    analysis = archdsl.analyze("input 3x8x8\nDropout -> MaxPool(2) -> Conv(4, 1)")
    per_row, total = saved_bytes(analysis, 2)
    assert per_row[:2] == (0, 0) and per_row[2] == 2 * 4 * 3 * 4 * 4
    assert total == measured_bytes(build(analysis), torch.randn(2, 3, 8, 8))


def test_a_product_of_a_tensor_with_itself_keeps_it_once():
    # both factors are one convolution's output
    analysis = archdsl.analyze("input 4x6x6\nConv(4, 1) as x -> Multiply(x)")
    per_row, total = saved_bytes(analysis, 2)
    assert per_row[-1] == 2 * 4 * 4 * 6 * 6
    assert total == measured_bytes(build(analysis), torch.randn(2, 4, 6, 6))
