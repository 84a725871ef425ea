"""Memory measured with torch's own accounting: the references for archdsl/memory.py."""
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


def measured_bytes(module, *inputs, precision: str = "float32") -> int:
    """The bytes of the distinct storages that autograd saves during a train-mode forward of
    `module` on `inputs` (torch.autograd.graph.saved_tensors_hooks), parameters and buffers
    excluded: they exist whether or not anything is saved. precision "bf16": under
    torch.autocast on the CPU, in bfloat16, as `archdsl train --amp bf16` trains there."""
    module.train()
    state = {t.untyped_storage().data_ptr() for t in [*module.parameters(), *module.buffers()]}
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in state:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor), \
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        module(*inputs)
    return sum(storages.values())


class _LiveStorages(TorchDispatchMode):
    """Every storage an operation creates, alive until the last tensor on it is freed; the
    peak of their bytes, read after each operation (its inputs are still held then)."""

    def __init__(self, outside):
        super().__init__()
        self.outside = outside  # storages made before: the input, parameters, buffers
        self.tensors: dict[int, int] = {}  # storage -> tensors alive on it
        self.sizes: dict[int, int] = {}
        self.live = self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(result):
            if isinstance(tensor, torch.Tensor):
                self._track(tensor)
        self.peak = max(self.peak, self.live)
        return result

    def _track(self, tensor):
        key = tensor.untyped_storage().data_ptr()
        if key in self.outside or not tensor.untyped_storage().nbytes():
            return
        if key not in self.tensors:
            self.tensors[key], self.sizes[key] = 0, tensor.untyped_storage().nbytes()
            self.live += self.sizes[key]
        self.tensors[key] += 1
        weakref.finalize(tensor, self._release, key)

    def _release(self, key):
        self.tensors[key] -= 1
        if not self.tensors[key]:
            self.live -= self.sizes.pop(key)
            del self.tensors[key]


def measured_inference_peak(module, input) -> int:
    """The most bytes of tensors alive at once during an eval-mode forward without grad,
    `input` included, parameters and buffers not: what operations allocate as the forward
    pass sees them (kernels' own scratch memory is not a tensor and is not seen)."""
    module.eval()
    outside = {t.untyped_storage().data_ptr() for t in [input, *module.parameters(),
                                                           *module.buffers()]}
    mode = _LiveStorages(outside)
    with torch.no_grad(), mode:
        output = module(input)
    del output
    return mode.peak + input.untyped_storage().nbytes()
