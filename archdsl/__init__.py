"""archdsl: write a convolutional network as text; get its shapes, parameters and cost exactly.

`import archdsl` stays torch-free: `archdsl.train(spec, …)`, `archdsl.load_run(path)` and
`archdsl.from_module(module, input)` import torch when called. In IPython or Jupyter,
`%load_ext archdsl` adds the `%%archdsl` cell magic.
"""
from .analysis import Analysis, Row, Totals, analyze
from .errors import ArchDSLError
from .parser import parse, read_spec

__version__ = "0.1.0"
__all__ = ["Analysis", "ArchDSLError", "Row", "Totals", "analyze", "from_module", "load_run",
           "parse", "read_spec", "train", "__version__"]


def __getattr__(name: str):
    # `train` is the package archdsl.train, which is callable (see its __init__); load_run and
    # from_module are looked up on first use, so that none brings in torch before it is called.
    if name == "train":
        import importlib
        return importlib.import_module(".train", __name__)
    if name == "load_run":
        from .train.trained import load_run
        return load_run
    if name == "from_module":
        from .importer import from_module
        return from_module
    raise AttributeError(f"module 'archdsl' has no attribute {name!r}")


def load_ipython_extension(ipython) -> None:
    """`%load_ext archdsl`: registers the `%%archdsl` cell magic (archdsl.magic)."""
    from .magic import load_ipython_extension as load
    load(ipython)
