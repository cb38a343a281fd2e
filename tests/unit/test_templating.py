"""The template sandbox: strict, safe, and able to say what a template reads."""

from __future__ import annotations

import pytest

from agenthq.spec import templating


def test_plain_text_is_untouched() -> None:
    assert templating.render("echo {not a template}", {}) == "echo {not a template}"


def test_render_and_strict_undefined() -> None:
    assert templating.render("v{{ params.x }}", {"params": {"x": 1}}) == "v1"
    with pytest.raises(templating.TemplateError, match=r"has no attribute .missing."):
        templating.render("{{ params.missing }}", {"params": {}})


def test_sandbox_blocks_python_internals() -> None:
    with pytest.raises(templating.TemplateError):
        templating.render("{{ params.__class__.__mro__[1].__subclasses__() }}", {"params": {}})


def test_evaluate_keeps_types() -> None:
    context = {"steps": {"a": {"status": "succeeded"}}, "params": {"n": [1, 2]}}
    assert templating.evaluate("{{ steps.a.status == 'succeeded' }}", context) is True
    assert templating.evaluate("{{ params.n }}", context) == [1, 2]
    assert templating.evaluate("n={{ params.n | length }}", context) == "n=2"


@pytest.mark.parametrize(
    ("value", "truthy"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("False", False),
        ("0", False),
        ("", False),
        ("yes", True),
        (0, False),
    ],
)
def test_is_truthy(value: object, truthy: bool) -> None:
    assert templating.is_truthy(value) is truthy


def test_references() -> None:
    refs = templating.references(
        "{{ params.a }} {{ steps.b.outputs.x }} {{ steps['c'].status }} {{ item }}"
    )
    assert refs.params == {"a"}
    assert refs.steps == {"b", "c"}
    assert refs.names == {"params", "steps", "item"}
    assert not refs.dynamic_steps


def test_references_ignore_loop_variables() -> None:
    refs = templating.references("{% for s in params.list %}{{ s }}{% endfor %}")
    assert refs.names == {"params"}


def test_render_value_walks_structures() -> None:
    value = {"a": ["x{{ params.p }}", 3], "b": "{{ params.n }}"}
    assert templating.render_value(value, {"params": {"p": "y", "n": 5}}) == {
        "a": ["xy", 3],
        "b": 5,
    }
