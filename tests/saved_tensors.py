"""What autograd keeps for backward, measured: the reference for archdsl/memory.py's prediction."""
import torch


def measured_bytes(module, *inputs) -> int:
    """The bytes of the distinct storages that autograd saves during a train-mode forward of
    `module` on `inputs` (torch.autograd.graph.saved_tensors_hooks), parameters and buffers
    excluded: they exist whether or not anything is saved."""
    module.train()
    state = {t.untyped_storage().data_ptr() for t in [*module.parameters(), *module.buffers()]}
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in state:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        module(*inputs)
    return sum(storages.values())
