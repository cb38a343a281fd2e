"""`patcher`: apply a unified diff safely — paths checked, a dry run first, the reverse patch
written before anything changes, and everything undone when the apply or the `verify` command
fails (`verify`: a command, split like a shell would but run without one, e.g.
`python -m pytest -q`). Its steps ask a person first (the agent's risk is `approval_required`) unless the
project's settings say otherwise.

`git apply` does the work (it applies all hunks or none, and works outside repositories too).
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

from agenthq.agents.builtin._workspace import Context, inside, log, relative, workspace_of
from agenthq.errors import AgentTaskError, InputError

GIT_TIMEOUT = 120.0
VERIFY_TIMEOUT = 1800.0
_HEADER = re.compile(r"^(?:---|\+\+\+) (?:[ab]/)?(?P<path>[^\t\n]+)", re.MULTILINE)
_HUNK = re.compile(r"^@@ -(\d+(?:,\d+)?) \+(\d+(?:,\d+)?) @@(.*)$")


def apply(
    patch: str | None = None,
    *,
    patch_file: str | None = None,
    path: str = ".",
    verify: str | None = None,
    ctx: Context | None = None,
) -> dict[str, Any]:
    """Apply `patch` (text, e.g. an upstream step's output) or `patch_file` in `path`.

    Outputs `files` (what changed), `reverse_patch` (to undo it later), `verified`.
    """
    if (patch is None) == (patch_file is None):
        raise InputError("give the patcher `patch` (diff text) or `patch_file`, not both")
    root = inside(ctx, path)
    workspace = workspace_of(ctx)
    text = patch if patch is not None else _read(inside(ctx, str(patch_file), what="patch_file"))
    files = _files(text, root, workspace)
    _git(root, ["apply", "--check", "--whitespace=nowarn", "-"], text, "the patch does not apply")
    log(ctx, f"patcher: dry run ok, {len(files)} file(s): {', '.join(files)}")
    reverse = reverse_patch(text)
    reverse_path = _reverse_file(ctx, workspace)
    reverse_path.write_text(reverse, encoding="utf-8")
    _git(root, ["apply", "--whitespace=nowarn", "-"], text, "applying the patch failed")
    if verify:
        done = subprocess.run(
            shlex.split(verify),
            cwd=root,
            capture_output=True,
            text=True,
            timeout=VERIFY_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            _git(root, ["apply", "--whitespace=nowarn", "-"], reverse, "rolling back failed")
            last = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
            log(ctx, f"patcher: `{verify}` failed (exit {done.returncode}); patch rolled back")
            raise AgentTaskError(
                f"verification `{verify}` failed (exit {done.returncode}: {last[0]}); "
                "the patch was rolled back"
            )
    log(ctx, f"patcher: applied; undo with `git apply {relative(reverse_path, workspace)}`")
    return {
        "files": files,
        "reverse_patch": relative(reverse_path, workspace),
        "verified": bool(verify),
    }


def reverse_patch(text: str) -> str:
    """The unified diff that undoes `text`: sides, headers, modes and hunk ranges swapped."""
    out: list[str] = []
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            old, new = line[4:], lines[i + 1][4:]
            out += ["--- " + _side(new, "a"), "+++ " + _side(old, "b")]
            i += 2
            continue
        hunk = _HUNK.match(line)
        if hunk:
            out.append(f"@@ -{hunk.group(2)} +{hunk.group(1)} @@{hunk.group(3)}\n")
        elif line.startswith("new file mode"):
            out.append(line.replace("new file mode", "deleted file mode", 1))
        elif line.startswith("deleted file mode"):
            out.append(line.replace("deleted file mode", "new file mode", 1))
        elif line.startswith("+"):
            out.append("-" + line[1:])
        elif line.startswith("-"):
            out.append("+" + line[1:])
        else:
            out.append(line)
        i += 1
    return "".join(out)


def _side(header: str, prefix: str) -> str:
    """Keep /dev/null; otherwise give the path the a/ or b/ side it now stands on."""
    if header.startswith("/dev/null"):
        return header
    if header.startswith(("a/", "b/")):
        return f"{prefix}/{header[2:]}"
    return header


def _files(text: str, root: Path, workspace: Path) -> list[str]:
    names = sorted({m.group("path").strip() for m in _HEADER.finditer(text)} - {"/dev/null"})
    if not names:
        raise InputError("that is not a unified diff: no ---/+++ file headers")
    for name in names:
        pure = PurePosixPath(name)
        if pure.is_absolute() or ".." in pure.parts:
            raise InputError(f"the patch touches {name!r}, outside the workspace; refused")
        if not (root / name).resolve().is_relative_to(workspace):
            raise InputError(f"the patch touches {name!r}, outside the workspace; refused")
    return names


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the patch {path}: {exc.strerror}") from None


def _reverse_file(ctx: Context | None, workspace: Path) -> Path:
    folder = workspace / ".agenthq" / "patches"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{ctx.run_id}-{ctx.step_id}-{ctx.attempt}" if ctx is not None else "manual"
    return folder / (re.sub(r"[^A-Za-z0-9_.-]", "_", stem) + ".reverse.patch")


def _git(cwd: Path, args: list[str], stdin: str, what: str) -> None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise AgentTaskError("git is not installed; the patcher applies diffs with it") from None
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise AgentTaskError(f"{what}: {why}; nothing was changed")
