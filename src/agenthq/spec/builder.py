"""Build a plan in Python: `Plan("name").step(...)` → the same PlanSpec the YAML loader makes.

The builder only collects plain data and hands it to the models, so a Python plan is
validated by exactly the rules a YAML plan is, with the same messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from agenthq.errors import InputError
from agenthq.spec.models import PlanSpec


class Plan:
    """A plan under construction. Each method returns the plan, so calls can chain."""

    def __init__(
        self,
        name: str,
        *,
        description: str = "",
        policy: dict[str, Any] | None = None,
        budgets: dict[str, Any] | None = None,
        agents: dict[str, Any] | None = None,
    ) -> None:
        self._data: dict[str, Any] = {"name": name, "description": description, "steps": []}
        if policy is not None:
            self._data["policy"] = policy
        if budgets is not None:
            self._data["budgets"] = budgets
        if agents is not None:  # name → {kind, capabilities, max_concurrency, ...}
            self._data["agents"] = agents

    def param(
        self,
        name: str,
        *,
        default: Any = None,
        required: bool = False,
        description: str = "",
        type: str | None = None,
        choices: list[str] | None = None,
    ) -> Plan:
        """Declare a param; `type` is int, float, str, bool, path or choice (with `choices`)."""
        declared: dict[str, Any] = {
            "default": default,
            "required": required,
            "description": description,
        }
        if type is not None:
            declared["type"] = type
        if choices is not None:
            declared["choices"] = choices
        self._data.setdefault("params", {})[name] = declared
        return self

    def defaults(self, **fields: Any) -> Plan:
        """Plan-wide defaults: timeout, retry, env, agent, kill_grace, gates, approval."""
        self._data["defaults"] = {**self._data.get("defaults", {}), **fields}
        return self

    def concurrency(
        self, *, max_workers: int | None = None, agents: dict[str, int] | None = None
    ) -> Plan:
        self._data["concurrency"] = {"max_workers": max_workers, "agents": agents or {}}
        return self

    def secrets(self, *names: str) -> Plan:
        self._data.setdefault("secrets", []).extend(names)
        return self

    def step(
        self,
        id: str,
        *,
        run: str | None = None,
        uses: str | Callable[..., Any] | None = None,
        needs: Sequence[str] = (),
        with_: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Plan:
        """Add a step. `uses` may be a function object; `with_` is the plan's `with`."""
        step: dict[str, Any] = {"id": id, **fields}
        if needs:
            step["needs"] = list(needs)
        if run is not None:
            step["run"] = run
        if uses is not None:
            step["uses"] = uses if isinstance(uses, str) else _target_of(uses)
        if with_ is not None:
            step["with"] = with_
        self._data["steps"].append(step)
        return self

    def spec(self) -> PlanSpec:
        """Validate and freeze. PlanError lists every problem, as for a YAML file."""
        from agenthq.spec.load import spec_from_data

        return spec_from_data(self._data, file="<python plan>")


def _target_of(function: Callable[..., Any]) -> str:
    module = getattr(function, "__module__", None)
    name = getattr(function, "__qualname__", "")
    if not module or "." in name or module == "__main__":
        raise InputError(
            f"cannot refer to {function!r} by import path; define it at the top level of an "
            "importable module (not __main__) or pass `uses` as 'module:function'"
        )
    return f"{module}:{name}"
