"""Floors to compare against: the same workloads with plain asyncio and no persistence.

python benchmarks/baseline.py w1|w3|w4
"""

from __future__ import annotations

import asyncio
import graphlib
import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from workloads import w1_fanout, w3_layered


async def _noop() -> None:
    return None


async def dag(plan: dict) -> None:  # type: ignore[type-arg]
    """graphlib + asyncio tasks, no store: the bare cost of scheduling these DAGs."""
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for step in plan["steps"]:
        needs = step.get("needs", [])
        if "foreach" in step:
            for item in step["foreach"]:
                sorter.add(f"{step['id']}[{item}]", *needs)
        else:
            expanded = []
            for need in needs:
                expanded.append(need)
            sorter.add(step["id"], *expanded)
    # foreach groups: a need on the group is a need on every instance
    groups: dict[str, list[str]] = {}
    for step in plan["steps"]:
        if "foreach" in step:
            groups[step["id"]] = [f"{step['id']}[{i}]" for i in step["foreach"]]
    sorter = graphlib.TopologicalSorter()
    for step in plan["steps"]:
        needs = [n for need in step.get("needs", []) for n in groups.get(need, [need])]
        for name in groups.get(step["id"], [step["id"]]):
            sorter.add(name, *needs)
    sorter.prepare()
    running: dict[asyncio.Task[None], str] = {}
    while sorter.is_active():
        for name in sorter.get_ready():
            running[asyncio.create_task(_noop())] = name
        done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            sorter.done(running.pop(task))


async def spawn(count: int = 300, parallel: int = 8) -> None:
    """Spawn `count` /bin/true processes, `parallel` at a time, with asyncio's default child watcher."""
    gate = asyncio.Semaphore(parallel)

    async def one() -> None:
        async with gate:
            process = await asyncio.create_subprocess_exec("/bin/true")
            await process.wait()

    await asyncio.gather(*(one() for _ in range(count)))


def main() -> None:
    which = sys.argv[1]
    started = time.perf_counter()
    if which == "w1":
        asyncio.run(dag(w1_fanout()))
    elif which == "w3":
        asyncio.run(dag(w3_layered()))
    elif which == "w4":
        asyncio.run(spawn())
    print(f"{time.perf_counter() - started:.4f}")


if __name__ == "__main__":
    main()
