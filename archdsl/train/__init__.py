"""Training: datasets, and turning a spec into a trained PyTorch model.

The package is callable: `archdsl.train(spec, epochs=2, data_dir="data")` trains a spec and
returns its Run (see trained.train). A function of that name could not live beside the package,
whose import would replace it as the attribute `archdsl.train`; so the package's own class is a
module type with a `__call__`. Nothing here imports torch until a training starts.
"""
import sys
import types


class _TrainPackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from .trained import train
        return train(*args, **kwargs)

    @property
    def __signature__(self):
        import inspect

        from .trained import train
        return inspect.signature(train)


sys.modules[__name__].__class__ = _TrainPackage
