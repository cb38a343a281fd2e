"""The benchmark workloads W1–W4 as plan files (the same plans a user would run)."""

from __future__ import annotations

import compileall
import importlib.util
import random
from pathlib import Path
from typing import Any

import yaml

NOOP = "agenthq.builtin:noop"


def w1_fanout(width: int = 1000) -> dict[str, Any]:
    """root → `width` no-op steps → join."""
    return {
        "name": "w1-fanout",
        "steps": [
            {"id": "root", "uses": NOOP},
            {"id": "fan", "needs": ["root"], "foreach": list(range(width)), "uses": NOOP},
            {"id": "join", "needs": ["fan"], "uses": NOOP},
        ],
    }


def w2_chain(length: int = 300) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"id": "s0", "uses": NOOP}]
    steps += [{"id": f"s{i}", "needs": [f"s{i - 1}"], "uses": NOOP} for i in range(1, length)]
    return {"name": "w2-chain", "steps": steps}


def w3_layered(layers: int = 50, width: int = 100, seed: int = 42) -> dict[str, Any]:
    """Each step needs 2 random steps of the layer before (seed 42)."""
    rng = random.Random(seed)
    steps: list[dict[str, Any]] = []
    for layer in range(layers):
        for k in range(width):
            step: dict[str, Any] = {"id": f"l{layer}_{k}", "uses": NOOP}
            if layer:
                step["needs"] = [f"l{layer - 1}_{j}" for j in sorted(rng.sample(range(width), 2))]
            steps.append(step)
    return {"name": "w3-layered", "steps": steps}


def w4_shell(count: int = 300) -> dict[str, Any]:
    return {
        "name": "w4-shell",
        "steps": [{"id": f"t{i}", "run": "/bin/true"} for i in range(count)],
    }


def ungated(factory: Any) -> Any:
    """The same workload with every gate switched off, to measure what the gates cost."""

    def plan() -> dict[str, Any]:
        data = factory()
        return {**data, "name": data["name"] + "-ungated", "defaults": {"gates": []}}

    return plan


WORKLOADS = {
    "W1 fanout-1000": (w1_fanout, 1002),
    "W1 gates off": (ungated(w1_fanout), 1002),
    "W2 chain-300": (w2_chain, 300),
    "W3 layered-5000": (w3_layered, 5000),
    "W4 shell-300": (w4_shell, 300),
    "W4 gates off": (ungated(w4_shell), 300),
}


def write_plan(directory: Path, plan: dict[str, Any]) -> Path:
    path = directory / f"{plan['name']}.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
    return path


def compile_bytecode() -> None:
    """Byte-compile agenthq, as `pip install agenthq` does when it installs the package.

    The development install (`make install`, editable) has Python write the .pyc files on
    first import instead, unless PYTHONDONTWRITEBYTECODE is set, as it is on the machine these
    figures come from: then every `agenthq run` compiled every module it imported again,
    and W1's whole-process wall measured the compiler (1.24 s against 1.10 s). Modules whose
    .pyc is current are left alone.
    """
    spec = importlib.util.find_spec("agenthq")
    assert spec is not None
    assert spec.submodule_search_locations is not None
    for location in spec.submodule_search_locations:
        compileall.compile_dir(location, quiet=1)
