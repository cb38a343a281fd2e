"""compile(PlanSpec) → PlanGraph: the plan as the engine runs it. Pure; no I/O but imports.

Everything that can be known before a run starts is checked here, so a bad plan is refused
with every problem listed and nothing written: duplicate ids, unknown needs, cycles (printed
as a path), templates that reach for a step that is not upstream, `uses` targets that cannot
be imported. `foreach` steps expand into instances (`shard[1]` … `shard[4]`); a need on
`shard` is a need on every instance.
"""

from __future__ import annotations

import difflib
import fnmatch
import graphlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agenthq.errors import PlanError, Problem
from agenthq.spec import templating
from agenthq.spec.agents import AgentRef
from agenthq.spec.callables import CallableError, resolve_callable
from agenthq.spec.models import PlanSpec, RetrySpec, StepSpec
from agenthq.spec.source_map import Path as SpecPath
from agenthq.spec.source_map import SourceMap

_PLAIN_ITEM = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class StepNode:
    """One runnable step instance."""

    id: str  # instance id: `lint`, `shard[2]`
    base_id: str  # the id in the plan: `shard`
    spec: StepSpec
    needs: tuple[str, ...]  # instance ids
    timeout: float | None
    retry: RetrySpec
    agent: str | None  # the agent named by the plan; None when any agent with a tag may take it
    writes: tuple[str, ...]
    item: Any = None
    has_item: bool = False
    capability: str | None = None  # `agent: {capability: TAG}`: the scheduler picks the agent

    @property
    def starts_process(self) -> bool:
        """A shell step, or a prompt (a coding agent's CLI runs as a process): what the
        spawner may start and the risk gate scores before it starts."""
        return self.spec.run is not None or self.spec.prompt is not None


@dataclass(frozen=True)
class PlanGraph:
    spec: PlanSpec
    params: Mapping[str, Any]
    nodes: Mapping[str, StepNode]  # in a topological order
    groups: Mapping[str, tuple[str, ...]]  # base id → instance ids
    children: Mapping[str, tuple[str, ...]]
    conflicts: Mapping[str, frozenset[str]] = field(default_factory=dict)
    plan_dir: str | None = None

    def layers(self) -> list[list[str]]:
        """Instances grouped by longest path from a root: the rows of a drawing."""
        depth: dict[str, int] = {}
        for node in self.nodes.values():
            depth[node.id] = 1 + max((depth[n] for n in node.needs), default=-1)
        rows: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for step_id, d in depth.items():
            rows[d].append(step_id)
        return rows


class _Problems:
    def __init__(self, source: SourceMap | None) -> None:
        self.source = source
        self.items: list[Problem] = []

    def add(
        self, path: SpecPath, message: str, hint: str | None = None, *, key: bool = False
    ) -> None:
        line = column = None
        if self.source is not None:
            found = self.source.locate(path, key=key)
            if found is not None:
                line, column = found
        file = self.source.file if self.source is not None else None
        self.items.append(Problem(message, file, line, column, hint))

    def raise_if_any(self) -> None:
        if self.items:
            raise PlanError(self.items)


def compile_plan(
    spec: PlanSpec,
    *,
    params: Mapping[str, Any] | None = None,
    source: SourceMap | None = None,
    plan_dir: str | Path | None = None,
    check_callables: bool = True,
) -> PlanGraph:
    """Check `spec` as a whole and expand it; PlanError lists every problem found."""
    problems = _Problems(source)
    values = dict(params) if params is not None else {k: p.default for k, p in spec.params.items()}
    index = _index_steps(spec, problems)
    _check_needs(spec, index, problems)
    problems.raise_if_any()
    order = _topological_order(spec, index, problems)
    problems.raise_if_any()
    _check_templates(spec, index, problems)
    if check_callables:
        _check_callables(spec, plan_dir, problems)
    expanded = _expand(spec, index, order, values, problems)
    problems.raise_if_any()
    return _assemble(spec, values, expanded, plan_dir)


def _index_steps(spec: PlanSpec, problems: _Problems) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, step in enumerate(spec.steps):
        if step.id in index:
            first = index[step.id]
            where = ""
            if problems.source is not None:
                pos = problems.source.locate(("steps", first, "id"))
                where = f" (first defined on line {pos[0]})" if pos else ""
            problems.add(
                ("steps", i, "id"),
                f"duplicate step id {step.id!r}{where}",
                "give each step its own id",
            )
        else:
            index[step.id] = i
    return index


def _check_needs(spec: PlanSpec, index: dict[str, int], problems: _Problems) -> None:
    for i, step in enumerate(spec.steps):
        for k, need in enumerate(step.needs):
            if need == step.id:
                problems.add(("steps", i, "needs", k), f"step {step.id!r} needs itself")
            elif need not in index:
                close = difflib.get_close_matches(need, list(index), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"steps are: {', '.join(index)}"
                problems.add(
                    ("steps", i, "needs", k), f"step {step.id!r} needs unknown step {need!r}", hint
                )


def _topological_order(spec: PlanSpec, index: dict[str, int], problems: _Problems) -> list[str]:
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for step in spec.steps:
        sorter.add(step.id, *step.needs)
    try:
        return list(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle: list[str] = list(exc.args[1])  # each node runs before the next
        first = cycle[0]
        problems.add(
            ("steps", index[first], "needs"),
            "dependency cycle: " + " → ".join(cycle),
            "remove one of these needs so the steps can run in some order",
        )
        return []


def _template_fields(step: StepSpec) -> Iterator[tuple[SpecPath, str]]:
    """Every string in a step that is rendered as a template, with its path."""
    if step.run is not None:
        yield ("run",), step.run
    if step.when is not None:
        yield ("when",), step.when
    if step.prompt is not None:
        yield ("prompt",), step.prompt
    if step.cwd is not None:
        yield ("cwd",), step.cwd
    if isinstance(step.foreach, str):
        yield ("foreach",), step.foreach
    for key, value in step.env.items():
        yield ("env", key), value
    for k, pattern in enumerate(step.writes):
        yield ("writes", k), pattern
    yield from _nested_strings(("with",), step.with_)
    if step.wait_for is not None and step.wait_for.message:
        yield ("wait_for", "message"), step.wait_for.message
    if step.compensate is not None:
        if step.compensate.run is not None:
            yield ("compensate", "run"), step.compensate.run
        for key, value in step.compensate.env.items():
            yield ("compensate", "env", key), value
        yield from _nested_strings(("compensate", "with"), step.compensate.with_)


def _nested_strings(path: SpecPath, value: Any) -> Iterator[tuple[SpecPath, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _nested_strings((*path, str(k)), v)
    elif isinstance(value, list):
        for k, v in enumerate(value):
            yield from _nested_strings((*path, k), v)


class _Ancestry:
    """Upstream sets computed on demand: most plans reference few steps, and a full closure
    of a 5,000-step plan would cost more than the whole run."""

    def __init__(self, spec: PlanSpec) -> None:
        self._needs = {s.id: s.needs for s in spec.steps}
        self._cache: dict[str, frozenset[str]] = {}

    def of(self, step_id: str) -> frozenset[str]:
        if step_id not in self._cache:
            seen: set[str] = set()
            stack = list(self._needs.get(step_id, ()))
            while stack:
                current = stack.pop()
                if current not in seen:
                    seen.add(current)
                    stack.extend(self._needs.get(current, ()))
            self._cache[step_id] = frozenset(seen)
        return self._cache[step_id]


def _check_templates(spec: PlanSpec, index: dict[str, int], problems: _Problems) -> None:
    ancestry = _Ancestry(spec)
    for i, step in enumerate(spec.steps):
        allowed = set(templating.ROOT_NAMES)
        if step.foreach is None:
            allowed.discard("item")
        for path, text in _template_fields(step):
            at = ("steps", i, *path)
            try:
                refs = templating.references(text)
            except templating.TemplateError as exc:
                problems.add(at, f"step {step.id!r}: {exc}")
                continue
            for name in sorted(refs.names - allowed):
                hint = (
                    "templates can use params, steps (upstream only), item (in foreach steps) "
                    "and inbox (the agent's unread messages)"
                )
                if name == "item":
                    hint = "`item` exists only in steps with `foreach`"
                problems.add(at, f"step {step.id!r}: template uses unknown name {name!r}", hint)
            for param in sorted(refs.params - set(spec.params)):
                close = difflib.get_close_matches(param, list(spec.params), n=1)
                hint = f"did you mean {close[0]!r}?" if close else "declare it under `params:`"
                problems.add(at, f"step {step.id!r}: template uses unknown param {param!r}", hint)
            upstream = ancestry.of(step.id)
            if path[0] == "compensate":  # an undo runs after the step and may read its outputs
                upstream = upstream | {step.id}
            for ref in sorted(refs.steps - upstream):
                if ref in index:
                    problems.add(
                        at,
                        f"step {step.id!r}: template reads step {ref!r}, which is not upstream of it",
                        f"add {ref!r} to `needs` (directly or through another step) to read its results",
                    )
                else:
                    problems.add(at, f"step {step.id!r}: template reads unknown step {ref!r}")
            if "foreach" in path and (refs.steps or "item" in refs.names):
                problems.add(
                    at,
                    f"step {step.id!r}: `foreach` can use only params (it expands before the run)",
                )


def _check_callables(spec: PlanSpec, plan_dir: str | Path | None, problems: _Problems) -> None:
    for i, step in enumerate(spec.steps):
        if step.uses is not None:
            try:
                resolve_callable(step.uses, plan_dir)
            except CallableError as exc:
                problems.add(("steps", i, "uses"), f"step {step.id!r}: {exc}")
        if step.compensate is not None and step.compensate.uses is not None:
            try:
                resolve_callable(step.compensate.uses, plan_dir)
            except CallableError as exc:
                problems.add(("steps", i, "compensate", "uses"), f"step {step.id!r}: {exc}")


@dataclass
class _Expanded:
    base_id: str
    items: list[tuple[str, Any, bool]]  # (instance id, item, has_item)


def _expand(
    spec: PlanSpec,
    index: dict[str, int],
    order: list[str],
    params: Mapping[str, Any],
    problems: _Problems,
) -> list[_Expanded]:
    out: list[_Expanded] = []
    for base_id in order:
        step = spec.steps[index[base_id]]
        if step.foreach is None:
            out.append(_Expanded(base_id, [(base_id, None, False)]))
            continue
        items: Any = step.foreach
        if isinstance(items, str):
            try:
                items = templating.evaluate(items, {"params": params})
            except templating.TemplateError as exc:
                problems.add(("steps", index[base_id], "foreach"), f"step {base_id!r}: {exc}")
                continue
        if not isinstance(items, list | tuple) or not items:
            problems.add(
                ("steps", index[base_id], "foreach"),
                f"step {base_id!r}: `foreach` must give a non-empty list, got {items!r}",
            )
            continue
        labels = [str(v) for v in items]
        plain = all(_PLAIN_ITEM.match(label) for label in labels) and len(set(labels)) == len(
            labels
        )
        names = labels if plain else [str(k) for k in range(len(items))]
        out.append(
            _Expanded(
                base_id, [(f"{base_id}[{n}]", v, True) for n, v in zip(names, items, strict=True)]
            )
        )
    return out


def _assemble(
    spec: PlanSpec,
    params: Mapping[str, Any],
    expanded: list[_Expanded],
    plan_dir: str | Path | None,
) -> PlanGraph:
    by_id = {s.id: s for s in spec.steps}
    groups = {e.base_id: tuple(i for i, _, _ in e.items) for e in expanded}
    default_retry = spec.defaults.retry or RetrySpec()
    nodes: dict[str, StepNode] = {}
    children: dict[str, list[str]] = {}
    for group in expanded:
        step = by_id[group.base_id]
        needs = tuple(instance for need in step.needs for instance in groups[need])
        for instance_id, item, has_item in group.items:
            context = {"params": params, "item": item} if has_item else {"params": params}
            writes = tuple(_render_write(w, context) for w in step.writes)
            nodes[instance_id] = StepNode(
                id=instance_id,
                base_id=group.base_id,
                spec=step,
                needs=needs,
                timeout=step.timeout if step.timeout is not None else spec.defaults.timeout,
                retry=step.retry or default_retry,
                agent=_agent_name(step, spec),
                writes=writes,
                item=item,
                has_item=has_item,
                capability=step.agent.capability if isinstance(step.agent, AgentRef) else None,
            )
            children[instance_id] = []
            for need in needs:
                children[need].append(instance_id)
    return PlanGraph(
        spec=spec,
        params=dict(params),
        nodes=nodes,
        groups=groups,
        children={k: tuple(v) for k, v in children.items()},
        conflicts=_write_conflicts(nodes),
        plan_dir=str(plan_dir) if plan_dir is not None else None,
    )


def _agent_name(step: StepSpec, spec: PlanSpec) -> str | None:
    if isinstance(step.agent, AgentRef) or step.is_wait:
        return None  # a wait runs nothing, on no agent
    return step.agent or spec.defaults.agent


def _render_write(pattern: str, context: Mapping[str, Any]) -> str:
    # Write-sets only see params and item, never step results: they must be known up front.
    try:
        return templating.render(pattern, context)
    except templating.TemplateError:
        return pattern


def _write_conflicts(nodes: Mapping[str, StepNode]) -> dict[str, frozenset[str]]:
    """Pairs of steps whose write-sets may overlap; they never run at the same time.

    The test is deliberately conservative: serialising two steps that would not have clashed
    costs some parallelism, running two that do clash corrupts a workspace.
    """
    writers = [n for n in nodes.values() if n.writes]
    found: dict[str, set[str]] = {}
    for i, a in enumerate(writers):
        for b in writers[i + 1 :]:
            if any(globs_overlap(x, y) for x in a.writes for y in b.writes):
                found.setdefault(a.id, set()).add(b.id)
                found.setdefault(b.id, set()).add(a.id)
    return {k: frozenset(v) for k, v in found.items()}


def globs_overlap(a: str, b: str) -> bool:
    """Could some path match both globs? True when unsure.

    Compares whole path segments before the first wildcard: `src/a/*` and `src/b/*` are
    apart, `src/*` and `src/b/x.py` may meet, and a directory overlaps everything inside it.
    """
    a, b = a.strip("/"), b.strip("/")
    if fnmatch.fnmatchcase(a, b) or fnmatch.fnmatchcase(b, a):
        return True
    literal_a, literal_b = _literal_segments(a), _literal_segments(b)
    shared = min(len(literal_a), len(literal_b))
    return literal_a[:shared] == literal_b[:shared]


def _literal_segments(pattern: str) -> list[str]:
    literal: list[str] = []
    for segment in pattern.split("/"):
        if _GLOB_CHARS.search(segment):
            break
        literal.append(segment)
    return literal
