"""Import the model class a user names: ``path/to/file.py:Class`` or ``package.module:Class``."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from convert_model.core.errors import CheckpointError, UsageError


def import_class(reference: str) -> type:
    """Import and return the class named by ``reference``; errors name what is wrong."""
    location, sep, name = reference.rpartition(":")
    if not sep or not location or not name:
        raise UsageError(
            f"--model-class {reference!r}: expected path/to/file.py:Class or package.module:Class"
        )
    file = class_file(reference)
    if file is not None:
        module = _import_file(file)
    else:
        try:
            module = importlib.import_module(location)
        except ImportError as e:
            raise CheckpointError(f"--model-class: cannot import module {location!r} ({e})") from e
    cls = getattr(module, name, None)
    if not inspect.isclass(cls):
        available = sorted(
            n
            for n, v in vars(module).items()
            if inspect.isclass(v) and getattr(v, "__module__", None) == module.__name__
        )
        raise CheckpointError(
            f"--model-class: {location} defines no class {name!r}; "
            f"classes there: {', '.join(available) or 'none'}"
        )
    return cls


def class_file(reference: str) -> Path | None:
    """The file a ``path/to/file.py:Class`` reference names (None for ``module:Class``)."""
    location = reference.rpartition(":")[0]
    if location.endswith(".py") or "/" in location or "\\" in location:
        return Path(location)
    return None


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"--model-class: {path}: no such file")
    resolved = path.resolve()
    # A unique module name per file, so two files named model.py do not collide.
    module_name = "_convert_model_user_" + hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise CheckpointError(f"--model-class: {path}: cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    # Importing must not write a __pycache__ beside the user's file.
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    except SystemExit as e:  # sys.exit() at import is not a model class, whatever its code
        del sys.modules[module_name]
        raise CheckpointError(
            f"--model-class: importing {path} called sys.exit({e.code!r}); a model file must "
            "define its class without exiting"
        ) from e
    except Exception as e:
        del sys.modules[module_name]
        raise CheckpointError(
            f"--model-class: importing {path} failed: {type(e).__name__}: {e}"
        ) from e
    finally:
        sys.dont_write_bytecode = writes_bytecode
    return module


def construct(cls: type, kwargs: dict[str, Any]) -> Any:
    """Build ``cls(**kwargs)``; a constructor that raises is bad input, named as such."""
    try:
        return cls(**kwargs)
    except Exception as e:
        raise CheckpointError(
            f"--model-class: {cls.__name__}(**{kwargs!r}) raised {type(e).__name__}: {e}"
        ) from e
