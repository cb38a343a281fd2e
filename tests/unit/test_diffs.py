"""Diff parsing and workspace diffs, on real git repositories and real `git diff` output."""

from __future__ import annotations

import difflib
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agenthq.gates.diffs import (
    FileChange,
    change_blocks,
    is_git_repo,
    old_text,
    parse_diff,
    split_lines,
    workspace_diff,
)


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def make_repo(root: Path, files: dict[str, str | bytes]) -> Path:
    """A git repository at `root` with `files` committed."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q")
    write(root, files)
    git(root, "add", "-A")
    git(root, "-c", "commit.gpgsign=false", "commit", "-q", "--allow-empty", "-m", "base")
    return root


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def changes_of(repo: Path) -> dict[str, FileChange]:
    diff = workspace_diff(repo)
    assert diff is not None
    return {c.path: c for c in parse_diff(diff)}


LINES = "".join(f"line {n}\n" for n in range(1, 21))


def test_modified_file_lines_carry_their_numbers(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"a.txt": LINES})
    lines = LINES.splitlines()
    lines[2] = "changed 3"
    lines.insert(10, "inserted")
    del lines[18]
    (repo / "a.txt").write_text("\n".join(lines) + "\n")

    change = changes_of(repo)["a.txt"]

    assert change.old_path == "a.txt"
    assert not (change.is_new)
    assert not (change.is_deleted)
    assert not (change.is_binary)
    assert not (change.is_renamed)
    assert change.added == ((3, "changed 3"), (11, "inserted"))
    assert change.removed == ((3, "line 3"), (18, "line 18"))


def test_untracked_file_is_a_new_file(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"a.txt": "a\n"})
    write(repo, {"pkg/new.py": "x = 1\ny = 2\n"})

    change = changes_of(repo)["pkg/new.py"]

    assert change.is_new
    assert change.old_path is None
    assert change.added == ((1, "x = 1"), (2, "y = 2"))
    assert change.removed == ()


def test_untracked_diff_is_what_git_itself_prints(tmp_path: Path) -> None:
    """Our synthesised new-file diff matches `git diff --no-index` line for line."""
    repo = make_repo(tmp_path, {})
    write(repo, {"n.py": "a\n\nb", "e.txt": ""})
    ours = workspace_diff(repo)
    assert ours is not None
    for name in ("n.py", "e.txt"):
        theirs = subprocess.run(
            ["git", "diff", "--no-index", "--no-color", "/dev/null", name],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        body = [ln for ln in theirs.splitlines() if not ln.startswith(("index ", "diff --git"))]
        assert "\n".join(body).replace("a/dev/null", "/dev/null") in ours


def test_ignored_files_are_left_out(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {".gitignore": "build/\n"})
    write(repo, {"build/out.js": "x\n", "kept.js": "y\n"})
    assert set(changes_of(repo)) == {"kept.js"}


def test_staged_and_unstaged_changes_both_count(tmp_path: Path) -> None:
    """An agent may `git add` its work; the diff is against HEAD, not the index."""
    repo = make_repo(tmp_path, {"a.txt": "a\n", "b.txt": "b\n"})
    write(repo, {"a.txt": "A\n", "b.txt": "B\n", "c.txt": "c\n"})
    git(repo, "add", "a.txt", "c.txt")
    assert set(changes_of(repo)) == {"a.txt", "b.txt", "c.txt"}
    assert changes_of(repo)["c.txt"].is_new


def test_deleted_file(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"gone.py": "a = 1\nb = 2\n"})
    (repo / "gone.py").unlink()

    change = changes_of(repo)["gone.py"]

    assert change.is_deleted
    assert change.old_path == "gone.py"
    assert change.removed == ((1, "a = 1"), (2, "b = 2"))
    assert change.added == ()


def test_rename_with_edit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"old/name.py": LINES})
    git(repo, "mv", "old/name.py", "new name.py")
    (repo / "new name.py").write_text(LINES.replace("line 7\n", "line seven\n"))

    change = changes_of(repo)["new name.py"]

    assert change.old_path == "old/name.py"
    assert change.is_renamed
    assert change.added == ((7, "line seven"),)
    assert change.removed == ((7, "line 7"),)


def test_binary_file(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"img.bin": b"\x00\x01\x02"})
    write(repo, {"img.bin": b"\x00\x01\x03", "new.bin": b"PK\x00\x00"})

    changes = changes_of(repo)

    assert changes["img.bin"].is_binary
    assert not changes["img.bin"].is_new
    assert changes["new.bin"].is_binary
    assert changes["new.bin"].is_new


def test_odd_paths_are_unquoted(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {'dir/with "quote".py': "a\n", "tab\there.py": "t\n"})
    write(repo, {'dir/with "quote".py': "b\n", "tab\there.py": "u\n", "é ü.py": "x\n"})
    assert set(changes_of(repo)) == {'dir/with "quote".py', "tab\there.py", "é ü.py"}


def test_missing_newline_at_end_of_file(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"a.txt": "one\ntwo"})
    write(repo, {"a.txt": "one\nTWO"})
    diff = workspace_diff(repo)
    assert diff is not None
    assert "\\ No newline at end of file" in diff

    change = parse_diff(diff)[0]

    assert change.added == ((2, "TWO"),)
    assert change.removed == ((2, "two"),)


def test_removed_lines_that_look_like_headers(tmp_path: Path) -> None:
    """`-- x` removed shows as `--- x`; hunk counts, not looks, decide what a line is."""
    repo = make_repo(tmp_path, {"q.sql": "-- a\n++ b\nselect 1;\n"})
    write(repo, {"q.sql": "++ c\nselect 1;\n"})

    changes = changes_of(repo)

    assert list(changes) == ["q.sql"]
    assert changes["q.sql"].removed == ((1, "-- a"), (2, "++ b"))
    assert changes["q.sql"].added == ((1, "++ c"),)


def test_mode_change_only(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"run.sh": "echo hi\n"})
    (repo / "run.sh").chmod(0o755)
    change = changes_of(repo)["run.sh"]
    assert change.added == ()
    assert change.removed == ()
    assert not change.is_new


def test_repository_without_commits(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    write(tmp_path, {"staged.py": "a\n", "loose.py": "b\n"})
    git(tmp_path, "add", "staged.py")

    changes = changes_of(tmp_path)

    assert set(changes) == {"staged.py", "loose.py"}
    assert all(c.is_new for c in changes.values())


def test_untracked_symlink_shows_its_target(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws", {})
    (tmp_path / "secret.txt").write_text("do not read\n")
    (repo / "link").symlink_to(tmp_path / "secret.txt")

    diff = workspace_diff(repo)

    assert diff is not None
    assert "new file mode 120000" in diff
    assert "do not read" not in diff


def test_workspace_inside_a_larger_repository(tmp_path: Path) -> None:
    """Only changes under the workspace are shown, with paths relative to it."""
    repo = make_repo(tmp_path, {"outside.txt": "o\n", "ws/inside.txt": "i\n"})
    write(repo, {"outside.txt": "O\n", "ws/inside.txt": "I\n", "ws/new.txt": "n\n"})
    assert set(changes_of(repo / "ws")) == {"inside.txt", "new.txt"}


def test_base_commit(tmp_path: Path) -> None:
    """With a base, commits the agent made since are part of the diff."""
    repo = make_repo(tmp_path, {"a.txt": "a\n"})
    base = git(repo, "rev-parse", "HEAD").strip()
    write(repo, {"a.txt": "b\n"})
    git(repo, "-c", "commit.gpgsign=false", "commit", "-qam", "agent work")

    assert changes_of(repo) == {}
    diff = workspace_diff(repo, base)
    assert diff is not None
    assert parse_diff(diff)[0].added == ((1, "b"),)


def test_not_a_git_repository(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x\n")
    assert not is_git_repo(tmp_path)
    assert workspace_diff(tmp_path) is None
    assert not is_git_repo(tmp_path / "missing")


def test_git_failure_is_none_not_an_exception(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"a.txt": "a\n"})
    assert workspace_diff(repo, "no-such-revision") is None
    assert workspace_diff(repo, timeout_s=1e-6) is None


def test_fsmonitor_hook_is_not_run(tmp_path: Path) -> None:
    """The agent controls .git/config; reading a diff must not run a program it names."""
    repo = make_repo(tmp_path / "ws", {"a.txt": "a\n"})
    marker = tmp_path / "ran"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    git(repo, "config", "core.fsmonitor", str(hook))
    write(repo, {"a.txt": "b\n"})

    assert workspace_diff(repo) is not None
    assert not marker.exists()


# --- parsing without git -----------------------------------------------------------------------


def test_plain_unified_diff_with_timestamps() -> None:
    text = (
        "--- old/a.py\t2024-01-01 00:00:00\n"
        "+++ new/a.py\t2024-01-02 00:00:00\n"
        "@@ -1,2 +1,2 @@\n"
        " keep\n"
        "-was\n"
        "+now\n"
    )
    [change] = parse_diff(text)
    assert change.path == "new/a.py"
    assert change.old_path == "old/a.py"
    assert change.added == ((2, "now"),)
    assert change.removed == ((2, "was"),)


def test_crlf_diff_lines_lose_their_carriage_return() -> None:
    text = "diff --git a/w.txt b/w.txt\r\n--- a/w.txt\r\n+++ b/w.txt\r\n@@ -1 +1 @@\r\n-a\r\n+b\r\n"
    [change] = parse_diff(text)
    assert change.added == ((1, "b"),)
    assert change.removed == ((1, "a"),)


@pytest.mark.parametrize("garbage", ["", "hello\nworld\n", "@@ -1 +1 @@\n+x\n", "diff --git\n"])
def test_garbage_yields_nothing_or_what_could_be_read(garbage: str) -> None:
    assert all(isinstance(c, FileChange) for c in parse_diff(garbage))


def test_change_blocks_pair_what_replaced_what(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"a.txt": LINES})
    lines = LINES.splitlines()
    lines[1:4] = ["new 2"]  # three lines become one
    lines.insert(10, "only added")
    (repo / "a.txt").write_text("\n".join(lines) + "\n")

    blocks = change_blocks(changes_of(repo)["a.txt"])

    assert [len(b.removed) for b in blocks] == [3, 0]
    assert [b.added for b in blocks] == [((2, "new 2"),), ((11, "only added"),)]


def test_split_lines_counts_like_git() -> None:
    assert split_lines("a\fb\u2028c\r\nd") == ["a\fb\u2028c", "d"]
    assert split_lines("") == []
    assert split_lines("x\n") == ["x"]


def test_old_text_refuses_a_file_that_moved_on(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"a.txt": LINES})
    write(repo, {"a.txt": LINES.replace("line 5\n", "five\n")})
    change = changes_of(repo)["a.txt"]

    assert old_text(change, (repo / "a.txt").read_text()) == LINES
    assert old_text(change, "something else entirely\n") is None


_line = st.sampled_from(["a", "b", "", "  x = 1", "--- y", "+++ z", "@@ w", "\\ q"])


@settings(max_examples=150, deadline=None, database=None)
@given(old=st.lists(_line, max_size=25), new=st.lists(_line, max_size=25))
def test_old_text_round_trips_any_diff(old: list[str], new: list[str]) -> None:
    """Whatever the edit, the old text rebuilt from new text + diff is the old text."""
    old_src = "".join(f"{line}\n" for line in old)
    new_src = "".join(f"{line}\n" for line in new)
    diff = "".join(
        difflib.unified_diff(old_src.splitlines(True), new_src.splitlines(True), "a/f", "b/f")
    )
    changes = parse_diff(diff)
    if old == new:
        assert changes == []
        return
    [change] = changes
    assert old_text(change, new_src) == old_src


def test_real_git_diff_round_trips(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"m.py": LINES * 3})
    lines = (LINES * 3).splitlines()
    for index in (50, 31, 30, 12, 0):
        lines[index : index + 2] = [f"edit {index}"] * (index % 3)
    new_src = "\n".join(lines) + "\n"
    (repo / "m.py").write_text(new_src)
    assert old_text(changes_of(repo)["m.py"], new_src) == LINES * 3


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_unreadable_untracked_file_does_not_break_the_diff(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {})
    write(repo, {"locked.txt": "x\n", "ok.txt": "y\n"})
    (repo / "locked.txt").chmod(0)
    try:
        diff = workspace_diff(repo)
    finally:
        (repo / "locked.txt").chmod(0o644)
    assert diff is not None
    assert "ok.txt" in diff
