"""Worktrees for coding-agent attempts: opened before the agent starts, merged or kept after.

`workspace: worktree` gives each attempt a git worktree on a branch of its own, so parallel
agents never edit one checkout. On success the branch is merged back (`merge: auto`) or kept
for a person (`merge: review`); a conflict fails the attempt with failure class `merge` and
keeps the branch. Every state is recorded in the store, so `agenthq worktrees` and
`agenthq diff` see them from any process. All of this runs off the event loop (git is slow).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agenthq.errors import AgentHQError
from agenthq.executors.base import Outcome
from agenthq.graph import StepNode
from agenthq.spec.agents import MergeMode
from agenthq.states import FailureClass
from agenthq.store.api import Store

if TYPE_CHECKING:
    from agenthq.agents import worktree


class WorkspaceError(Exception):
    """The worktree could not be made: the attempt fails as infrastructure."""


@dataclass(frozen=True)
class Checkout:
    node_id: str
    attempt: int
    tree: worktree.Worktree
    cwd: Path  # inside the worktree, where the step's cwd was inside the workspace
    merge: MergeMode


class Workspaces:
    def __init__(self, store: Store, *, run_id: str, workspace: Path, root: Path) -> None:
        self.store = store
        self.run_id = run_id
        self.workspace = workspace.resolve()
        self.root = root

    def open(self, node: StepNode, attempt: int, cwd: Path, merge: MergeMode) -> Checkout:
        from agenthq.agents import worktree

        try:
            tree = worktree.create(
                self.workspace, run_id=self.run_id, step_id=node.id, attempt=attempt, root=self.root
            )
        except AgentHQError as exc:
            raise WorkspaceError(f"cannot give step {node.id} a worktree: {exc}") from None
        relative = cwd.resolve().relative_to(self.workspace) if cwd != self.workspace else Path()
        self._record(node.id, attempt, tree, "active", merge)
        return Checkout(node.id, attempt, tree, tree.path / relative, merge)

    def close(self, checkout: Checkout, outcome: Outcome) -> tuple[Outcome, dict[str, Any]]:
        """Commit what the agent changed; merge, keep for review, or keep after a failure."""
        from agenthq.agents import worktree

        tree = checkout.tree
        extra: dict[str, Any] = {"branch": tree.branch}
        if not outcome.succeeded:
            self._set(checkout, "kept")
            return outcome, extra
        try:
            changed = worktree.commit_all(tree, f"agenthq: {self.run_id} {checkout.node_id}")
        except AgentHQError as exc:
            self._set(checkout, "kept")
            return _failed(
                outcome, FailureClass.MERGE, f"could not commit the agent's work: {exc}"
            ), extra
        extra["changed"] = changed
        if checkout.merge is MergeMode.REVIEW:
            self._set(checkout, "review")
            return outcome, extra
        try:
            result = worktree.merge(tree)
        except AgentHQError as exc:
            self._set(checkout, "conflict")
            return _failed(outcome, FailureClass.MERGE, f"could not merge: {exc}"), extra
        if result.state != "merged":
            self._set(checkout, "conflict")
            return _failed(outcome, FailureClass.MERGE, result.reason), extra
        self._set(checkout, "merged")
        try:
            worktree.remove(tree, keep_branch=False)
        except AgentHQError:
            return outcome, extra  # merged; the directory stays for `agenthq worktrees prune`
        self._set(checkout, "removed")
        return outcome, extra

    def keep(self, checkout: Checkout) -> None:
        self._set(checkout, "kept")

    def finish_run(self) -> None:
        """The run ended: worktrees kept for review lose their directory (the branch stays,
        `agenthq diff` reads it); failed and conflicting ones stay for a person."""
        from agenthq.agents import worktree

        for record in self.store.list_worktrees(run_id=self.run_id, states=("review",)):
            tree = worktree.Worktree(
                path=Path(record.path),
                branch=record.branch,
                base=record.base,
                repo=Path(record.repo),
            )
            try:
                worktree.remove(tree, keep_branch=True)
            except AgentHQError:
                continue

    def _record(
        self, step_id: str, attempt: int, tree: worktree.Worktree, state: str, merge: MergeMode
    ) -> None:
        from agenthq.store.api import WorktreeRecord

        now = time.time()
        self.store.record_worktree(
            WorktreeRecord(
                run_id=self.run_id,
                step_id=step_id,
                attempt=attempt,
                path=str(tree.path),
                branch=tree.branch,
                base=tree.base,
                repo=str(tree.repo),
                state=state,
                merge=merge.value,
                created_at=now,
                updated_at=now,
            )
        )

    def _set(self, checkout: Checkout, state: str) -> None:
        self.store.update_worktree(
            self.run_id, checkout.node_id, checkout.attempt, state, time.time()
        )


def _failed(outcome: Outcome, failure: FailureClass, error: str) -> Outcome:
    return Outcome(
        failure,
        exit_code=outcome.exit_code,
        error=error,
        usage=outcome.usage,
        session_id=outcome.session_id,
    )
