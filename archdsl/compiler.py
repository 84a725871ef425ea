"""Analysis -> torch.nn.Module. Every shape comes from the analysis (each row's Facts); none is
computed here."""
from __future__ import annotations

from torch import nn

from .analysis import Analysis, analyze
from .ir import INPUT, Spec


class Network(nn.Module):
    """A compiled spec. Submodules are named like the rows of `archdsl check` (`block1.conv`)."""

    def __init__(self, analysis: Analysis):
        super().__init__()
        self.input_shape, self.output_shape = analysis.input, analysis.output
        self._order: list[tuple[nn.Module, str, tuple[str, ...]]] = []
        for node, row in zip(analysis.nodes, analysis.rows):
            module = node.layer.build(row.facts)
            if node.layer.frozen:
                module.requires_grad_(False)
            _attach(self, node.name, module)
            self._order.append((module, node.name, node.inputs))
        self._by_name = {name: module for module, name, _ in self._order}
        previous = [INPUT] + [name for _, name, _ in self._order[:-1]]
        self._is_chain = all(inputs == (p,) for (_, _, inputs), p in zip(self._order, previous))
        # Per step, the values it reads for the last time: forward drops them there, so that a
        # pass without grad holds only what later steps read (memory.live_bytes_peak's model).
        last_read = {source: index for index, (_, _, inputs) in enumerate(self._order)
                     for source in inputs}
        self._released = [tuple(source for source in dict.fromkeys(inputs)
                                if last_read[source] == index)
                          for index, (_, _, inputs) in enumerate(self._order)]

    def layer(self, name: str) -> nn.Module:
        """The module of the row `name` (get_submodule fails on names like `double`)."""
        return self._by_name[name]

    def forward(self, x):
        if self._is_chain:
            for module, _, _ in self._order:
                x = module(x)
            return x
        values = {INPUT: x}
        for (module, name, inputs), released in zip(self._order, self._released):
            values[name] = module(*(values[i] for i in inputs))
            for source in released:
                del values[source]
        return values[name]


def build(source: Analysis | Spec | str) -> Network:
    """A module for an analysis, a parsed spec or spec text."""
    return Network(source if isinstance(source, Analysis) else analyze(source))


def _attach(root: nn.Module, path: str, module: nn.Module) -> None:
    # Registered through _modules, not add_module: a row may be named like an nn.Module method
    # (`double`, `train`), and its state_dict key must still be its row name.
    *parents, leaf = path.split(".")
    for part in parents:
        root = root._modules.setdefault(part, nn.Module())
    root._modules[leaf] = module


def load_state_dict_by_order(model: nn.Module, state_dict: dict) -> None:
    """Copy a foreign state_dict (torchvision's, say) into `model` by position, not by name.

    A spec's modules are named after its rows (`layer1.block1.body.conv1`), so the keys of an
    architecture written elsewhere never match; the order of parameters and buffers does, when
    the spec lists the layers in the same order. Counts and every shape are checked first, and
    the first mismatch is raised as a ValueError naming both keys and both shapes.
    """
    ours, theirs = list(model.state_dict().items()), list(state_dict.items())
    for index in range(max(len(ours), len(theirs))):
        key, mine = ours[index] if index < len(ours) else (None, None)
        other, tensor = theirs[index] if index < len(theirs) else (None, None)
        if mine is None or tensor is None or mine.shape != tensor.shape:
            a = "nothing" if mine is None else f"{key} of shape {tuple(mine.shape)}"
            b = "nothing" if tensor is None else f"{other} of shape {tuple(tensor.shape)}"
            raise ValueError(f"tensor {index} differs: the model has {a}, the state_dict {b} "
                             f"({len(ours)} parameters and buffers against {len(theirs)})")
    model.load_state_dict({key: tensor for (key, _), (_, tensor) in zip(ours, theirs)})
