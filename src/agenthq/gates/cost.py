"""The `cost` gate: money is a resource the scheduler respects, not an afterthought.

Steps report what they spent (`{"agenthq": {"cost_usd": …}}` lines, or an agent adapter);
before a step starts this gate compares what was spent with three budgets:

- the step's own (`budget_usd`, all its attempts together) and the run's (`budgets.run_usd`):
  when used up, the step is not started and a person is asked to extend the budget — `ask`
  with `details["budget"]` saying which, how much was spent and the limit;
- the rolling hour across every run (`budgets.hourly_usd`): `retry` — the window frees up by
  itself, so waiting is the right answer, not a question.

Approved extensions raise the limits (`extra_*`), so the same numbers decide again.
"""

from __future__ import annotations

from dataclasses import dataclass

from agenthq.gates.base import GateResult, Outcome, Phase

__all__ = ["CostFacts", "check_budget"]

NAME = "cost"
PHASE = Phase.BEFORE


@dataclass(frozen=True)
class CostFacts:
    step_spent: float
    run_spent: float
    hour_spent: float
    step_limit: float | None
    run_limit: float | None
    hourly_limit: float | None
    hour_frees_in: float = 60.0  # seconds until the oldest spending leaves the window (estimate)


def check_budget(facts: CostFacts) -> GateResult:
    if facts.step_limit is not None and facts.step_spent >= facts.step_limit:
        return _ask("step", facts.step_spent, facts.step_limit)
    if facts.run_limit is not None and facts.run_spent >= facts.run_limit:
        return _ask("run", facts.run_spent, facts.run_limit)
    if facts.hourly_limit is not None and facts.hour_spent >= facts.hourly_limit:
        return GateResult(
            NAME,
            Outcome.RETRY,
            f"the last hour spent ${facts.hour_spent:.2f} of the ${facts.hourly_limit:.2f} "
            "hourly budget; waiting for the window to free up",
            facts.hour_spent,
            {
                "retry_in": facts.hour_frees_in,
                "budget": _figures("hour", facts.hour_spent, facts.hourly_limit),
            },
        )
    limits = [x for x in (facts.step_limit, facts.run_limit, facts.hourly_limit) if x is not None]
    reason = "within budget" if limits else "no budget set"
    return GateResult(NAME, Outcome.PASS, reason, facts.run_spent, {})


def _ask(scope: str, spent: float, limit: float) -> GateResult:
    return GateResult(
        NAME,
        Outcome.ASK,
        f"the {scope} spent ${spent:.2f} of its ${limit:.2f} budget; "
        "approve with --extend USD to continue",
        spent,
        {"budget": _figures(scope, spent, limit)},
    )


def _figures(scope: str, spent: float, limit: float) -> dict[str, float | str]:
    return {"scope": scope, "spent_usd": round(spent, 6), "limit_usd": round(limit, 6)}
