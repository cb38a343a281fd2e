"""Trigger rules: given the finished states of a step's needs, run it, skip it or block it.

Pure. `blocked` means "did not run because something upstream failed" (so `agenthq retry`
knows to revisit it); `skipped` means the step's rule or `when` decided against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from agenthq.records import record
from agenthq.spec.models import TriggerRule
from agenthq.states import StepState

_FAILED = frozenset({StepState.FAILED, StepState.BLOCKED, StepState.CANCELLED})


class Verdict(StrEnum):
    RUN = "run"
    SKIP = "skip"
    BLOCK = "block"


@record
class TriggerDecision:
    verdict: Verdict
    reason: str = ""


def decide_trigger(rule: TriggerRule, needs: Mapping[str, StepState]) -> TriggerDecision:
    """Decide for a step whose needs have all finished."""
    failed = sorted(k for k, s in needs.items() if s in _FAILED)
    skipped = sorted(k for k, s in needs.items() if s is StepState.SKIPPED)
    if rule is TriggerRule.ALL_DONE:
        return TriggerDecision(Verdict.RUN)
    if rule is TriggerRule.ALL_SUCCESS:
        if failed:
            return TriggerDecision(Verdict.BLOCK, f"upstream {_names(failed)} did not succeed")
        if skipped:
            return TriggerDecision(Verdict.SKIP, f"upstream {_names(skipped)} skipped")
        return TriggerDecision(Verdict.RUN)
    if rule is TriggerRule.ONE_FAILED:
        if failed:
            return TriggerDecision(Verdict.RUN)
        return TriggerDecision(Verdict.SKIP, "no upstream step failed (trigger: one_failed)")
    # NONE_FAILED
    if failed:
        return TriggerDecision(
            Verdict.SKIP, f"upstream {_names(failed)} failed (trigger: none_failed)"
        )
    return TriggerDecision(Verdict.RUN)


def _names(ids: list[str]) -> str:
    shown = ", ".join(ids[:3])
    return shown + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
