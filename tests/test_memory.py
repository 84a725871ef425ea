"""archdsl/memory.py, predicted for every shipped spec against torch's own accounting: the bytes
autograd keeps for backward (saved_tensors_hooks on the compiled network in train mode, the
input needing no grad, as in training) and the tensors alive at once without grad, at two batch
sizes; parameters, gradients, buffers and optimizer state against the tensors that exist after
one real optimizer step."""
from pathlib import Path

import pytest
import torch

import archdsl
from archdsl.compiler import build
from archdsl.memory import largest_batch, live_bytes_peak, saved_bytes, training_memory
from archdsl.train.config import TrainConfig
from archdsl.train.setup import make_optimizer
from conftest import SPECS
from saved_tensors import measured_bytes, measured_inference_peak

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


def _small_network(spec: Path):
    analysis = archdsl.analyze(archdsl.parse(spec.read_text(), str(spec)), small_input(spec))
    with torch.device("meta"):  # VGG's 100M weights: uninitialized is enough to count
        network = build(analysis)
    network.to_empty(device="cpu")
    for tensor in network.parameters():
        torch.nn.init.normal_(tensor.data, 0, 0.01)
    for name, buffer in network.named_buffers():
        buffer.fill_(1 if name.endswith("running_var") else 0)
    return analysis, network


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_saved_bytes_match_autograd(spec):
    analysis, network = _small_network(spec)
    for batch in (1, 2):
        per_row, total = saved_bytes(analysis, batch)
        assert len(per_row) == len(analysis.rows)
        assert total == measured_bytes(network, torch.randn(batch, *analysis.input)), batch


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_saved_bytes_under_bf16_autocast_match_autograd(spec):
    # bfloat16 copies of each convolution's and linear layer's input and weight, activations
    # in bfloat16 after them, statistics in float32
    analysis, network = _small_network(spec)
    for batch in (1, 2):
        assert saved_bytes(analysis, batch, precision="bf16")[1] == \
            measured_bytes(network, torch.randn(batch, *analysis.input), precision="bf16"), batch


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


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_inference_peak_matches_the_tensors_alive(spec):
    analysis, network = _small_network(spec)
    for batch in (1, 2):
        assert live_bytes_peak(analysis, batch) == \
            measured_inference_peak(network, torch.randn(batch, *analysis.input)), batch


def test_inference_peak_of_a_skip_holds_the_skipped_value_only_until_its_merge():
    # the residual's input stays alive through both convolutions; the first convolution's
    # output is freed once the second has read it
    analysis = archdsl.analyze("input 4x8x8\n[Conv(4, 3, p=1) -> Conv(4, 3, p=1)] + Identity "
                               "-> Conv(4, 1)")
    one = 2 * 4 * 4 * 8 * 8  # bytes of one 4×8×8 map at batch 2
    assert live_bytes_peak(analysis, 2) == 3 * one
    assert measured_inference_peak(build(analysis), torch.randn(2, 4, 8, 8)) == 3 * one


def test_dropout_in_eval_holds_nothing_of_its_own():
    # the input (its caller holds it), Linear(50)'s output, which Dropout passes through, and
    # the last output
    analysis = archdsl.analyze("input 100\nLinear(50) -> Dropout -> Linear(10)")
    assert live_bytes_peak(analysis, 2) == 2 * 4 * (100 + 50 + 10)
    assert measured_inference_peak(build(analysis), torch.randn(2, 100)) == \
        2 * 4 * (100 + 50 + 10)


STEPPED = ["simple_cnn", "fashion_mnist_best", "resnet18", "mobilenet_v3_small", "convnext_tiny"]


def _after_one_step(analysis, network, config):
    optimizer = make_optimizer(config, network)
    network.train()
    network(torch.randn(2, *analysis.input)).square().mean().backward()
    optimizer.step()
    parameters = list(network.parameters())
    state = [t for values in optimizer.state.values() for t in values.values()
             if isinstance(t, torch.Tensor)]
    return {"parameters": sum(p.nbytes for p in parameters),
            "buffers": sum(b.nbytes for b in network.buffers()),
            "gradients": sum(p.grad.nbytes for p in parameters if p.grad is not None),
            "optimizer_state": sum(t.nbytes for t in state),
            "step_counters": sum(t.nbytes for t in state if t.dim() == 0)}


@pytest.mark.parametrize("optimizer, momentum", [("sgd", 0.0), ("sgd", 0.9), ("adam", 0.9),
                                                 ("adamw", 0.9)])
@pytest.mark.parametrize("name", STEPPED)
def test_model_state_matches_the_tensors_after_one_optimizer_step(name, optimizer, momentum):
    spec = next(s for s in SPECS if s.stem == name)
    analysis, network = _small_network(spec)
    measured = _after_one_step(analysis, network,
                               TrainConfig(optimizer=optimizer, momentum=momentum))
    predicted = training_memory(analysis, 2, optimizer, momentum).to_dict()
    assert {key: predicted[key] for key in measured} == measured


def test_frozen_parameters_have_no_gradient_and_no_optimizer_state():
    analysis = archdsl.analyze("input 3x8x8\nConv(8, 3, frozen=true) -> BatchNorm(frozen=true) "
                               "-> ReLU -> Flatten -> Linear(4)")
    measured = _after_one_step(analysis, build(analysis), TrainConfig(optimizer="adam"))
    predicted = training_memory(analysis, 2, "adam").to_dict()
    assert {key: predicted[key] for key in measured} == measured
    assert measured["gradients"] == (8 * 6 * 6 * 4 + 4) * 4


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_buffer_bytes_match_the_built_network(spec):
    analysis, network = _small_network(spec)
    assert training_memory(analysis, 1).buffers == sum(b.nbytes for b in network.buffers())


def test_training_memory_is_plain_data_and_adds_up():
    analysis = archdsl.analyze(Path("specs/simple_cnn.spec").read_text())
    memory = training_memory(analysis, 32, "sgd", 0.9)
    data = memory.to_dict()
    assert all(type(value) in (int, float, str) for value in data.values())
    assert data["total"] == sum(data[key] for key in ("parameters", "buffers", "gradients",
                                                      "optimizer_state", "activations"))
    assert data["activations"] == saved_bytes(analysis, 32)[1]
    assert data["optimizer_state"] == data["gradients"] == data["parameters"]


@pytest.mark.parametrize("budget", [4 * 10 ** 6, 3 * 2 ** 23, 2 ** 30])
def test_the_largest_batch_that_fits_is_the_last_one_under_the_budget(budget):
    analysis = archdsl.analyze(Path("specs/simple_cnn.spec").read_text())
    memory = largest_batch(analysis, budget)
    assert memory.total <= budget < training_memory(analysis, memory.batch + 1).total


def test_nothing_fits_below_one_example():
    analysis = archdsl.analyze(Path("specs/simple_cnn.spec").read_text())
    assert largest_batch(analysis, training_memory(analysis, 1).total - 1) is None
    assert largest_batch(analysis, training_memory(analysis, 1).total).batch == 1
