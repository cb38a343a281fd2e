"""Templates in plans render in a Jinja2 sandbox with StrictUndefined.

The sandbox means a plan cannot reach Python internals through a template; StrictUndefined
means a typo (`steps.pakage.outputs`) fails loudly instead of rendering as an empty string.
`references()` reads a template's AST so the compiler can refuse references to anything but
params, `item` and upstream steps before a run starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from agenthq.errors import InputError

# `inbox`: the unread messages of the step's agent (a list of {id, sender, subject, body}).
ROOT_NAMES = frozenset({"params", "item", "steps", "inbox"})
_MARKERS = ("{{", "{%", "{#")


class TemplateError(InputError):
    """A template cannot be parsed or rendered."""


@lru_cache(maxsize=1)
def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    env.filters["tojson"] = _tojson
    return env


def _tojson(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def is_template(text: str) -> bool:
    return any(marker in text for marker in _MARKERS)


@lru_cache(maxsize=4096)
def _compiled(text: str) -> Any:
    return _environment().from_string(text)


@lru_cache(maxsize=4096)
def _compiled_expression(source: str) -> Any:
    return _environment().compile_expression(source, undefined_to_none=False)


def _sole_expression(text: str) -> str | None:
    """`inner` when the whole text is one `{{ inner }}`, so it can be evaluated natively."""
    stripped = text.strip()
    if stripped.startswith("{{") and stripped.endswith("}}") and stripped.count("{{") == 1:
        return stripped[2:-2].strip()
    return None


def render(text: str, context: Mapping[str, Any]) -> str:
    """Render `text`; plain strings come back untouched without touching Jinja."""
    if not is_template(text):
        return text
    try:
        return str(_compiled(text).render(context))
    except (UndefinedError, SecurityError, TemplateSyntaxError, TypeError, ValueError) as exc:
        raise TemplateError(f"template {text!r} failed: {exc}") from None


def evaluate(text: str, context: Mapping[str, Any]) -> Any:
    """The value of a `{{ expression }}` (a bool, a list …); other text renders to a string."""
    inner = _sole_expression(text)
    if inner is None:
        return render(text, context)
    try:
        return _compiled_expression(inner)(**context)
    except (UndefinedError, SecurityError, TemplateSyntaxError, TypeError, ValueError) as exc:
        raise TemplateError(f"expression {inner!r} failed: {exc}") from None


def condition_source(text: str) -> str:
    """A condition may be written bare (`outputs.n >= 3`) or as `{{ outputs.n >= 3 }}`."""
    inner = _sole_expression(text)
    return inner if inner is not None else text.strip()


def check_expression(text: str) -> None:
    """TemplateError unless `text` compiles as one sandboxed expression."""
    try:
        _compiled_expression(condition_source(text))
    except TemplateSyntaxError as exc:
        raise TemplateError(str(exc)) from None


def holds(text: str, context: Mapping[str, Any]) -> bool:
    """Whether a sandboxed condition is true over `context`; a missing name is false (an
    event without the output it asks about does not match), other mistakes raise."""
    try:
        value = _compiled_expression(condition_source(text))(**context)
    except UndefinedError:
        return False
    except (SecurityError, TemplateSyntaxError, TypeError, ValueError) as exc:
        raise TemplateError(f"condition {text!r} failed: {exc}") from None
    return is_truthy(value)


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every string inside nested lists and mappings (`with:` arguments)."""
    if isinstance(value, str):
        inner = _sole_expression(value)
        return evaluate(value, context) if inner is not None else render(value, context)
    if isinstance(value, Mapping):
        return {k: render_value(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, context) for v in value]
    return value


def is_truthy(value: Any) -> bool:
    """How `when:` reads a result: real booleans as they are, rendered text by its words."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "no", "off", "none")
    return bool(value)


@dataclass(frozen=True)
class References:
    """What a template reads: root names, and which params and steps by name."""

    names: frozenset[str]
    params: frozenset[str]
    steps: frozenset[str]
    dynamic_steps: bool  # `steps[some_expression]`: cannot be checked before running


def references(text: str) -> References:
    """Parse `text` and list what it refers to. TemplateError on a syntax error."""
    if not is_template(text):
        return References(frozenset(), frozenset(), frozenset(), False)
    try:
        tree = _environment().parse(text)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error: {exc.message}") from None
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    names = {n.name for n in tree.find_all(nodes.Name) if n.ctx == "load"} - assigned
    params: set[str] = set()
    steps: set[str] = set()
    dynamic = False
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if not isinstance(node, nodes.Getattr | nodes.Getitem):
            continue
        base = node.node
        if not isinstance(base, nodes.Name) or base.name not in ("params", "steps"):
            continue
        key: str | None = None
        if isinstance(node, nodes.Getattr):
            key = node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            key = node.arg.value
        if key is None:
            dynamic = dynamic or base.name == "steps"
            continue
        (params if base.name == "params" else steps).add(key)
    return References(frozenset(names), frozenset(params), frozenset(steps), dynamic)
