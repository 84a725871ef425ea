"""Every layer type, each in one registered class. Importing this package registers them all."""
from . import (activation, channels, conv, dense, merge, norm, pool, residual,  # noqa: F401
               resize)  # (registration)
from .base import (bind_layer, Facts, Kept, Layer, layer_class, layer_names, register,
                   torch_order, TorchOrder, WindowFacts)
from .geometry import format_shape, Shape

__all__ = ["Facts", "Kept", "Layer", "Shape", "WindowFacts", "bind_layer", "format_shape",
           "layer_class", "layer_names", "register", "torch_order", "TorchOrder"]
