"""Every error agenthq raises on purpose derives from one root, so the edges (CLI exit codes,
HTTP statuses) can map them in one table each and anything else is a bug.

    AgentHQError
    ├── InputError                  the user gave us something we cannot use (exit 2)
    │   ├── PlanError               a plan file or Python plan is invalid; carries Problems
    │   ├── ParamError              a `-p key=value` is malformed or names no param
    │   └── ConfigError             agenthq.toml / AGENTHQ_* settings are invalid
    ├── NotFoundError               a run, step or attempt id that the store does not hold
    ├── StateError                  the request is valid but not now (resume a finished run …)
    │   ├── IllegalTransitionError  a state change the table in states.py forbids (a bug if hit)
    │   └── RunBusyError            another live process owns the run
    ├── StoreError                  the database cannot be used (unreachable, not migrated …)
    │   └── StaleWriteError         a compare-and-set lost: someone else changed the row first
    ├── ExecutionError              an executor could not start a step (failure class
    │                               `infrastructure`); never raised past the engine
    ├── AgentTaskError              a built-in agent could not do its task (a patch that does
    │   │                           not apply, a webhook that keeps refusing, a missing analyser)
    │   └── FindingsError           a built-in check found what the step's threshold forbids
    └── LearningError               the failure model cannot be trained, loaded or used (too
                                    little history, the `learn` extra missing, a model file
                                    that holds types we do not trust)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located as precisely as we can."""

    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    hint: str | None = None

    def render(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        text = f"{where}{self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


class AgentHQError(Exception):
    """Root of every error agenthq raises deliberately."""


class InputError(AgentHQError):
    """Something the user supplied is invalid; nothing has been changed."""


class PlanError(InputError):
    """A plan is invalid. Holds every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(p.render() for p in problems))


class ParamError(InputError):
    """A run parameter is malformed, unknown or missing."""


class ConfigError(InputError):
    """Settings from the environment or agenthq.toml are invalid."""


class NotFoundError(AgentHQError):
    """The store holds no such run, step or attempt."""


class StateError(AgentHQError):
    """The request is well-formed but cannot be honoured in the current state."""


class IllegalTransitionError(StateError):
    """A state change that states.py's table forbids. Reaching this is a bug in agenthq."""


class RunBusyError(StateError):
    """Another live process is executing the run."""


class StoreError(AgentHQError):
    """The store cannot be used as configured."""


class StaleWriteError(StoreError):
    """A conditional write found the row changed by someone else; the whole batch rolled back."""


class ExecutionError(AgentHQError):
    """An executor could not start a step (missing program, bad cwd …)."""


class AgentTaskError(AgentHQError):
    """A built-in agent (agenthq.agents.builtin) could not do its task; the step fails."""


class FindingsError(AgentTaskError):
    """A built-in check found something at or above the step's threshold; the step fails
    after the findings were logged."""


class LearningError(AgentHQError):
    """The failure model cannot be trained, loaded or used; the message says what to do."""
