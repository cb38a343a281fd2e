"""Where a built-in agent may read and write: the run's workspace, reached from the step's cwd.

The engine passes a `StepContext` (agenthq.executors.python); agents may not import the
executors, so `Context` below is the part of it they rely on. Without a context (a direct call
from Python) the process's working directory is both workspace and cwd.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Protocol

from agenthq.errors import InputError

# Caches, virtualenvs and VCS data: never the project's own code, often huge.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "node_modules",
        ".agenthq",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".hypothesis",
        ".tox",
        ".nox",
    }
)
MAX_FILE_BYTES = 2 * 1024 * 1024  # bigger files are data or build output, not hand-written


class Context(Protocol):
    """What the agents use of the engine's StepContext."""

    @property
    def run_id(self) -> str: ...
    @property
    def step_id(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def workspace(self) -> Path: ...
    @property
    def cwd(self) -> Path: ...
    @property
    def env(self) -> Mapping[str, str]: ...
    def log(self, text: str) -> None: ...


def workspace_of(ctx: Context | None) -> Path:
    return (ctx.workspace if ctx is not None else Path.cwd()).resolve()


def inside(ctx: Context | None, path: str | os.PathLike[str], *, what: str = "path") -> Path:
    """`path` resolved against the step's cwd, refused unless it stays in the workspace.

    Resolving first (symlinks, `..`) and then comparing is what makes the check hold: a
    lexical test would let `link/../..` or a symlink to /etc through.
    """
    workspace = workspace_of(ctx)
    cwd = ctx.cwd if ctx is not None else Path.cwd()
    if not str(path).strip():
        raise InputError(f"{what} is empty")
    resolved = (cwd / Path(path)).resolve()
    if not resolved.is_relative_to(workspace):
        raise InputError(f"{what} {str(path)!r} is outside the workspace {workspace}")
    return resolved


def relative(path: Path, workspace: Path) -> str:
    """How findings name a file: relative to the workspace, with forward slashes."""
    try:
        return path.relative_to(workspace).as_posix() or "."
    except ValueError:
        return path.as_posix()


def files_under(
    root: Path, workspace: Path, *, exclude: Iterable[str] = (), suffixes: Iterable[str] = ()
) -> list[Path]:
    """Regular files under `root` (or `root` itself), sorted, skipping SKIP_DIRS, files over
    MAX_FILE_BYTES, symlinks and any whose workspace-relative path matches an `exclude` glob.
    `suffixes` (".py") keeps only those endings when given."""
    patterns = [p.rstrip("/") for p in exclude]
    wanted = tuple(s.lower() for s in suffixes)
    found: list[Path] = []
    for file in _walk(root):
        name = relative(file, workspace)
        if wanted and not name.lower().endswith(wanted):
            continue
        if any(_matches(name, pattern) for pattern in patterns):
            continue
        try:
            if file.is_symlink() or not file.is_file() or file.stat().st_size > MAX_FILE_BYTES:
                continue
        except OSError:
            continue
        found.append(file)
    return sorted(found)


def _walk(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in filenames:
            yield Path(dirpath) / name


def _matches(name: str, pattern: str) -> bool:
    """`tests/**` and `tests` both exclude the directory; other globs match the whole path."""
    if pattern.endswith("/**"):
        base = pattern[:-3]
        return name == base or name.startswith(base + "/")
    return fnmatch.fnmatchcase(name, pattern) or name.startswith(pattern + "/")


def read_text(path: Path) -> str | None:
    """The file's text, or None when it cannot be read or looks binary."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\x00" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def log(ctx: Context | None, text: str) -> None:
    """To the step's log (masked by the engine); nowhere when called without a context."""
    if ctx is not None:
        ctx.log(text)


def env_value(ctx: Context | None, name: str) -> str | None:
    """A variable from the step's environment, else the process's."""
    if ctx is not None and name in ctx.env:
        return ctx.env[name]
    return os.environ.get(name)
