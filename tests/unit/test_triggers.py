"""Trigger rules over the finished states of a step's needs, one row per case."""

from __future__ import annotations

import pytest

from agenthq.engine.triggers import Verdict, decide_trigger
from agenthq.spec.models import TriggerRule as T
from agenthq.states import StepState as S

OK, BAD, SKIP, BLOCKED, CANCELLED = S.SUCCEEDED, S.FAILED, S.SKIPPED, S.BLOCKED, S.CANCELLED


@pytest.mark.parametrize(
    ("rule", "needs", "verdict"),
    [
        (T.ALL_SUCCESS, {"a": OK, "b": OK}, Verdict.RUN),
        # a failure upstream blocks: the step did not run because something broke
        (T.ALL_SUCCESS, {"a": OK, "b": BAD}, Verdict.BLOCK),
        (T.ALL_SUCCESS, {"a": BLOCKED}, Verdict.BLOCK),
        (T.ALL_SUCCESS, {"a": CANCELLED}, Verdict.BLOCK),
        # a skip upstream propagates as a skip
        (T.ALL_SUCCESS, {"a": OK, "b": SKIP}, Verdict.SKIP),
        # failure wins over skip in the verdict
        (T.ALL_SUCCESS, {"a": SKIP, "b": BAD}, Verdict.BLOCK),
        (T.ALL_DONE, {"a": BAD, "b": SKIP}, Verdict.RUN),
        (T.ALL_DONE, {"a": OK}, Verdict.RUN),
        (T.ONE_FAILED, {"a": OK, "b": BAD}, Verdict.RUN),
        # a blocked need means something further up failed: one_failed handlers run
        (T.ONE_FAILED, {"a": BLOCKED}, Verdict.RUN),
        (T.ONE_FAILED, {"a": OK, "b": OK}, Verdict.SKIP),
        (T.NONE_FAILED, {"a": OK, "b": SKIP}, Verdict.RUN),
        (T.NONE_FAILED, {"a": OK, "b": BAD}, Verdict.SKIP),
        # a root step (no needs) always runs
        (T.ALL_SUCCESS, {}, Verdict.RUN),
    ],
)
def test_decide_trigger(rule: T, needs: dict[str, S], verdict: Verdict) -> None:
    decision = decide_trigger(rule, needs)
    assert decision.verdict is verdict
    if verdict is not Verdict.RUN:
        assert decision.reason


def test_reason_names_the_failed_need() -> None:
    assert "build" in decide_trigger(T.ALL_SUCCESS, {"build": BAD, "lint": OK}).reason
