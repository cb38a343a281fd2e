"""Resolve `uses: module:function` to a callable.

The module is looked up first in the plan file's directory (so a plan can ship its own
helpers beside it), then on the normal Python path. Importing runs the module's top-level
code: that is the point of `validate` checking it, and why it happens once per process.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agenthq.errors import InputError

_lock = threading.Lock()
_cache: dict[tuple[str, str | None], Callable[..., Any]] = {}


class CallableError(InputError):
    """A `uses` target cannot be imported or is not callable."""


def resolve_callable(target: str, search_dir: str | Path | None = None) -> Callable[..., Any]:
    key = (target, str(search_dir) if search_dir is not None else None)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    module_name, _, attr = target.partition(":")
    with _lock:
        added = False
        if search_dir is not None:
            entry = str(Path(search_dir).resolve())
            if entry not in sys.path:
                sys.path.insert(0, entry)
                added = True
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise CallableError(
                f"cannot import module {module_name!r} for `uses: {target}`: {exc}. "
                "Put the module beside the plan file or install it in this Python environment"
            ) from None
        except Exception as exc:  # the module's own top-level code failed
            raise CallableError(
                f"importing {module_name!r} for `uses: {target}` raised {type(exc).__name__}: {exc}"
            ) from None
        finally:
            if added:
                sys.path.remove(entry)
    function = getattr(module, attr, None)
    if function is None:
        raise CallableError(f"module {module_name!r} has no attribute {attr!r} (`uses: {target}`)")
    if not callable(function):
        raise CallableError(f"`uses: {target}` is a {type(function).__name__}, not a function")
    resolved: Callable[..., Any] = function
    _cache[key] = resolved
    return resolved
