"""An nn.Module as a flat graph of archdsl layer calls: what tracing finds (trace.py) and what
the spec writer reads (structure.py). Plain data only."""
from __future__ import annotations

from dataclasses import dataclass

INPUT = "input"  # the name the nodes use for the network's input


@dataclass(frozen=True)
class ImportedNode:
    """One archdsl layer call found in the module's forward pass."""

    name: str  # unique within the graph (torch.fx's node name)
    layer: str  # a registered archdsl layer: Conv, BatchNorm, Add, Concat, …
    # archdsl arguments as written: (keyword or None, value), positional first, plain values,
    # only those that differ from the layer's defaults
    arguments: tuple[tuple[str | None, object], ...]
    # the nodes (or INPUT) read, in the PyTorch code's operand order; one for non-merges
    inputs: tuple[str, ...]
    # the submodules the call is made in, outermost first, as (attribute, class name):
    # (("layer1", "Sequential"), ("0", "Bottleneck")); the called module itself is not included
    scope: tuple[tuple[str, str], ...]
    attribute: str | None  # the called module's attribute name (conv1); None for a function
    source: str  # where it is called, for messages and comments: "layer1.0.conv1 (Conv2d)"


@dataclass(frozen=True)
class ImportedGraph:
    input: tuple[int, ...]  # C×H×W, without the batch axis
    nodes: tuple[ImportedNode, ...]  # in execution order; the last one is the output
    origin: str  # what was imported, for the spec's header: torchvision.models.resnet50()
