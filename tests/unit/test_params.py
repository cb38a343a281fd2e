"""Run parameters: parsing `-p key=value`, and typing, defaulting and refusing values."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from agenthq.errors import ParamError
from agenthq.spec.builder import Plan
from agenthq.spec.models import ParamSpec, PlanSpec
from agenthq.spec.params import parse_param_args, resolve_params


def plan_with(**params: dict[str, Any]) -> PlanSpec:
    plan = Plan("demo")
    for name, fields in params.items():
        plan.param(name, **fields)
    return plan.step("a", run="true").spec()


TYPED = plan_with(
    repo={"default": "."},
    workers={"default": 4},
    ratio={"default": 0.5},
    verbose={"default": False},
    regions={"default": ["eu"]},
    limits={"default": {"cpu": 1}},
    anything={},
)

# (args, parsed)
PARSE_OK = [
    # the plain case
    (["repo=src"], {"repo": "src"}),
    # the value keeps every `=` after the first
    (["query=a=b=c"], {"query": "a=b=c"}),
    # an empty value is a value
    (["tag="], {"tag": ""}),
    # spaces around the key are dropped, the value is kept as typed
    ([" repo = src "], {"repo": " src "}),
    # a repeated key: the last one wins, as with most command-line options
    (["n=1", "n=2"], {"n": "2"}),
    # no -p at all
    ([], {}),
]


@pytest.mark.parametrize(("args", "parsed"), PARSE_OK)
def test_parse_param_args(args: list[str], parsed: dict[str, str]) -> None:
    assert parse_param_args(args) == parsed


# (args, message)
PARSE_BAD = [
    # no `=` at all
    (["novalue"], "-p expects key=value, got 'novalue'"),
    # a value without a key
    (["=x"], "-p expects key=value, got '=x'"),
    # one bad argument among good ones is still refused
    (["a=1", "b"], "-p expects key=value, got 'b'"),
]


@pytest.mark.parametrize(("args", "message"), PARSE_BAD)
def test_parse_param_args_refuses(args: list[str], message: str) -> None:
    with pytest.raises(ParamError) as info:
        parse_param_args(args)
    assert str(info.value) == message


# (given, the values that differ from the defaults)
RESOLVE_OK: list[tuple[dict[str, Any], dict[str, Any]]] = [
    # nothing given: every default
    ({}, {}),
    # a string param takes the text as it is, even if it looks like a number
    ({"repo": "42"}, {"repo": "42"}),
    # an int default makes "8" a number
    ({"workers": "8"}, {"workers": 8}),
    # surrounding spaces do not matter for typed values
    ({"workers": " 8 "}, {"workers": 8}),
    # a float default
    ({"ratio": "0.25"}, {"ratio": 0.25}),
    # booleans from the words people type
    ({"verbose": "true"}, {"verbose": True}),
    ({"verbose": "YES"}, {"verbose": True}),
    ({"verbose": "1"}, {"verbose": True}),
    ({"verbose": "no"}, {"verbose": False}),
    ({"verbose": "0"}, {"verbose": False}),
    # lists and mappings from JSON
    ({"regions": '["eu", "us"]'}, {"regions": ["eu", "us"]}),
    ({"limits": '{"cpu": 4}'}, {"limits": {"cpu": 4}}),
    # values that already have a type (the Python SDK) pass through
    (
        {"workers": 3, "verbose": True, "regions": ["ap"]},
        {"workers": 3, "verbose": True, "regions": ["ap"]},
    ),
    # a param without a default takes any value unchanged
    ({"anything": "x"}, {"anything": "x"}),
]


@pytest.mark.parametrize(("given", "changed"), RESOLVE_OK)
def test_resolve_params(given: dict[str, Any], changed: dict[str, Any]) -> None:
    defaults = {name: p.default for name, p in TYPED.params.items()}
    assert resolve_params(TYPED, given) == {**defaults, **changed}


# (given, message)
RESOLVE_BAD = [
    # a typo in the name: suggest the declared one, list them all
    (
        {"rpeo": "x"},
        "unknown param 'rpeo'; did you mean 'repo'? "
        "(plan 'demo' declares: repo, workers, ratio, verbose, regions, limits, anything)",
    ),
    # a name like nothing declared: just the list
    (
        {"zzz": "x"},
        "unknown param 'zzz' (plan 'demo' declares: repo, workers, ratio, verbose, regions, "
        "limits, anything)",
    ),
    # not a number
    ({"workers": "many"}, "param 'workers' expects a whole number, got 'many'"),
    # a fraction for a whole number
    ({"workers": "2.5"}, "param 'workers' expects a whole number, got '2.5'"),
    ({"ratio": "half"}, "param 'ratio' expects a number, got 'half'"),
    ({"verbose": "maybe"}, "param 'verbose' expects true or false (or yes/no, 1/0), got 'maybe'"),
    # not JSON at all
    (
        {"regions": "eu,us"},
        "param 'regions' expects a list in JSON such as [\"a\", \"b\"], got 'eu,us'",
    ),
    # JSON, but not a list
    (
        {"regions": '{"a": 1}'},
        'param \'regions\' expects a list in JSON such as ["a", "b"], got \'{"a": 1}\'',
    ),
    (
        {"limits": "[1]"},
        "param 'limits' expects a mapping in JSON such as {\"key\": \"value\"}, got '[1]'",
    ),
]


@pytest.mark.parametrize(("given", "message"), RESOLVE_BAD)
def test_resolve_params_refuses(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ParamError) as info:
        resolve_params(TYPED, given)
    assert str(info.value) == message


def test_plan_without_params_says_so() -> None:
    with pytest.raises(ParamError, match=r"^unknown param 'x' \(plan 'demo' declares no params\)$"):
        resolve_params(plan_with(), {"x": "1"})


REQUIRED = plan_with(
    token={"required": True, "description": "release scope"}, region={"required": True}
)


def test_required_params_must_be_given() -> None:
    with pytest.raises(ParamError) as info:
        resolve_params(REQUIRED, {"region": "eu"})
    assert str(info.value) == (
        "plan 'demo' requires param 'token' (release scope); pass -p token=VALUE"
    )
    with pytest.raises(ParamError, match=r"requires params 'token' \(release scope\), 'region'"):
        resolve_params(REQUIRED, {})


def test_required_params_may_be_missing_when_only_validating() -> None:
    # `agenthq validate` checks a plan without values for its required params.
    assert resolve_params(REQUIRED, {"region": "eu"}, allow_missing=True) == {"region": "eu"}
    assert resolve_params(REQUIRED, {"token": "t", "region": "eu"}) == {
        "token": "t",
        "region": "eu",
    }


def test_shorthand_params_from_yaml_are_typed_by_their_default() -> None:
    spec = PlanSpec.model_validate(
        {"name": "p", "params": {"n": 2}, "steps": [{"id": "a", "run": "true"}]}
    )
    assert resolve_params(spec, parse_param_args(["n=5"])) == {"n": 5}


DECLARED = {
    "env": {"type": "choice", "choices": ["dev", "prod"], "default": "dev"},
    "n": {"type": "int", "default": 3},
    "ratio": {"type": "float", "default": 0.5},
    "dry": {"type": "bool", "default": True},
    "out": {"type": "path", "default": "build"},
    "name": {"type": "str", "default": "x"},
}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"env": "prod"}, {"env": "prod"}),
        ({"n": "41"}, {"n": 41}),
        ({"ratio": "2"}, {"ratio": 2.0}),
        ({"dry": "no"}, {"dry": False}),
        ({"out": "dist/wheels"}, {"out": "dist/wheels"}),
        ({"name": "12"}, {"name": "12"}),  # a str param stays text
    ],
)
def test_typed_params_convert_command_line_text(
    given: dict[str, Any], expected: dict[str, Any]
) -> None:
    values = resolve_params(plan_with(**DECLARED), given)
    for key, value in expected.items():
        assert values[key] == value
        assert type(values[key]) is type(value)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"env": "staging"}, "param 'env' must be one of dev, prod; got 'staging'"),
        ({"n": "seven"}, "param 'n' must be a whole number, got 'seven'"),
        ({"ratio": "half"}, "param 'ratio' must be a number, got 'half'"),
        ({"dry": "maybe"}, "param 'dry' must be true or false"),
        ({"out": "../../etc"}, "climbs out of the workspace"),
    ],
)
def test_typed_params_refuse_what_does_not_fit(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ParamError, match=re.escape(message)):
        resolve_params(plan_with(**DECLARED), given)


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ({"type": "choice"}, "a `choice` param needs `choices`"),
        ({"type": "int", "default": "x"}, "its default must be a whole number"),
        ({"type": "str", "choices": ["a"]}, "`choices` is for `type: choice` params"),
        ({"type": "colour"}, "type"),
    ],
)
def test_bad_param_declarations_are_refused(param: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        ParamSpec.model_validate(param)
