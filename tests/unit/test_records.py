"""`@record` (agenthq/records.py): frozen to the type checker, a plain dataclass to Python."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

from mypy import api as mypy_api

from agenthq.records import record
from agenthq.states import StepState
from agenthq.store.api import StepChange

ROOT = Path(__file__).resolve().parents[2]


@record
class _Point:
    x: int
    tags: tuple[str, ...] = ()


def test_a_record_compares_and_hashes_by_value_like_a_frozen_dataclass() -> None:
    assert _Point(1, ("a",)) == _Point(1, ("a",))
    assert hash(_Point(1, ("a",))) == hash(_Point(1, ("a",)))
    assert len({_Point(1), _Point(1), _Point(2)}) == 2
    assert dataclasses.replace(_Point(1), x=2) == _Point(2)
    change = StepChange("r", "s", StepState.READY, StepState.RUNNING)
    assert dataclasses.asdict(change)["fields"] == {}  # defaults are per instance, as before


def test_mypy_refuses_assigning_to_a_field(tmp_path: Path) -> None:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(
        textwrap.dedent(
            """
            from agenthq.records import record

            @record
            class Point:
                x: int

            point = Point(1)
            point.x = 2
            Point(x="one")
            """
        )
    )
    out, _, status = mypy_api.run(
        [
            "--no-incremental",
            "--follow-imports=silent",
            "--python-version=3.11",
            "--config-file=",
            str(snippet),
        ]
    )
    assert status == 1, out
    assert 'Property "x" defined in "Point" is read-only' in out
    assert 'Argument "x" to "Point" has incompatible type "str"' in out
