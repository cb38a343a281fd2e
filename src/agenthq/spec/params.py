"""Run parameters: `-p key=value` text → the values templates see as `params.NAME`.

The command line can only give strings, so a param whose default is a number, a boolean or
a JSON list/mapping takes its type from that default; a value that cannot become that type
is refused before the run starts rather than surprising a template halfway through it.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

from agenthq.errors import ParamError
from agenthq.spec.models import PlanSpec
from agenthq.spec.param_types import check_value

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def parse_param_args(args: list[str]) -> dict[str, str]:
    """`["repo=src", "query=a=b"]` → `{"repo": "src", "query": "a=b"}`; the last repeat wins."""
    values: dict[str, str] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParamError(f"-p expects key=value, got {arg!r}")
        values[key] = value
    return values


def resolve_params(
    spec: PlanSpec, given: Mapping[str, Any], *, allow_missing: bool = False
) -> dict[str, Any]:
    """Every declared param's value for one run: given ones (typed), then defaults.

    `allow_missing` is for checking a plan without running it: a required param nobody
    gave is then left out instead of refused.
    """
    _refuse_unknown(spec, given)
    values: dict[str, Any] = {}
    missing: list[str] = []
    for name, param in spec.params.items():
        if name in given:
            if param.type is not None:
                try:
                    values[name] = check_value(
                        param.type.value, given[name], param.choices, f"param {name!r}"
                    )
                except ValueError as exc:
                    raise ParamError(str(exc)) from None
            else:
                values[name] = _coerce(name, given[name], param.default)
        elif param.required:
            missing.append(name)
        else:
            values[name] = param.default
    if missing and not allow_missing:
        described = [
            f"{n!r} ({spec.params[n].description})" if spec.params[n].description else repr(n)
            for n in missing
        ]
        example = " ".join(f"-p {n}=VALUE" for n in missing)
        raise ParamError(
            f"plan {spec.name!r} requires param{'s' if len(missing) > 1 else ''} "
            f"{', '.join(described)}; pass {example}"
        )
    return values


def _refuse_unknown(spec: PlanSpec, given: Mapping[str, Any]) -> None:
    unknown = [name for name in given if name not in spec.params]
    if not unknown:
        return
    declared = list(spec.params)
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, declared, n=1)
        parts.append(f"unknown param {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""))
    known = (
        f"plan {spec.name!r} declares: {', '.join(declared)}"
        if declared
        else f"plan {spec.name!r} declares no params"
    )
    raise ParamError(f"{'; '.join(parts)} ({known})")


def _coerce(name: str, value: Any, default: Any) -> Any:
    """`value` in the type of `default` when it arrived as text; anything else unchanged."""
    if not isinstance(value, str) or default is None or isinstance(default, str):
        return value
    text = value.strip()
    # bool first: it is a subclass of int.
    if isinstance(default, bool):
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ParamError(f"param {name!r} expects true or false (or yes/no, 1/0), got {value!r}")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ParamError(f"param {name!r} expects a whole number, got {value!r}") from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise ParamError(f"param {name!r} expects a number, got {value!r}") from None
    if isinstance(default, list | dict):
        return _from_json(name, text, type(default))
    return value


def _from_json(name: str, text: str, kind: type[list[Any]] | type[dict[str, Any]]) -> Any:
    example = '["a", "b"]' if kind is list else '{"key": "value"}'
    what = "a list" if kind is list else "a mapping"
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, kind):
        raise ParamError(f"param {name!r} expects {what} in JSON such as {example}, got {text!r}")
    return parsed
