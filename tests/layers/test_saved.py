"""What each layer keeps for the backward pass (Facts.saved, summed by archdsl/memory.py)
against what autograd saves, measured with saved_tensors_hooks over the contract cases."""
import pytest
import torch

import archdsl
from archdsl.compiler import build
from archdsl.memory import saved_bytes
from saved_tensors import measured_bytes
from test_contract import analyze_call, case_id, CASES, MERGE_CASES


@pytest.mark.parametrize("batch", [2, 3])
@pytest.mark.parametrize("call, shape", CASES, ids=[case_id(*c) for c in CASES])
def test_layer_keeps_what_autograd_saves(call, shape, batch):
    # the layer as it sits in a network: its input requires grad
    layer, row = analyze_call(call, shape)
    analysis = archdsl.analyze(f"input {'x'.join(map(str, shape))}\n{call}")
    x = torch.randn(batch, *shape, requires_grad=True)
    assert saved_bytes(analysis, batch, input_requires_grad=True)[1] == \
        measured_bytes(layer.build(row.facts), x)


@pytest.mark.parametrize("batch", [2, 3])
@pytest.mark.parametrize("text, _", MERGE_CASES, ids=[t.split("\n")[1] for t, _ in MERGE_CASES])
def test_merge_keeps_what_autograd_saves(text, _, batch):
    # the whole small network, trained as usual: its input requires no grad
    analysis = archdsl.analyze(text)
    x = torch.randn(batch, *analysis.input)
    assert saved_bytes(analysis, batch)[1] == measured_bytes(build(analysis), x)


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
