"""The spawner helper's own environment, which it makes each step's before spawning it with
`env=None` (spawn_helper.Environment): whole environments, each kept, and differences from
the kept one. And the two answers it formats by hand, which must read as the JSON they
stand for."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from agenthq.executors.spawn_helper import Environment, _exited, _started


@pytest.fixture
def own_environment() -> Iterator[None]:
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.usefixtures("own_environment")
def test_each_request_leaves_exactly_its_environment() -> None:
    first = {"PATH": "/bin", "A": "1", "B": "2"}
    environment = Environment()
    steps: list[tuple[dict[str, object], dict[str, str]]] = [
        ({"env": first}, first),
        ({"set": {"A": "x", "C": "3"}, "unset": ["B"]}, {"PATH": "/bin", "A": "x", "C": "3"}),
        # differences from the kept environment, not from the last step's
        ({"set": {"D": "4"}, "unset": []}, {**first, "D": "4"}),
        ({"env": {"Z": "9"}}, {"Z": "9"}),
        ({"set": {"Z": "8"}, "unset": []}, {"Z": "8"}),
        ({"set": {}, "unset": []}, {"Z": "9"}),
    ]
    for n, (request, expected) in enumerate(steps):
        environment.become(request)
        assert dict(os.environ) == expected, n


@pytest.mark.parametrize(
    ("answer", "meant"),
    [
        (
            _started(7, 1234, 5678, 0, 12),
            {"id": 7, "pid": 1234, "start": 5678, "out": 0, "err": 12},
        ),
        (_started(8, 99, None, 3, 0), {"id": 8, "pid": 99, "start": None, "out": 3, "err": 0}),
        (_exited(7, 0), {"id": 7, "exit": 0}),
        (_exited(9, -9), {"id": 9, "exit": -9}),
    ],
)
def test_the_answers_formatted_by_hand_are_the_json_lines_the_engine_reads(
    answer: bytes, meant: dict[str, object]
) -> None:
    assert answer.endswith(b"\n")
    assert answer.count(b"\n") == 1
    assert json.loads(answer) == meant
