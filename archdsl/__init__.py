"""archdsl: write a convolutional network as text; get its shapes, parameters and cost exactly."""
from .analysis import Analysis, Row, Totals, analyze
from .errors import ArchDSLError
from .parser import parse, read_spec

__version__ = "0.1.0"
__all__ = ["Analysis", "ArchDSLError", "Row", "Totals", "analyze", "parse", "read_spec",
           "__version__"]
