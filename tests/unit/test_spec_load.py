"""Plan files: YAML → PlanSpec with positions, and every refusal naming file:line:column.

Each plan below is written to a real file; the line numbers in the assertions count the
lines of the text as written (the first line is 1).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agenthq.errors import InputError, PlanError, Problem
from agenthq.graph import compile_plan
from agenthq.spec import load
from agenthq.spec.builder import Plan
from agenthq.spec.durations import DURATION_HINT
from agenthq.spec.load import LoadedPlan, load_plan, spec_from_data


def write(tmp_path: Path, text: str, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def refused(tmp_path: Path, text: str) -> PlanError:
    path = write(tmp_path, text)
    with pytest.raises(PlanError) as info:
        load_plan(path)
    return info.value


def only(error: PlanError) -> Problem:
    assert len(error.problems) == 1, error
    return error.problems[0]


def at(problem: Problem) -> tuple[int | None, int | None]:
    return problem.line, problem.column


def spot(text: str, line: int, fragment: str) -> tuple[int, int]:
    """The 1-based position of `fragment`'s first occurrence on `line` of `text`."""
    return line, text.splitlines()[line - 1].index(fragment) + 1


def compiled_problems(tmp_path: Path, text: str) -> tuple[Problem, ...]:
    loaded = load_plan(write(tmp_path, text))
    with pytest.raises(PlanError) as info:
        compile_plan(loaded.spec, source=loaded.source, plan_dir=tmp_path)
    return info.value.problems


# --- what a valid file gives -------------------------------------------------------------

FULL_PLAN = """\
name: ship
description: the whole language once
params:
  repo: "."
  shards: {default: [1, 2], description: which shards}
  token: {required: true}
defaults:
  timeout: 10m
  retry: {max_attempts: 2, backoff: linear, initial: 1s, max: 30s, on: [execution, lost]}
  env: {CI: "1"}
  agent: builder
concurrency:
  max_workers: 4
  agents: {builder: 2}
secrets: [GITHUB_TOKEN]
steps:
  - id: lint
    run: ruff check {{ params.repo }}
    timeout: 90s
    writes: [build/lint/*]
  - id: shard
    foreach: "{{ params.shards }}"
    run: echo {{ item }}
    retry: {on: {execution: 3}}
  - id: report
    needs: [lint, shard]
    uses: agenthq.builtin:echo
    with: {text: "{{ steps.lint.status }}", n: 2}
    trigger: all_done
    outputs:
      version: {pattern: "v(\\\\d+)"}
      data: {file: out.json, json: true}
"""


def test_valid_plan_matches_the_python_builder(tmp_path: Path) -> None:
    built = (
        Plan("ship", description="the whole language once")
        .param("repo", default=".")
        .param("shards", default=[1, 2], description="which shards")
        .param("token", required=True)
        .defaults(
            timeout="10m",
            retry={
                "max_attempts": 2,
                "backoff": "linear",
                "initial": "1s",
                "max": "30s",
                "on": ["execution", "lost"],
            },
            env={"CI": "1"},
            agent="builder",
        )
        .concurrency(max_workers=4, agents={"builder": 2})
        .secrets("GITHUB_TOKEN")
        .step("lint", run="ruff check {{ params.repo }}", timeout="90s", writes=["build/lint/*"])
        .step(
            "shard",
            foreach="{{ params.shards }}",
            run="echo {{ item }}",
            retry={"on": {"execution": 3}},
        )
        .step(
            "report",
            needs=["lint", "shard"],
            uses="agenthq.builtin:echo",
            with_={"text": "{{ steps.lint.status }}", "n": 2},
            trigger="all_done",
            outputs={
                "version": {"pattern": r"v(\d+)"},
                "data": {"file": "out.json", "json": True},
            },
        )
        .spec()
    )
    loaded = load_plan(write(tmp_path, FULL_PLAN))
    assert loaded.spec == built
    assert loaded.path == tmp_path / "plan.yaml"
    assert loaded.source is not None
    assert loaded.source.file == str(tmp_path / "plan.yaml")


def test_positions_of_nested_values_and_keys(tmp_path: Path) -> None:
    source = load_plan(write(tmp_path, FULL_PLAN)).source
    assert source is not None
    assert source.values[()] == (1, 1)
    assert source.values[("params", "shards", "default", 1)] == spot(FULL_PLAN, 5, "2]")
    assert source.values[("defaults", "retry", "on", 1)] == spot(FULL_PLAN, 9, "lost")
    assert source.keys[("defaults", "retry", "on")] == spot(FULL_PLAN, 9, "on:")
    assert source.values[("steps", 0)] == (17, 5)  # a list item starts after "- "
    assert source.keys[("steps", 2, "needs")] == (26, 5)
    assert source.values[("steps", 2, "needs", 1)] == spot(FULL_PLAN, 26, "shard")
    assert source.values[("steps", 2, "with", "n")] == spot(FULL_PLAN, 28, "2}")
    assert source.values[("steps", 2, "outputs", "data", "json")] == spot(FULL_PLAN, 32, "true")
    # A path the file does not hold falls back to its nearest ancestor.
    assert source.locate(("steps", 2, "outputs", "data", "nope")) == spot(FULL_PLAN, 32, "{")


def test_yaml_1_1_booleans_stay_names_as_keys(tmp_path: Path) -> None:
    # `on:` is the retry field, not the boolean True that YAML 1.1 would make of it.
    text = "name: p\nsteps:\n  - id: a\n    run: 'true'\n    retry: {on: [timeout]}\n"
    spec = load_plan(write(tmp_path, text)).spec
    assert spec.steps[0].retry is not None
    assert [str(c) for c in spec.steps[0].retry.on] == ["timeout"]


def test_values_resolve_like_safe_load(tmp_path: Path) -> None:
    text = (
        "name: p\n"
        "params:\n"
        "  n: 3\n"
        "  ratio: 0.5\n"
        "  flag: yes\n"
        "  nothing: ~\n"
        "  quoted: '3'\n"
        "steps:\n"
        "  - id: a\n"
        "    run: 'true'\n"
    )
    params = load_plan(write(tmp_path, text)).spec.params
    assert {k: p.default for k, p in params.items()} == {
        "n": 3,
        "ratio": 0.5,
        "flag": True,
        "nothing": None,
        "quoted": "3",
    }


def test_merge_keys_and_anchors(tmp_path: Path) -> None:
    text = (
        "name: p\n"
        "defaults:\n"
        "  env: &env {A: '1', B: '2'}\n"
        "steps:\n"
        "  - id: a\n"
        "    run: 'true'\n"
        "    env:\n"
        "      <<: *env\n"
        "      B: '3'\n"
    )
    loaded = load_plan(write(tmp_path, text))
    assert loaded.spec.steps[0].env == {"A": "1", "B": "3"}
    assert loaded.source is not None
    assert loaded.source.values[("steps", 0, "env", "B")] == (9, 10)  # the key written here


# --- YAML and file errors ----------------------------------------------------------------


def test_yaml_syntax_error(tmp_path: Path) -> None:
    problem = only(refused(tmp_path, "name: p\nsteps:\n  - id: a\n    run: [unclosed\n"))
    assert problem.message.startswith("invalid YAML: ")
    assert at(problem) == (5, 1)  # where the parser gave up: the end of the file
    assert problem.hint is not None
    assert problem.file == str(tmp_path / "plan.yaml")


def test_yaml_tab_indentation_gets_a_hint(tmp_path: Path) -> None:
    problem = only(refused(tmp_path, "name: p\nsteps:\n\t- id: a\n"))
    assert at(problem) == (3, 1)
    assert problem.hint == "YAML indents with spaces, not tabs"


def test_unquoted_template_gets_a_hint(tmp_path: Path) -> None:
    problem = only(refused(tmp_path, "name: p\nsteps:\n  - id: a\n    run: {{ params.x }}\n"))
    assert problem.message == "a mapping key must be a plain name"
    assert problem.line == 4
    assert problem.hint is not None
    assert "must be quoted" in problem.hint


def test_duplicate_mapping_key(tmp_path: Path) -> None:
    text = "name: p\nsteps:\n  - id: a\n    run: one\n    run: two\n"
    problem = only(refused(tmp_path, text))
    assert problem.message == "duplicate key `run` (first on line 4)"
    assert at(problem) == (5, 5)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    problem = only(refused(tmp_path, "- id: a\n  run: 'true'\n"))
    assert problem.message == "a plan must be a mapping at the top level, got a list"
    assert at(problem) == (1, 1)


def test_empty_file(tmp_path: Path) -> None:
    problem = only(refused(tmp_path, "# nothing yet\n"))
    assert problem.message == "the plan file is empty"


def test_recursive_alias(tmp_path: Path) -> None:
    problem = only(refused(tmp_path, "name: p\nsteps: &s\n  - *s\n"))
    assert problem.message == "a YAML alias refers to itself; plans must be finite"
    assert problem.line == 2


def test_alias_expansion_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Nested aliases multiply; a small budget shows the refusal without building millions.
    monkeypatch.setattr(load, "_MAX_VALUES", 50)
    text = "name: p\na: &a [1, 2, 3, 4, 5, 6, 7, 8]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
    problem = only(refused(tmp_path, text))
    assert problem.message == "the plan expands to more than 50 values"
    assert problem.line == 2  # an alias shares its anchor's node, so the anchor's position


def test_deep_nesting_is_refused_without_a_traceback(tmp_path: Path) -> None:
    problem = only(refused(tmp_path, "name: p\nx: " + "[" * 3000 + "]" * 3000 + "\n"))
    assert problem.message == "the plan nests lists and mappings too deeply to read"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^plan file not found: .*nope\.yaml$"):
        load_plan(tmp_path / "nope.yaml")


def test_directory_is_not_a_plan(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory, not a plan file"):
        load_plan(tmp_path)


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(InputError, match=r"is not UTF-8 text \(byte 0xe9 at offset 9\)"):
        load_plan(path)


# --- model errors ------------------------------------------------------------------------


def test_unknown_step_key_suggests_the_right_one(tmp_path: Path) -> None:
    text = (
        "name: p\n"
        "steps:\n"
        "  - id: build\n"
        "    run: make\n"
        "  - id: test\n"
        "    neds: [build]\n"
        "    run: make test\n"
    )
    problem = only(refused(tmp_path, text))
    assert problem.message == "steps[1] (id: test): unknown key `neds`"
    assert problem.hint == "did you mean `needs`?"
    assert at(problem) == (6, 5)  # the key, not its value


def test_unknown_top_level_key(tmp_path: Path) -> None:
    text = "name: p\ndescripton: typo\nsteps:\n  - id: a\n    run: 'true'\n"
    problem = only(refused(tmp_path, text))
    assert problem.message == "unknown key `descripton`"
    assert problem.hint == "did you mean `description`?"
    assert at(problem) == (2, 1)


def test_unknown_key_inside_retry(tmp_path: Path) -> None:
    text = "name: p\nsteps:\n  - id: a\n    run: 'true'\n    retry:\n      max_atempts: 3\n"
    problem = only(refused(tmp_path, text))
    assert problem.message == "steps[0] (id: a): unknown key `max_atempts` in `retry`"
    assert problem.hint == "did you mean `max_attempts`?"
    assert at(problem) == (6, 7)


def test_suggestions_use_the_names_plans_write(tmp_path: Path) -> None:
    # The field is `with_` in Python; a plan writes `with`, so that is what we suggest.
    text = "name: p\nsteps:\n  - id: a\n    uses: m:f\n    wiht: {x: 1}\n"
    problem = only(refused(tmp_path, text))
    assert problem.hint == "did you mean `with`?"
    assert at(problem) == (5, 5)


def test_unknown_key_without_a_close_match_lists_the_valid_ones(tmp_path: Path) -> None:
    text = "name: p\nsteps:\n  - id: a\n    run: 'true'\n    outputs: {v: {file: x, zzz: 1}}\n"
    problem = only(refused(tmp_path, text))
    assert problem.message == "steps[0] (id: a): unknown key `zzz` in `outputs.v`"
    assert problem.hint == "valid keys here: file, json, pattern"
    assert at(problem) == (5, 28)


def test_step_with_neither_run_nor_uses(tmp_path: Path) -> None:
    problem = only(refused(tmp_path, "name: p\nsteps:\n  - id: a\n    needs: []\n"))
    assert problem.message == (
        "step 'a' needs `run` (a shell command), `uses` (module:function), "
        "`prompt` with an `agent`, or a `wait`, `wait_until` or `wait_for`"
    )
    assert at(problem) == (3, 5)  # the step itself


def test_step_with_both_run_and_uses(tmp_path: Path) -> None:
    text = "name: p\nsteps:\n  - id: a\n    run: 'true'\n  - id: b\n    run: x\n    uses: m:f\n"
    problem = only(refused(tmp_path, text))
    assert problem.message == "step 'b' has both `run` and `uses`; keep one"
    assert at(problem) == (5, 5)


def test_invalid_duration(tmp_path: Path) -> None:
    text = "name: p\nsteps:\n  - id: a\n    run: 'true'\n    timeout: 10 minutes\n"
    problem = only(refused(tmp_path, text))
    assert problem.message == "steps[0] (id: a): timeout: invalid duration '10 minutes'"
    assert problem.hint == DURATION_HINT
    assert at(problem) == (5, 14)  # the value


def test_wrong_type(tmp_path: Path) -> None:
    text = "name: p\nsteps:\n  - id: a\n    run: 'true'\n  - id: b\n    needs: a\n    run: x\n"
    problem = only(refused(tmp_path, text))
    assert problem.message == "steps[1] (id: b): needs: expected a list, got the string 'a'"
    assert problem.hint == "write a list: [a]"
    assert at(problem) == (6, 12)


def test_union_types_give_one_message(tmp_path: Path) -> None:
    # `foreach` is a list or a template string; pydantic tries both, we report once.
    text = "name: p\nsteps:\n  - id: a\n    run: 'true'\n    foreach: {x: 1}\n"
    problem = only(refused(tmp_path, text))
    assert (
        problem.message == "steps[0] (id: a): foreach: expected a list or a string, got a mapping"
    )
    assert at(problem) == (5, 14)


def test_bad_choice_suggests_the_closest(tmp_path: Path) -> None:
    text = "name: p\nsteps:\n  - id: a\n    run: 'true'\n    retry: {on: [execution, timout]}\n"
    problem = only(refused(tmp_path, text))
    assert problem.message.startswith("steps[0] (id: a): retry.on[1]: expected one of 'execution'")
    assert problem.message.endswith("got the string 'timout'")
    assert problem.hint == "did you mean 'timeout'?"
    assert at(problem) == spot(text, 5, "timout")


def test_missing_name(tmp_path: Path) -> None:
    problem = only(refused(tmp_path, "steps:\n  - id: a\n    run: 'true'\n"))
    assert problem.message == "missing `name`"
    assert at(problem) == (1, 1)


def test_missing_step_id(tmp_path: Path) -> None:
    problem = only(refused(tmp_path, "name: p\nsteps:\n  - run: 'true'\n"))
    assert problem.message == "steps[0]: missing `id`"
    assert at(problem) == (3, 5)


def test_steps_empty(tmp_path: Path) -> None:
    problem = only(refused(tmp_path, "name: p\nsteps: []\n"))
    assert problem.message == "`steps` is empty"
    assert problem.hint == "a plan needs at least one step"
    assert at(problem) == (2, 8)


def test_every_problem_is_reported_at_once_in_file_order(tmp_path: Path) -> None:
    text = (
        "name: p\n"
        "defaults:\n"
        "  timeout: soon\n"
        "steps:\n"
        "  - id: a\n"
        "    run: 'true'\n"
        "    neds: [b]\n"
        "  - id: b\n"
        "    trigger: always\n"
        "  - id: c\n"
        "    needs: [a]\n"
    )
    error = refused(tmp_path, text)
    assert [(p.line, p.message) for p in error.problems] == [
        (3, "defaults.timeout: invalid duration 'soon'"),
        (7, "steps[0] (id: a): unknown key `neds`"),
        (
            9,
            "steps[1] (id: b): trigger: expected one of 'all_success', 'all_done', "
            "'one_failed' or 'none_failed', got the string 'always'",
        ),
        (
            10,
            "step 'c' needs `run` (a shell command), `uses` (module:function), "
            "`prompt` with an `agent`, or a `wait`, `wait_until` or `wait_for`",
        ),
    ]
    # The rendered error is one line per problem, each naming the file and position.
    assert str(error).count(f"{tmp_path / 'plan.yaml'}:") == 4


def test_python_plans_get_the_same_messages_without_positions() -> None:
    with pytest.raises(PlanError) as info:
        Plan("p").step("a", run="true", neds=["b"]).spec()
    problem = only(info.value)
    assert problem.message == "steps[0] (id: a): unknown key `neds`"
    assert problem.hint == "did you mean `needs`?"
    assert (problem.file, problem.line) == ("<python plan>", None)


def test_spec_from_data_refuses_a_non_mapping() -> None:
    with pytest.raises(PlanError) as info:
        spec_from_data(["a"], file="x")
    assert only(info.value).message == "expected a mapping, got a list"


def test_loaded_plan_field_order() -> None:
    spec = Plan("p").step("a", run="true").spec()
    loaded = LoadedPlan(spec, None, None)
    assert (loaded.spec, loaded.source, loaded.path) == (spec, None, None)


# --- whole-plan checks through graph.compile_plan, located in the file --------------------


def test_unknown_need_is_located(tmp_path: Path) -> None:
    text = (
        "name: p\n"
        "steps:\n"
        "  - id: build\n"
        "    run: make\n"
        "  - id: test\n"
        "    needs: [biuld]\n"
        "    run: make test\n"
    )
    (problem,) = compiled_problems(tmp_path, text)
    assert problem.message == "step 'test' needs unknown step 'biuld'"
    assert problem.hint == "did you mean 'build'?"
    assert at(problem) == (6, 13)


def test_cycle_is_printed_as_a_path_at_its_needs(tmp_path: Path) -> None:
    text = (
        "name: p\n"
        "steps:\n"
        "  - id: a\n"
        "    needs: [c]\n"
        "    run: 'true'\n"
        "  - id: b\n"
        "    needs: [a]\n"
        "    run: 'true'\n"
        "  - id: c\n"
        "    needs: [b]\n"
        "    run: 'true'\n"
    )
    (problem,) = compiled_problems(tmp_path, text)
    assert problem.message == "dependency cycle: a → b → c → a"
    assert at(problem) == (4, 12)  # the `needs` of the step the cycle is printed from


def test_duplicate_ids_are_located(tmp_path: Path) -> None:
    text = "name: p\nsteps:\n  - id: a\n    run: x\n  - id: a\n    run: y\n"
    (problem,) = compiled_problems(tmp_path, text)
    assert problem.message == "duplicate step id 'a' (first defined on line 3)"
    assert at(problem) == (5, 9)


def test_template_scope_problems_are_located(tmp_path: Path) -> None:
    text = (
        "name: p\n"
        "params: {repo: .}\n"
        "steps:\n"
        "  - id: a\n"
        "    run: 'true'\n"
        "  - id: b\n"
        "    run: echo {{ steps.a.outputs.x }}\n"
        "    env:\n"
        "      R: '{{ params.rpeo }}'\n"
    )
    first, second = compiled_problems(tmp_path, text)
    assert first.message == "step 'b': template reads step 'a', which is not upstream of it"
    assert at(first) == (7, 10)
    assert second.message == "step 'b': template uses unknown param 'rpeo'"
    assert second.hint == "did you mean 'repo'?"
    assert at(second) == (9, 10)


def test_uses_that_cannot_be_imported_is_located(tmp_path: Path) -> None:
    text = "name: p\nsteps:\n  - id: a\n    run: 'true'\n  - id: b\n    uses: no_such_mod_xq:f\n"
    (problem,) = compiled_problems(tmp_path, text)
    assert problem.message.startswith("step 'b': cannot import module 'no_such_mod_xq'")
    assert at(problem) == (6, 11)
