"""archdsl: write a convolutional network as text; get its shapes, parameters and cost exactly."""
from .analysis import Analysis, Row, Totals, analyze
from .errors import ArchDSLError
from .parser import parse, read_spec

__version__ = "0.1.0"
__all__ = ["Analysis", "ArchDSLError", "Row", "Totals", "analyze", "from_module", "parse",
           "read_spec", "__version__"]


def __getattr__(name: str):
    if name == "from_module":  # it imports torch, which `import archdsl` never does
        from .importer import from_module
        return from_module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
