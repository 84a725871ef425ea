"""Analysis -> torch.nn.Module. Every shape comes from the analysis; none is computed here."""
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
            module = node.layer.build(*row.input_shapes)
            if node.layer.frozen:
                module.requires_grad_(False)
            _attach(self, node.name, module)
            self._order.append((module, node.name, node.inputs))
        previous = [INPUT] + [name for _, name, _ in self._order[:-1]]
        self._is_chain = all(inputs == (p,) for (_, _, inputs), p in zip(self._order, previous))

    def forward(self, x):
        if self._is_chain:
            for module, _, _ in self._order:
                x = module(x)
            return x
        values = {INPUT: x}
        for module, name, inputs in self._order:
            values[name] = module(*(values[i] for i in inputs))
        return values[name]


def build(source: Analysis | Spec | str) -> Network:
    """A module for an analysis, a parsed spec or spec text."""
    return Network(source if isinstance(source, Analysis) else analyze(source))


def _attach(root: nn.Module, path: str, module: nn.Module) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        if not hasattr(root, part):
            root.add_module(part, nn.Module())
        root = getattr(root, part)
    root.add_module(leaf, module)
