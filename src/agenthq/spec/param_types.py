"""Typed plan params: what `type: int|float|str|bool|path|choice` accepts, and the one
message that says what was wrong — for a default in the plan and a `-p` value alike."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def check_value(kind: str, value: Any, choices: list[str] | None, what: str) -> Any:
    """`value` as `kind` (text from the command line is converted); ValueError saying what is
    expected otherwise. `what` names the value in the message ("its default", "-p env")."""
    text = value.strip() if isinstance(value, str) else None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if text is not None and text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ValueError(f"{what} must be true or false (or yes/no, 1/0), got {value!r}")
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            if text is None:
                raise ValueError
            return int(text)
        except ValueError:
            raise ValueError(f"{what} must be a whole number, got {value!r}") from None
    if kind == "float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        try:
            if text is None:
                raise ValueError
            return float(text)
        except ValueError:
            raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text, got {value!r}")
    if kind == "choice":
        if value not in (choices or []):
            raise ValueError(f"{what} must be one of {', '.join(choices or [])}; got {value!r}")
        return value
    if kind == "path":
        if not value.strip() or "\x00" in value:
            raise ValueError(f"{what} must be a path, got {value!r}")
        pure = PurePosixPath(value)
        if not pure.is_absolute() and ".." in pure.parts:
            raise ValueError(f"{what} {value!r} climbs out of the workspace with `..`")
        return value
    return value
