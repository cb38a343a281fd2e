"""Git worktrees, one per coding-agent attempt, so parallel agents never share a checkout.

Each attempt gets a branch `agenthq/<run>/<step>/<attempt>` from the checkout's HEAD, in a
directory of its own. Afterwards the agent's changes are committed on that branch and either
merged back (fast-forward, else a merge commit; a conflict is aborted so the checkout is
exactly as it was) or left for a person to review. Everything runs `git` as a subprocess with
a timeout, no pager, no editor and no prompt; failures are WorktreeError with git's own words.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from agenthq.errors import AgentHQError

GIT_TIMEOUT = 60.0
_IDENTITY = ("-c", "user.name=agenthq", "-c", "user.email=agenthq@localhost")
_UNSAFE_REF = re.compile(r"[^A-Za-z0-9._-]+")


class WorktreeError(AgentHQError):
    """A worktree could not be made, committed, merged or removed."""


@dataclass(frozen=True)
class Worktree:
    path: Path
    branch: str
    base: str  # the commit the branch started from
    repo: Path  # the checkout it merges back into


@dataclass(frozen=True)
class MergeResult:
    state: str  # merged | conflict | dirty
    reason: str
    paths: tuple[str, ...] = ()  # the files in conflict, or the uncommitted ones in the way


def branch_name(run_id: str, step_id: str, attempt: int) -> str:
    """`agenthq/<run>/<step>/<attempt>`, with what git refuses in a ref replaced by `_`."""
    step = _UNSAFE_REF.sub("_", step_id).strip("._") or "step"
    return f"agenthq/{_UNSAFE_REF.sub('_', run_id)}/{step}/{attempt}"


def create(repo: Path, *, run_id: str, step_id: str, attempt: int, root: Path) -> Worktree:
    top = Path(_git(repo, "rev-parse", "--show-toplevel", what="find the git repository"))
    base = _git(top, "rev-parse", "--verify", "HEAD^{commit}", what="read HEAD (no commit yet?)")
    branch = branch_name(run_id, step_id, attempt)
    path = root / _UNSAFE_REF.sub("_", run_id) / f"{_UNSAFE_REF.sub('_', step_id)}-{attempt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():  # a retry after a crash: start again from a clean tree
        _git(top, "worktree", "remove", "--force", str(path), what="clear an old worktree", ok=True)
        _git(top, "branch", "-D", branch, what="drop an old branch", ok=True)
    _git(top, "worktree", "add", "-q", "-b", branch, str(path), base, what="add a worktree")
    return Worktree(path=path, branch=branch, base=base, repo=top)


def commit_all(tree: Worktree, message: str) -> bool:
    """Commit everything the agent changed on the branch; False when it changed nothing."""
    _git(tree.path, "add", "-A", what="stage the agent's changes")
    if not _git(tree.path, "status", "--porcelain", what="look for changes"):
        return False
    _git(tree.path, *_IDENTITY, "commit", "-q", "--no-verify", "-m", message, what="commit")
    return True


def merge(tree: Worktree) -> MergeResult:
    """Bring the branch into the checkout it came from, never losing a person's work there.

    One merge at a time per checkout, across threads and processes (a lock file in .git):
    two agents finishing together must not move HEAD under each other.
    """
    git_dir = Path(_git(tree.repo, "rev-parse", "--absolute-git-dir", what="find .git"))
    with _locked(git_dir / "agenthq-merge.lock"):
        return _merge(tree)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _merge(tree: Worktree) -> MergeResult:
    repo = tree.repo
    if _git(repo, "rev-list", "--count", f"HEAD..{tree.branch}", what="compare") == "0":
        return MergeResult("merged", "nothing to merge")
    changed = set(
        _lines(_git(repo, "diff", "--name-only", f"{tree.base}...{tree.branch}", what="diff"))
    )
    dirty = set(_lines(_git(repo, "diff", "--name-only", "HEAD", what="look for local changes")))
    in_the_way = sorted(changed & dirty)
    if in_the_way:
        return MergeResult(
            "dirty",
            f"the checkout has uncommitted changes to {', '.join(in_the_way)}, which the agent "
            f"also changed; commit or stash them, then `git merge {tree.branch}`",
            tuple(in_the_way),
        )
    head = _git(repo, "rev-parse", "HEAD", what="read HEAD")
    if _git(repo, "merge-base", head, tree.branch, what="find the merge base") == head:
        _git(repo, "merge", "-q", "--ff-only", tree.branch, what="fast-forward")
        return MergeResult("merged", "fast-forward")
    done = _run(repo, *_IDENTITY, "merge", "-q", "--no-ff", "--no-edit", tree.branch)
    if done.returncode == 0:
        return MergeResult("merged", "merge commit")
    conflicts = tuple(
        _lines(_git(repo, "diff", "--name-only", "--diff-filter=U", what="list conflicts"))
    )
    _git(repo, "merge", "--abort", what="abort the merge", ok=True)
    listed = ", ".join(conflicts) or _last_line(done.stderr or done.stdout)
    return MergeResult(
        "conflict",
        f"the agent's changes conflict with the checkout in {listed}; the branch "
        f"{tree.branch} is kept for a person to merge",
        conflicts,
    )


def diff(tree: Worktree) -> str:
    """What the agent changed, as a unified diff against where its branch started."""
    return _git(
        tree.repo, "diff", f"{tree.base}...{tree.branch}", what="diff the branch", strip=False
    )


def remove(tree: Worktree, *, keep_branch: bool) -> None:
    if tree.path.exists():
        _git(tree.repo, "worktree", "remove", "--force", str(tree.path), what="remove the worktree")
    _git(tree.repo, "worktree", "prune", what="prune worktrees", ok=True)
    if not keep_branch:
        _git(tree.repo, "branch", "-D", tree.branch, what="delete the branch", ok=True)


def _git(cwd: Path, *args: str, what: str, ok: bool = False, strip: bool = True) -> str:
    done = _run(cwd, *args)
    if done.returncode != 0 and not ok:
        raise WorktreeError(
            f"git could not {what} in {cwd}: {_last_line(done.stderr or done.stdout)}"
        )
    return done.stdout.strip() if strip else done.stdout


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_EDITOR": "true",
        "GIT_PAGER": "cat",
        "LC_ALL": "C",
    }
    try:
        return subprocess.run(
            ["git", "-C", str(cwd), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            env=env,
            check=False,
        )
    except FileNotFoundError:
        raise WorktreeError("git is not installed; `workspace: worktree` needs it") from None
    except subprocess.TimeoutExpired:
        raise WorktreeError(f"git {args[0]} took longer than {GIT_TIMEOUT:g}s in {cwd}") from None


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _last_line(text: str) -> str:
    lines = _lines(text)
    return lines[-1].strip() if lines else "no output"
