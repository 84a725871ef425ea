"""What each layer keeps for the backward pass (Facts.saved, summed by archdsl/memory.py)
against what autograd saves, measured with saved_tensors_hooks over the contract cases, in
float32 and under bf16 autocast on the CPU."""
import pytest
import torch

import archdsl
from archdsl.compiler import build
from archdsl.memory import live_bytes_peak, saved_bytes
from saved_tensors import measured_bytes, measured_inference_peak
from test_contract import analyze_call, case_id, CASES, MERGE_CASES


# (autocast's type, the input's): float32; bf16 autocast on a float32 input, as a network's
# first layers see it; and on a bfloat16 one, as the layer sits after a lowered convolution
PRECISIONS = [("float32", "float32"), ("bf16", "float32"), ("bf16", "bf16")]
DTYPES = {"float32": torch.float32, "bf16": torch.bfloat16}


@pytest.mark.parametrize("precision, input_precision", PRECISIONS,
                         ids=["float32", "bf16", "bf16-input"])
@pytest.mark.parametrize("batch", [2, 3])
@pytest.mark.parametrize("call, shape", CASES, ids=[case_id(*c) for c in CASES])
def test_layer_keeps_what_autograd_saves(call, shape, batch, precision, input_precision):
    # the layer as it sits in a network: its input requires grad
    layer, row = analyze_call(call, shape)
    analysis = archdsl.analyze(f"input {'x'.join(map(str, shape))}\n{call}")
    x = torch.randn(batch, *shape).to(DTYPES[input_precision]).requires_grad_()
    assert saved_bytes(analysis, batch, True, precision, input_precision)[1] == \
        measured_bytes(layer.build(row.facts), x, precision=precision)


@pytest.mark.parametrize("precision", ["float32", "bf16"])
@pytest.mark.parametrize("batch", [2, 3])
@pytest.mark.parametrize("text, _", MERGE_CASES, ids=[t.split("\n")[1] for t, _ in MERGE_CASES])
def test_merge_keeps_what_autograd_saves(text, _, batch, precision):
    # the whole small network, trained as usual: its input requires no grad
    analysis = archdsl.analyze(text)
    x = torch.randn(batch, *analysis.input)
    assert saved_bytes(analysis, batch, precision=precision)[1] == \
        measured_bytes(build(analysis), x, precision=precision)


def _frozen(call):
    return f"{call[:-1]}, frozen=true)" if call.endswith(")") else f"{call}(frozen=true)"


WEIGHTED = [(call, shape) for call, shape in CASES if analyze_call(call, shape)[1].params]


@pytest.mark.parametrize("call, shape", WEIGHTED, ids=[case_id(*c) for c in WEIGHTED])
def test_a_frozen_layer_keeps_what_autograd_saves(call, shape):
    # its parameters need no gradient, its input does: some layers keep less
    analysis = archdsl.analyze(f"input {'x'.join(map(str, shape))}\n{_frozen(call)}")
    assert analysis.rows[0].trainable == 0
    x = torch.randn(2, *shape, requires_grad=True)
    assert saved_bytes(analysis, 2, input_requires_grad=True)[1] == \
        measured_bytes(build(analysis), x)


@pytest.mark.parametrize("call, shape", CASES, ids=[case_id(*c) for c in CASES])
def test_the_inference_peak_is_never_more_than_the_tensors_alive(call, shape):
    # memory.live_bytes_peak counts each layer's inputs and output; what a layer's own steps
    # allocate besides (max pooling's indices, a norm's statistics) comes on top, never less
    analysis = archdsl.analyze(f"input {'x'.join(map(str, shape))}\n{call}")
    assert live_bytes_peak(analysis, 2) <= \
        measured_inference_peak(build(analysis), torch.randn(2, *shape))
