"""`workspace: worktree` for real: each attempt edits a git worktree of its own; successes
merge back (fast-forward, then a merge commit), a conflict fails the step with failure class
`merge` and leaves the checkout untouched, `merge: review` keeps the branch for `agenthq diff`,
a failure keeps the worktree; a person's uncommitted work is never overwritten."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import agenthq
from agenthq.agents import worktree
from agenthq.engine.gating import GateConfig
from agenthq.engine.runner import Runner
from agenthq.engine.scheduler import SchedulerOptions
from agenthq.gates.policy import Policy
from agenthq.store.api import Store

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
AGENTHQ = str(Path(sys.executable).parent / "agenthq")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        [*GIT, "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "notes.txt").write_text("one\ntwo\nthree\n")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "start")
    return path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with agenthq.open_store(f"sqlite:///{tmp_path / 'agenthq.db'}") as opened:
        yield opened


def runner(store: Store, tmp_path: Path) -> Runner:
    return Runner(
        store,
        home=tmp_path / ".agenthq",
        environ={"HOME": str(tmp_path), "PATH": os.environ["PATH"]},
        gates=GateConfig(policy=Policy(allow=("printf *", "sed *", "exit *"))),
        scheduler_options=SchedulerOptions(poll_interval=0.05),
    )


def worktree_list(repo: Path) -> list[str]:
    return [line for line in git(repo, "worktree", "list").splitlines() if line]


def test_parallel_agents_edit_their_own_worktrees_and_both_merge(
    store: Store, tmp_path: Path, repo: Path
) -> None:
    plan = (
        agenthq.Plan("p")
        .step("left", run="printf 'left\\n' > left.txt", workspace="worktree")
        .step("right", run="printf 'right\\n' > right.txt", workspace="worktree")
    )
    run = runner(store, tmp_path).run(plan, workspace=repo, max_workers=2)
    assert run.state.value == "succeeded"
    assert (repo / "left.txt").read_text() == "left\n"
    assert (repo / "right.txt").read_text() == "right\n"
    assert git(repo, "status", "--porcelain") == ""
    rows = {w.step_id: w for w in store.list_worktrees(run_id=run.id)}
    assert {w.state for w in rows.values()} == {"removed"}
    assert len(worktree_list(repo)) == 1  # only the checkout itself
    assert "agenthq/" not in git(repo, "branch")
    assert "Merge branch" in git(repo, "log", "--format=%s")  # the second one merged for real


def test_a_conflict_fails_the_step_with_class_merge_and_touches_nothing(
    store: Store, tmp_path: Path, repo: Path
) -> None:
    plan = (
        agenthq.Plan("p")
        .step("a", run="sed -i 's/two/TWO-A/' notes.txt", workspace="worktree")
        .step("b", run="sed -i 's/two/TWO-B/' notes.txt", workspace="worktree")
    )
    run = runner(store, tmp_path).run(plan, workspace=repo, max_workers=2)
    assert run.state.value == "failed"
    steps = {s.step_id: s for s in store.get_steps(run.id)}
    failed = [s for s in steps.values() if s.state.value == "failed"]
    assert len(failed) == 1
    assert failed[0].failure_class is not None
    assert failed[0].failure_class.value == "merge"
    assert "conflict" in (failed[0].reason or "")
    text = (repo / "notes.txt").read_text()
    assert text in ("one\nTWO-A\nthree\n", "one\nTWO-B\nthree\n")  # the first one merged
    assert git(repo, "status", "--porcelain") == ""  # the merge was aborted cleanly
    (row,) = [w for w in store.list_worktrees(run_id=run.id) if w.state == "conflict"]
    assert row.step_id == failed[0].step_id
    assert row.branch in git(repo, "branch")  # kept for a person
    assert "TWO-" in worktree.diff(worktree.Worktree(Path(row.path), row.branch, row.base, repo))


def test_review_keeps_the_branch_and_diff_shows_the_change(
    store: Store, tmp_path: Path, repo: Path
) -> None:
    plan = agenthq.Plan("p").step(
        "edit", run="printf 'new\\n' >> notes.txt", workspace="worktree", merge="review"
    )
    run = runner(store, tmp_path).run(plan, workspace=repo)
    assert run.state.value == "succeeded"
    assert (repo / "notes.txt").read_text() == "one\ntwo\nthree\n"  # not merged
    (row,) = store.list_worktrees(run_id=run.id)
    assert row.state == "review"
    assert not Path(row.path).exists()  # the run ended: the directory goes, the branch stays
    assert row.branch in git(repo, "branch")
    env = {
        **os.environ,
        "AGENTHQ_HOME": str(tmp_path / ".agenthq"),
        "AGENTHQ_DB_URL": f"sqlite:///{tmp_path / 'agenthq.db'}",
    }
    shown = subprocess.run(
        [AGENTHQ, "diff", run.id, "edit"],
        capture_output=True,
        text=True,
        env=env,
        cwd=repo,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "+new" in shown.stdout
    listed = subprocess.run(
        [AGENTHQ, "worktrees", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=repo,
        check=True,
    )
    assert '"state": "review"' in listed.stdout


def test_a_failed_attempt_keeps_its_worktree(store: Store, tmp_path: Path, repo: Path) -> None:
    plan = agenthq.Plan("p").step(
        "broken", run="printf 'half\\n' > half.txt; exit 3", workspace="worktree"
    )
    run = runner(store, tmp_path).run(plan, workspace=repo)
    assert run.state.value == "failed"
    (row,) = store.list_worktrees(run_id=run.id)
    assert row.state == "kept"
    assert (Path(row.path) / "half.txt").exists()
    assert not (repo / "half.txt").exists()


def test_uncommitted_work_in_the_checkout_is_never_overwritten(tmp_path: Path, repo: Path) -> None:
    tree = worktree.create(repo, run_id="r1", step_id="shard[1]", attempt=1, root=tmp_path / "wt")
    assert tree.branch == "agenthq/r1/shard_1/1"
    (tree.path / "notes.txt").write_text("agent\n")
    assert worktree.commit_all(tree, "agent work")
    (repo / "notes.txt").write_text("person's unsaved edit\n")
    result = worktree.merge(tree)
    assert result.state == "dirty"
    assert result.paths == ("notes.txt",)
    assert (repo / "notes.txt").read_text() == "person's unsaved edit\n"
    worktree.remove(tree, keep_branch=False)
    assert len(worktree_list(repo)) == 1


def test_not_a_repository_is_a_clear_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(worktree.WorktreeError, match="find the git repository"):
        worktree.create(plain, run_id="r", step_id="s", attempt=1, root=tmp_path / "wt")
