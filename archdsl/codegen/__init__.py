"""An analysis as a standalone PyTorch file: a class with __init__ and forward whose submodules
are named like the rows of `archdsl check`, so that the compiled Network's state_dict loads into
it strictly.

Each scope of the spec becomes a module: a plain chain of modules an nn.Sequential of an
OrderedDict, a definition a helper class (`class Bottleneck(nn.Module)`), any other scope with
branches a class named after it. A class is parameterised by its input channels and the
definition's parameters: each constructor argument is written as the spec's expression for it
(`c * 4`), or another expression over the parameters, but only where that expression gives the
concrete value in every instance; where none does, the value becomes a parameter of its own.
Instances whose structure differs (a repeat count, a crop) get classes of their own.

Pure Python: the layers' torch calls are plain data (layers/torch_call.py); nothing imports torch.
scopes.py groups the rows by scope, classes.py makes and parameterises the classes, writer.py
writes the file, text.py the words and lines.
"""
from .writer import default_class_name, python_source

__all__ = ["default_class_name", "python_source"]
