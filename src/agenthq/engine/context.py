"""What a step sees when it is rendered: params, its `item`, and its upstream steps' results."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from agenthq.graph import PlanGraph, StepNode
from agenthq.spec import templating
from agenthq.states import StepState


class StepResults(Mapping[str, Any]):
    """`steps.<id>` in templates, built on first access from the scheduler's live cache.

    A foreach group reads as one step: `status` is `succeeded` only when every instance
    succeeded, `outputs` is the list of the instances' outputs in item order.
    """

    def __init__(
        self, graph: PlanGraph, lookup: Callable[[str], tuple[StepState, Mapping[str, Any]]]
    ):
        self._graph = graph
        self._lookup = lookup

    def __getitem__(self, base_id: str) -> Any:
        instances = self._graph.groups.get(base_id)
        if instances is None:
            raise KeyError(base_id)
        results = [self._lookup(i) for i in instances]
        if not self._graph.nodes[instances[0]].has_item:
            state, outputs = results[0]
            return {"status": state.value, "outputs": dict(outputs)}
        states = {s for s, _ in results}
        status = states.pop().value if len(states) == 1 else "mixed"
        return {"status": status, "outputs": [dict(o) for _, o in results]}

    def __iter__(self) -> Iterator[str]:
        return iter(self._graph.groups)

    def __len__(self) -> int:
        return len(self._graph.groups)


def needs_rendering(node: StepNode) -> bool:
    """Whether any field of the step is a template; most steps in big plans are not."""
    spec = node.spec
    texts: list[str] = [t for t in (spec.run, spec.cwd, spec.when, spec.prompt) if t is not None]
    texts.extend(spec.env.values())
    if any(templating.is_template(t) for t in texts):
        return True
    return bool(spec.with_) and templating.is_template(repr(spec.with_))


class Inbox(Sequence[Mapping[str, Any]]):
    """`inbox` in templates: the agent's unread messages, read from the store on first use."""

    def __init__(self, read: Callable[[], list[Mapping[str, Any]]]) -> None:
        self._read = read
        self._items: list[Mapping[str, Any]] | None = None

    def _all(self) -> list[Mapping[str, Any]]:
        if self._items is None:
            self._items = self._read()
        return self._items

    def __getitem__(self, index: Any) -> Any:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())


def template_context(
    graph: PlanGraph,
    node: StepNode,
    results: StepResults,
    inbox: Callable[[], list[Mapping[str, Any]]] | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {"params": graph.params, "steps": results}
    if node.has_item:
        context["item"] = node.item
    context["inbox"] = Inbox(inbox or list)
    return context
