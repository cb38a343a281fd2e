"""The spawner helper's own environment, which it makes each step's before spawning it with
`env=None` (spawn_helper.Environment): whole environments, each kept, and differences from
the kept one."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from agenthq.executors.spawn_helper import Environment


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
