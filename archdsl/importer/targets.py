"""What `archdsl import TARGET` names, loaded into an nn.Module: torchvision:NAME (built with
weights=None), path/to/file.py:NAME or package.module:NAME, NAME being a module class or a
function returning a module, called with the given keyword arguments."""
from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import first_line, TargetError

if TYPE_CHECKING:
    from torch import nn

FORMS = "torchvision:NAME, path/to/file.py:NAME or package.module:NAME"


def load_target(target: str, arguments: dict | None = None) -> tuple[nn.Module, str]:
    """(the module, where it came from for the spec's header:
    `torchvision.models.resnet50()`, `model.py:SimpleCNN()`, `package.module.factory(c=64)`);
    a TargetError says what cannot be found or built."""
    arguments = dict(arguments or {})
    place, colon, name = target.rpartition(":")
    if not colon or not place or not name:
        raise TargetError(f"cannot read the target {target!r}: write {FORMS}")
    if place == "torchvision":
        return _torchvision(name, arguments)
    if place.endswith(".py") or "/" in place or "\\" in place:
        return _built(_file(Path(place)), place, name, arguments, f"{place}:{name}")
    return _built(_package(place), place, name, arguments, f"{place}.{name}")


def _torchvision(name: str, arguments: dict) -> tuple[nn.Module, str]:
    try:
        import torchvision
    except ImportError:
        raise TargetError("torchvision:… targets need the package 'torchvision', which is not "
                          "installed") from None
    names = torchvision.models.list_models()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        raise TargetError(f"torchvision has no model {name!r}",
                          hint=f"did you mean {' or '.join(close)}?" if close else
                          "torchvision.models.list_models() lists them")
    if "weights" in arguments:
        raise TargetError("torchvision models are imported with weights=None: an import "
                          "writes the architecture, and nothing is downloaded")
    try:
        module = torchvision.models.get_model(name, weights=None, **arguments)
    except Exception as error:  # an unknown or bad keyword: the builder raises TypeError, …
        raise TargetError(f"torchvision.models.{name}({_arguments(arguments)}) fails: "
                          f"{first_line(error)}") from None
    return module, f"torchvision.models.{name}({_arguments(arguments)})"


def _file(path: Path):
    if not path.is_file():
        raise TargetError(f"{path} does not exist" if not path.exists() else
                          f"{path} is not a file")
    # A name of its own, so that two files called model.py do not meet in sys.modules; the
    # file's folder on the path, for the imports of its neighbours.
    spec = importlib.util.spec_from_file_location(
        f"archdsl_import_{path.stem}_{uuid.uuid4().hex[:8]}", path)
    if spec is None or spec.loader is None:
        raise TargetError(f"{path} cannot be imported as Python")
    namespace = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = namespace  # as an import does: dataclasses and pickle look there
    try:
        with _importable(path.resolve().parent):
            spec.loader.exec_module(namespace)
    except Exception as error:
        del sys.modules[spec.name]
        raise TargetError(f"importing {path} fails: {type(error).__name__}: "
                          f"{first_line(error)}") from None
    return namespace


@contextmanager
def _importable(folder: Path):
    """The modules in `folder` importable for a while, as `python -m` makes the current
    folder's."""
    entry = str(folder)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        sys.path.remove(entry)


def _package(name: str):
    try:
        with _importable(Path.cwd()):
            return importlib.import_module(name)
    except ModuleNotFoundError as error:
        raise TargetError(f"there is no module {name!r} to import"
                          + (f" ({error.name!r} is missing)" if error.name != name else ""),
                          hint="a file is named by its path: path/to/model.py:NAME") from None
    except Exception as error:
        raise TargetError(f"importing {name} fails: {type(error).__name__}: "
                          f"{first_line(error)}") from None


def _built(namespace, place: str, name: str, arguments: dict, written: str):
    """The module that `name` in `namespace` (a file or a module, `place`) is or builds;
    `written`: how to name it."""
    from torch import nn
    found = namespace
    for part in name.split("."):
        if not hasattr(found, part):
            raise TargetError(f"{place} has no {name!r}" + _suggestion(namespace, name))
        found = getattr(found, part)
    call = f"{written}({_arguments(arguments)})"
    if isinstance(found, nn.Module):
        if arguments:
            raise TargetError(f"{written} is a module already; it takes no arguments")
        return found, written
    if not callable(found):
        raise TargetError(f"{written} is neither a module class nor a function that returns "
                          f"a module")
    try:
        inspect.signature(found).bind(**arguments)
    except TypeError as error:
        raise TargetError(f"{call} cannot be called: {error}") from None
    except ValueError:  # no signature to check against: the call says
        pass
    try:
        module = found(**arguments)
    except Exception as error:
        raise TargetError(f"{call} fails: {type(error).__name__}: {first_line(error)}") \
            from None
    if not isinstance(module, nn.Module):
        raise TargetError(f"{call} returns {type(module).__name__} {module!r:.40}, not an "
                          f"nn.Module")
    return module, call


def _suggestion(namespace, name: str) -> str:
    """The module classes and functions the namespace defines, or the one closest to `name`."""
    from torch import nn
    own = [key for key, value in vars(namespace).items()
           if not key.startswith("_") and getattr(value, "__module__", None) ==
           namespace.__name__ and (inspect.isfunction(value) or
                                   (isinstance(value, type) and issubclass(value, nn.Module)))]
    close = difflib.get_close_matches(name, own, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f"; it defines {', '.join(own)}" if own else ""


def _arguments(arguments: dict) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in arguments.items())
