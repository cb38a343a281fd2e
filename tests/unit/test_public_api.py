"""The SDK surface is a promise: adding or removing a name here is a deliberate act."""

from __future__ import annotations

import subprocess
import sys

import agenthq

EXPECTED = {
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
}


def test_all_is_pinned() -> None:
    assert set(agenthq.__all__) == EXPECTED


def test_every_name_resolves() -> None:
    for name in agenthq.__all__:
        assert getattr(agenthq, name) is not None


def test_import_is_light() -> None:
    """`import agenthq` must not pull in the engine, SQLAlchemy or pydantic: the CLI's start-up
    time is part of every command."""
    code = "import sys, agenthq; print(sorted(m for m in ('sqlalchemy', 'pydantic', 'agenthq.engine') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
