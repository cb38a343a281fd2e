"""agenthq: mission control for autonomous agents.

The Python SDK in a few names::

    import agenthq

    plan = agenthq.Plan("hello").step("greet", run="echo hello")
    with agenthq.open_store("sqlite:///.agenthq/agenthq.db") as store:
        run = agenthq.Runner(store, home=".agenthq").run(plan)

Everything here is a stable interface (pinned by tests/unit/test_public_api.py); anything
imported from submodules may change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agenthq.errors import (
    AgentHQError,
    ConfigError,
    InputError,
    NotFoundError,
    ParamError,
    PlanError,
    StateError,
    StoreError,
)
from agenthq.states import FailureClass, RunState, StepState

if TYPE_CHECKING:
    from agenthq.engine.runner import Runner
    from agenthq.spec.builder import Plan
    from agenthq.spec.load import load_plan
    from agenthq.store import open_store

__version__ = "0.1.0"

__all__ = [
    "AgentHQError",
    "ConfigError",
    "FailureClass",
    "InputError",
    "NotFoundError",
    "ParamError",
    "Plan",
    "PlanError",
    "RunState",
    "Runner",
    "StateError",
    "StepState",
    "StoreError",
    "__version__",
    "load_plan",
    "open_store",
]

# Heavy parts load on first use, so `import agenthq` (and the CLI) start fast.
_LAZY = {
    "Plan": ("agenthq.spec.builder", "Plan"),
    "Runner": ("agenthq.engine.runner", "Runner"),
    "load_plan": ("agenthq.spec.load", "load_plan"),
    "open_store": ("agenthq.store", "open_store"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module_name), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'agenthq' has no attribute {name!r}")
