"""Compiling plans: ids, needs, cycles, foreach expansion, template scopes, write-sets."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from agenthq.errors import PlanError
from agenthq.graph import compile_plan, globs_overlap
from agenthq.spec.models import PlanSpec


def plan(*steps: dict[str, Any], **extra: Any) -> PlanSpec:
    return PlanSpec.model_validate({"name": "p", "steps": list(steps), **extra})


def messages(error: pytest.ExceptionInfo[PlanError]) -> list[str]:
    return [p.message for p in error.value.problems]


def test_foreach_expands_and_needs_fan_in() -> None:
    graph = compile_plan(
        plan(
            {"id": "shard", "foreach": [1, 2, 3], "run": "echo {{ item }}"},
            {"id": "join", "needs": ["shard"], "run": "true"},
        )
    )
    assert list(graph.groups["shard"]) == ["shard[1]", "shard[2]", "shard[3]"]
    assert graph.nodes["join"].needs == ("shard[1]", "shard[2]", "shard[3]")
    assert graph.nodes["shard[2]"].item == 2
    assert graph.children["shard[1]"] == ("join",)


def test_foreach_with_unsafe_labels_uses_indexes() -> None:
    graph = compile_plan(plan({"id": "f", "foreach": ["a b", "c/d"], "run": "echo '{{ item }}'"}))
    assert list(graph.groups["f"]) == ["f[0]", "f[1]"]


def test_foreach_from_a_param() -> None:
    spec = plan(
        {"id": "f", "foreach": "{{ params.regions }}", "run": "echo {{ item }}"},
        params={"regions": ["eu", "us"]},
    )
    assert list(compile_plan(spec).groups["f"]) == ["f[eu]", "f[us]"]
    assert list(compile_plan(spec, params={"regions": ["ap"]}).groups["f"]) == ["f[ap]"]


def test_nodes_come_in_topological_order() -> None:
    graph = compile_plan(
        plan(
            {"id": "c", "needs": ["b"], "run": "true"},
            {"id": "b", "needs": ["a"], "run": "true"},
            {"id": "a", "run": "true"},
        )
    )
    assert list(graph.nodes) == ["a", "b", "c"]
    assert graph.layers() == [["a"], ["b"], ["c"]]


def test_duplicate_ids() -> None:
    with pytest.raises(PlanError) as error:
        compile_plan(plan({"id": "a", "run": "true"}, {"id": "a", "run": "true"}))
    assert messages(error) == ["duplicate step id 'a'"]


def test_unknown_need_suggests_the_closest() -> None:
    with pytest.raises(PlanError) as error:
        compile_plan(
            plan({"id": "build", "run": "true"}, {"id": "test", "needs": ["biuld"], "run": "true"})
        )
    assert messages(error) == ["step 'test' needs unknown step 'biuld'"]
    assert error.value.problems[0].hint == "did you mean 'build'?"


def test_cycle_is_printed_as_a_path() -> None:
    with pytest.raises(PlanError) as error:
        compile_plan(
            plan(
                {"id": "a", "needs": ["c"], "run": "true"},
                {"id": "b", "needs": ["a"], "run": "true"},
                {"id": "c", "needs": ["b"], "run": "true"},
            )
        )
    (message,) = messages(error)
    assert message.startswith("dependency cycle: ")
    path = message.removeprefix("dependency cycle: ").split(" → ")
    assert path[0] == path[-1]
    assert sorted(path[:-1]) == ["a", "b", "c"]
    # each arrow is a real edge: x → y means y needs x
    needs = {"a": "c", "b": "a", "c": "b"}
    assert all(needs[y] == x for x, y in itertools.pairwise(path))


def test_template_may_read_only_upstream_steps() -> None:
    with pytest.raises(PlanError) as error:
        compile_plan(
            plan(
                {"id": "a", "run": "true"},
                {"id": "b", "run": "echo {{ steps.a.outputs.x }}"},
            )
        )
    assert messages(error) == ["step 'b': template reads step 'a', which is not upstream of it"]


def test_template_may_read_transitive_upstream() -> None:
    compile_plan(
        plan(
            {"id": "a", "run": "true"},
            {"id": "b", "needs": ["a"], "run": "true"},
            {"id": "c", "needs": ["b"], "run": "echo {{ steps.a.status }}"},
        )
    )


def test_template_unknown_param_and_name() -> None:
    with pytest.raises(PlanError) as error:
        compile_plan(
            plan(
                {"id": "a", "run": "echo {{ params.repo }} {{ env.HOME }} {{ item }}"},
                params={"rep": "."},
            )
        )
    assert sorted(messages(error)) == [
        "step 'a': template uses unknown name 'env'",
        "step 'a': template uses unknown name 'item'",
        "step 'a': template uses unknown param 'repo'",
    ]


def test_template_syntax_error() -> None:
    with pytest.raises(PlanError) as error:
        compile_plan(plan({"id": "a", "run": "echo {{ params.x "}))
    assert "template syntax error" in messages(error)[0]


def test_uses_that_cannot_be_imported() -> None:
    with pytest.raises(PlanError) as error:
        compile_plan(plan({"id": "a", "uses": "no_such_module_xyz:run"}))
    assert "cannot import module 'no_such_module_xyz'" in messages(error)[0]


def test_uses_attribute_missing() -> None:
    with pytest.raises(PlanError) as error:
        compile_plan(plan({"id": "a", "uses": "agenthq.builtin:nope"}))
    assert "has no attribute 'nope'" in messages(error)[0]


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(PlanError) as error:
        compile_plan(
            plan(
                {"id": "a", "needs": ["x"], "run": "true"},
                {"id": "b", "needs": ["y"], "run": "true"},
            )
        )
    assert len(error.value.problems) == 2


def test_write_conflicts_are_symmetric() -> None:
    graph = compile_plan(
        plan(
            {"id": "a", "writes": ["src/**"], "run": "true"},
            {"id": "b", "writes": ["src/app.py"], "run": "true"},
            {"id": "c", "writes": ["docs/**"], "run": "true"},
        )
    )
    assert graph.conflicts["a"] == {"b"}
    assert graph.conflicts["b"] == {"a"}
    assert "c" not in graph.conflicts


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ("src/a.py", "src/a.py", True),  # the same file
        ("src/a.py", "src/b.py", False),  # two different files
        ("src/*.py", "src/x.py", True),  # a glob and a file it matches
        ("src", "src/x.py", True),  # a directory and a file inside it
        ("docs/**", "src/**", False),  # disjoint trees
        ("out/1/*", "out/2/*", False),  # sibling directories
        ("*", "anything/at/all", True),  # a top-level wildcard may reach anywhere
    ],
)
def test_globs_overlap(a: str, b: str, overlap: bool) -> None:
    assert globs_overlap(a, b) is overlap
    assert globs_overlap(b, a) is overlap


def test_foreach_writes_render_item() -> None:
    graph = compile_plan(
        plan({"id": "f", "foreach": ["x", "y"], "writes": ["out/{{ item }}/*"], "run": "true"})
    )
    assert graph.nodes["f[x]"].writes == ("out/x/*",)
    assert graph.conflicts == {}


def test_defaults_apply() -> None:
    graph = compile_plan(
        plan(
            {"id": "a", "run": "true"},
            {"id": "b", "run": "true", "timeout": "5s", "retry": {"max_attempts": 4}},
            defaults={"timeout": "1m", "retry": {"max_attempts": 2}, "agent": "coder"},
        )
    )
    assert graph.nodes["a"].timeout == 60
    assert graph.nodes["a"].retry.max_attempts == 2
    assert graph.nodes["b"].timeout == 5
    assert graph.nodes["b"].retry.max_attempts == 4
    assert graph.nodes["a"].agent == "coder"
