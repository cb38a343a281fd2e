"""What the user wrote: a plan, validated and frozen.

These models are the single description of the plan language. The YAML loader and the Python
SDK (`agenthq.Plan`) both produce them; nothing else constructs steps. Unknown keys are errors
(`extra="forbid"`) so a typo never silently changes behaviour.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from agenthq.spec.agents import AgentRef, AgentSpec, MergeMode, WorkspaceMode, check_agent_name
from agenthq.spec.automation import AfterSpec, OnSpec, ScheduleSpec
from agenthq.spec.durations import parse_duration
from agenthq.states import FailureClass

Duration = Annotated[float, BeforeValidator(parse_duration)]

STEP_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
USES_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

# Lost attempts are not the step's fault (its runner or machine died), so they get retries
# of their own even when the plan asks for none.
DEFAULT_LOST_RETRIES = 2


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class TriggerRule(StrEnum):
    """When a step with finished `needs` may run."""

    ALL_SUCCESS = "all_success"  # every need succeeded (default)
    ALL_DONE = "all_done"  # every need finished, whatever its state
    ONE_FAILED = "one_failed"  # at least one need failed
    NONE_FAILED = "none_failed"  # no need failed (succeeded or skipped)


class Backoff(StrEnum):
    CONSTANT = "constant"
    LINEAR = "linear"
    EXPONENTIAL = "exponential"


class RetrySpec(Frozen):
    """How often and how patiently to try again, per failure class."""

    max_attempts: int = Field(default=1, ge=1, le=100)
    backoff: Backoff = Backoff.EXPONENTIAL
    initial: Duration = 1.0
    max: Duration = 300.0
    jitter: float = Field(default=0.1, ge=0.0, le=1.0)
    on: list[FailureClass] | dict[FailureClass, int] = Field(
        default_factory=lambda: [FailureClass.EXECUTION, FailureClass.TIMEOUT, FailureClass.LOST]
    )

    def budgets(self) -> dict[FailureClass, int]:
        """Retries allowed for each failure class (attempts after the first)."""
        if isinstance(self.on, dict):
            budgets = {cls: max(0, n) for cls, n in self.on.items()}
            budgets.setdefault(FailureClass.LOST, DEFAULT_LOST_RETRIES)
            return budgets
        budgets = dict.fromkeys(self.on, self.max_attempts - 1)
        # Only an explicit per-class mapping can lower the lost budget below its default.
        budgets[FailureClass.LOST] = max(budgets.get(FailureClass.LOST, 0), DEFAULT_LOST_RETRIES)
        return budgets


class ParamType(StrEnum):
    STR = "str"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    PATH = "path"  # relative paths may not climb out of the workspace
    CHOICE = "choice"  # one of `choices`


class ParamSpec(Frozen):
    default: Any = None
    required: bool = False
    description: str = ""
    type: ParamType | None = None  # None: the default's type, if it has one
    choices: list[str] | None = None

    @model_validator(mode="after")
    def _typed(self) -> ParamSpec:
        if self.type is ParamType.CHOICE and not self.choices:
            raise ValueError("a `choice` param needs `choices`, e.g. choices: [dev, prod]")
        if self.choices is not None and self.type not in (ParamType.CHOICE, None):
            raise ValueError("`choices` is for `type: choice` params")
        if self.default is not None and self.type is not None:
            from agenthq.spec.param_types import check_value

            check_value(self.type, self.default, self.choices, "its default")
        return self


class OutputSpec(Frozen):
    """A value to capture after a step succeeds: a file's content or a match in its stdout."""

    file: str | None = None
    json_: bool = Field(default=False, alias="json")
    pattern: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> OutputSpec:
        if (self.file is None) == (self.pattern is None):
            raise ValueError("an output needs exactly one of `file` or `pattern`")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {self.pattern!r}: {exc}") from None
        return self


GATE_NAMES = ("risk", "secrets", "quality", "cost", "approval")


def _known_gates(value: list[str] | None) -> list[str] | None:
    """Fail closed at load time: a misspelt gate must not silently turn a check off."""
    if value is None:
        return None
    for name in value:
        if name not in GATE_NAMES:
            from difflib import get_close_matches

            close = get_close_matches(name, GATE_NAMES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown gate {name!r}{hint}; the gates are {', '.join(GATE_NAMES)}")
    if len(set(value)) != len(value):
        raise ValueError("a gate is listed twice")
    return value


GateList = Annotated[list[str] | None, AfterValidator(_known_gates)]


class OnTimeout(StrEnum):
    REJECT = "reject"
    APPROVE = "approve"


class ApprovalSpec(Frozen):
    """The service level of a person's decision: how long it may take and what happens then."""

    timeout: Duration = 7 * 86400.0
    warn_before: Duration = 3600.0
    escalate_after: Duration | None = None
    escalate_to: str | None = None
    on_timeout: OnTimeout = OnTimeout.REJECT

    @model_validator(mode="after")
    def _consistent(self) -> ApprovalSpec:
        if self.timeout <= 0:
            raise ValueError("approval timeout must be positive")
        if (self.escalate_after is None) != (self.escalate_to is None):
            raise ValueError("set both `escalate_after` and `escalate_to`, or neither")
        if self.escalate_after is not None and self.escalate_after >= self.timeout:
            raise ValueError("`escalate_after` must be shorter than `timeout`")
        return self


class BudgetSpec(Frozen):
    """Money a step, a run, or everything in a rolling hour may spend (US dollars)."""

    step_usd: float | None = Field(default=None, gt=0)
    run_usd: float | None = Field(default=None, gt=0)
    hourly_usd: float | None = Field(default=None, gt=0)


class RiskLevel(StrEnum):
    AUTO = "auto"  # the gates decide
    APPROVAL_REQUIRED = "approval_required"  # always ask a person before it runs


class PolicySpec(Frozen):
    """Per-plan command rules, added to the project's `[policy]` (see gates/policy.py)."""

    allow: list[str] = Field(default_factory=list)
    ask: list[str] = Field(default_factory=list)
    deny: list[str] = Field(default_factory=list)


class DefaultsSpec(Frozen):
    timeout: Duration | None = None
    retry: RetrySpec | None = None
    env: dict[str, str] = Field(default_factory=dict)
    agent: str | None = None
    kill_grace: Duration = 5.0
    gates: GateList = None
    approval: ApprovalSpec | None = None


class ConcurrencySpec(Frozen):
    """Limits that hold for the whole run, on top of `--max-workers`."""

    max_workers: int | None = Field(default=None, ge=1, le=10_000)
    agents: dict[str, int] = Field(default_factory=dict)  # agent name → steps at a time

    @field_validator("agents")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        for name, limit in value.items():
            if limit < 1:
                raise ValueError(f"agent {name!r} limit must be at least 1, got {limit}")
        return value


class WaitForSpec(Frozen):
    """What a `wait_for` step waits for: a person's go-ahead (`agenthq approve`)."""

    approval: bool = True
    message: str = ""  # shown with the approval ("the change freeze ends Monday")

    @model_validator(mode="after")
    def _something(self) -> WaitForSpec:
        if not self.approval:
            raise ValueError("`wait_for` needs `approval: true`; it is the only thing to wait for")
        return self


def _aware(value: datetime | None) -> datetime | None:
    """A moment, not a wall-clock reading: an offset (or Z) is required."""
    if value is not None and value.tzinfo is None:
        raise ValueError(
            f"`wait_until` {value.isoformat()} has no time zone; "
            f"write it with Z or an offset, e.g. {value.isoformat()}Z"
        )
    return value


class CompensateSpec(Frozen):
    """How to undo a succeeded step when its run rolls back: a shell command or a callable."""

    run: str | None = None
    uses: str | None = None
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    env: dict[str, str] = Field(default_factory=dict)
    timeout: Duration | None = None

    @field_validator("uses")
    @classmethod
    def _uses_shape(cls, value: str | None) -> str | None:
        if value is not None and not USES_TARGET.match(value):
            raise ValueError(f"invalid `uses` {value!r}: write it as module.path:function")
        return value

    @model_validator(mode="after")
    def _one_action(self) -> CompensateSpec:
        if (self.run is None) == (self.uses is None):
            raise ValueError("`compensate` needs exactly one of `run` (a command) or `uses`")
        if self.with_ and self.uses is None:
            raise ValueError("`compensate` has `with` but no `uses` to pass it to")
        return self


ACTIONS = ("run", "uses", "prompt", "wait", "wait_until", "wait_for")
WAITS = ("wait", "wait_until", "wait_for")


class StepSpec(Frozen):
    id: str
    description: str = ""
    needs: list[str] = Field(default_factory=list)
    run: str | None = None
    uses: str | None = None
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    allow_outside_workspace: bool = False
    timeout: Duration | None = None
    retry: RetrySpec | None = None
    trigger: TriggerRule = TriggerRule.ALL_SUCCESS
    when: str | None = None
    foreach: list[Any] | str | None = None
    writes: list[str] = Field(default_factory=list)
    agent: str | AgentRef | None = None  # a name, or {capability: TAG} for any agent with it
    prompt: str | None = None  # what a cli or llm agent is asked (a template)
    output_schema: dict[str, Any] | None = Field(default=None, alias="schema")  # llm: JSON shape
    workspace: WorkspaceMode | None = None  # None: the agent's, else shared
    merge: MergeMode | None = None  # None: the agent's, else auto
    outputs: dict[str, OutputSpec] = Field(default_factory=dict)
    gates: GateList = None  # None: the plan's defaults, then agenthq.toml, then all of them
    risk: RiskLevel = RiskLevel.AUTO
    approval: ApprovalSpec | None = None
    budget_usd: float | None = Field(default=None, gt=0)
    wait: Duration | None = None  # succeed this long after the step became ready
    wait_until: Annotated[datetime | None, AfterValidator(_aware)] = None
    wait_for: WaitForSpec | None = None
    compensate: CompensateSpec | None = None  # undoes the step on rollback
    requires: list[str] = Field(default_factory=list)  # capabilities of the worker that runs it

    @field_validator("compensate", mode="before")
    @classmethod
    def _compensate_shorthand(cls, value: Any) -> Any:
        # `compensate: git revert …` is shorthand for `compensate: {run: git revert …}`.
        return {"run": value} if isinstance(value, str) else value

    @property
    def is_wait(self) -> bool:
        """A step that runs nothing: it only waits (a timer or a person)."""
        return self.wait is not None or self.wait_until is not None or self.wait_for is not None

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not STEP_ID.match(value):
            raise ValueError(
                f"invalid step id {value!r}: use letters, digits, '_' and '-', starting with a letter"
            )
        return value

    @field_validator("uses")
    @classmethod
    def _uses_shape(cls, value: str | None) -> str | None:
        if value is not None and not USES_TARGET.match(value):
            raise ValueError(f"invalid `uses` {value!r}: write it as module.path:function")
        return value

    @field_validator("env")
    @classmethod
    def _env_strings(cls, value: dict[str, Any]) -> dict[str, str]:
        return {str(k): str(v) for k, v in value.items()}

    @model_validator(mode="after")
    def _one_action(self) -> StepSpec:
        actions = [k for k in ACTIONS if getattr(self, k) is not None]
        if not actions and self.agent is None:
            raise ValueError(
                f"step {self.id!r} needs `run` (a shell command), `uses` (module:function), "
                "`prompt` with an `agent`, or a `wait`, `wait_until` or `wait_for`"
            )
        if len(actions) > 1:
            named = [f"`{a}`" for a in actions]
            both = "both " if len(named) == 2 else ""
            listed = ", ".join(named[:-1]) + " and " + named[-1]
            raise ValueError(f"step {self.id!r} has {both}{listed}; keep one")
        if self.prompt is not None and self.agent is None:
            raise ValueError(
                f"step {self.id!r} has a `prompt` but no `agent` to ask; add `agent: NAME`"
            )
        if self.with_ and (self.run is not None or self.prompt is not None):
            raise ValueError(
                f"step {self.id!r} has `with` but no `uses`; `with` passes arguments to a callable"
            )
        if self.is_wait:
            self._plain_wait()
        if self.output_schema is not None and self.prompt is None:
            raise ValueError(f"step {self.id!r} has a `schema` but no `prompt` for an llm agent")
        if isinstance(self.agent, str):
            check_agent_name(self.agent)
        return self

    def _plain_wait(self) -> None:
        """A wait runs nothing, so the keys that shape a run mean nothing on it."""
        if self.wait is not None and self.wait < 0:
            raise ValueError(f"step {self.id!r}: `wait` must not be negative")
        meaningless = [
            key
            for key in ("agent", "timeout", "retry", "cwd", "compensate")
            if getattr(self, key) is not None
        ] + [key for key in ("env", "with_", "writes", "outputs") if getattr(self, key)]
        if meaningless:
            named = ", ".join(f"`{k.rstrip('_')}`" for k in meaningless)
            raise ValueError(
                f"step {self.id!r} only waits, so {named} would do nothing; remove "
                f"{'it' if len(meaningless) == 1 else 'them'} or give the work its own step"
            )


class OnFailure(StrEnum):
    """What a run does when it ends failed."""

    STOP = "stop"  # leave everything as it is (the default)
    ROLLBACK = "rollback"  # run the `compensate` of each succeeded step, in reverse order


class PlanSpec(Frozen):
    name: str
    description: str = ""
    params: dict[str, ParamSpec] = Field(default_factory=dict)
    defaults: DefaultsSpec = Field(default_factory=DefaultsSpec)
    concurrency: ConcurrencySpec = Field(default_factory=ConcurrencySpec)
    secrets: list[str] = Field(default_factory=list)  # names of environment variables
    budgets: BudgetSpec = Field(default_factory=BudgetSpec)
    policy: PolicySpec = Field(default_factory=PolicySpec)
    agents: dict[str, AgentSpec] = Field(default_factory=dict)  # added to agenthq.toml's
    on_failure: OnFailure = OnFailure.STOP
    schedule: ScheduleSpec | None = None  # registered by `agenthq schedule add`
    after: list[AfterSpec] = Field(default_factory=list)  # registered by `agenthq triggers add`
    on: list[OnSpec] = Field(default_factory=list)
    steps: list[StepSpec] = Field(min_length=1)

    @field_validator("after", "on", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        # `after: {plan: build}` is shorthand for a list of one.
        return [value] if isinstance(value, dict) else value

    @field_validator("agents")
    @classmethod
    def _agent_names(cls, value: dict[str, AgentSpec]) -> dict[str, AgentSpec]:
        for name in value:
            check_agent_name(name)
        return value

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not STEP_ID.match(value):
            raise ValueError(f"invalid plan name {value!r}: use letters, digits, '_' and '-'")
        return value

    @field_validator("params", mode="before")
    @classmethod
    def _param_shorthand(cls, value: Any) -> Any:
        # `params: {repo: "."}` is shorthand for `params: {repo: {default: "."}}`.
        if isinstance(value, dict):
            return {k: v if isinstance(v, dict) else {"default": v} for k, v in value.items()}
        return value
