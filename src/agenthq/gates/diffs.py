"""Read what a step changed: parse unified diffs, and produce one for a git workspace.

After-gates judge *changes*, not whole files: a placeholder comment that was already in a file
is not the agent's doing, but one it just added is. So the quality gate needs, per file, the
lines added (with their new line numbers) and the lines removed (with their old line numbers).
`parse_diff` turns `git diff` output (new files, deletions, renames, copies, mode changes,
binary markers, C-quoted paths, "\\ No newline at end of file") into frozen `FileChange`s.

Hunks are read by their line counts, never by the look of a line: a removed SQL comment
`-- x` appears in the diff as `--- x` and must not be taken for a file header.

`workspace_diff` asks git for the workspace's changes against a base (default HEAD) and adds
untracked files as synthesised new-file diffs. It never raises for git's own failures: it
returns None and the gate asks a person. git runs with the repository's own config, which the
agent may have edited, so we switch off what could run programs or reformat output
(fsmonitor, external diff, textconv, colour, custom prefixes).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "ChangeBlock",
    "FileChange",
    "change_blocks",
    "diff_since",
    "is_git_repo",
    "old_text",
    "parse_diff",
    "snapshot_tree",
    "split_lines",
    "workspace_diff",
]

Line = tuple[int, str]  # (line number, text without its newline)

# git diff arguments that make the output parseable whatever the repository's config says.
_DIFF_FLAGS = (
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--find-renames",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "--relative",  # only changes under the workspace, paths relative to it
)
# `-c` settings: no fsmonitor hook (it runs a program), no quoted non-ASCII paths.
_GIT_CONFIG = ("-c", "core.fsmonitor=false", "-c", "core.quotepath=off")
# Untracked files bigger than this are reported as binary rather than read.
MAX_UNTRACKED_BYTES = 2 * 1024 * 1024
_BINARY_SNIFF = 8000  # git's own rule: a NUL in the first 8000 bytes means binary
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_OCTAL = re.compile(rb"\\([0-7]{3}|.)")
_ESCAPES = {b"n": b"\n", b"t": b"\t", b'"': b'"', b"\\": b"\\", b"a": b"\a", b"b": b"\b"}
_ESCAPES |= {b"f": b"\f", b"r": b"\r", b"v": b"\v"}


@dataclass(frozen=True)
class FileChange:
    """One file's change. `path` is where the file is now (for a deletion: where it was);
    `old_path` is where it was before (None for a new file; equal to `path` unless renamed or
    copied). `added` holds (new line number, text), `removed` holds (old line number, text)."""

    path: str
    old_path: str | None
    added: tuple[Line, ...] = ()
    removed: tuple[Line, ...] = ()
    is_new: bool = False
    is_deleted: bool = False
    is_binary: bool = False

    @property
    def is_renamed(self) -> bool:
        return self.old_path is not None and self.old_path != self.path


@dataclass(frozen=True)
class ChangeBlock:
    """A run of removed and added lines with no unchanged line between them: what replaced what."""

    removed: tuple[Line, ...]
    added: tuple[Line, ...]


@dataclass
class _Builder:
    """Mutable state while reading one file's section of the diff."""

    old: str | None = None
    new: str | None = None
    header_old: str | None = None
    header_new: str | None = None
    is_new: bool = False
    is_deleted: bool = False
    is_binary: bool = False
    has_pair: bool = False  # its `---`/`+++` lines were read; another pair starts a new file
    added: list[Line] = field(default_factory=list)
    removed: list[Line] = field(default_factory=list)

    def build(self) -> FileChange | None:
        path = self.new or self.header_new or self.old or self.header_old
        if path is None:
            return None
        old = None if self.is_new else (self.old or self.header_old or path)
        if self.is_deleted:
            path = old or path
        return FileChange(
            path=path,
            old_path=old,
            added=tuple(self.added),
            removed=tuple(self.removed),
            is_new=self.is_new,
            is_deleted=self.is_deleted,
            is_binary=self.is_binary,
        )


def split_lines(text: str) -> list[str]:
    """Lines as git counts them: split on "\\n" only (not on form feeds or U+2028, which
    `str.splitlines` also breaks on), a final newline ends the last line, a CR before the
    newline is dropped."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _unquote(raw: str) -> str:
    """A path as git prints it: C-quoted ("a/t\\303\\251st") when it has unusual bytes."""
    if len(raw) < 2 or not (raw.startswith('"') and raw.endswith('"')):
        return raw
    body = raw[1:-1].encode("utf-8", "surrogateescape")

    def one(match: re.Match[bytes]) -> bytes:
        token = match.group(1)
        if len(token) == 3 and token.isdigit():
            return bytes([int(token, 8) & 0xFF])
        return _ESCAPES.get(token, token)

    return _OCTAL.sub(one, body).decode("utf-8", "replace")


def _strip_prefix(path: str) -> str | None:
    """`a/x` → `x`; /dev/null → None; what follows a tab (git's marker after a name with
    spaces, plain `diff -u`'s timestamp) is dropped."""
    quoted = _QUOTED.match(path)
    path = _unquote(quoted.group()) if quoted else path.split("\t", 1)[0]
    if path == "/dev/null":
        return None
    if path.startswith(("a/", "b/")):
        return path[2:]
    return path


def _header_paths(rest: str) -> tuple[str | None, str | None]:
    """Paths of `diff --git a/X b/Y`; spaces make this ambiguous unless X == Y or quoted.
    Renames and new/deleted files also carry their paths in later lines, which win."""
    quoted = _QUOTED.match(rest)
    if quoted is not None:
        return _strip_prefix(quoted.group()), _strip_prefix(rest[quoted.end() :].strip())
    if rest.endswith('"') and ' "' in rest:
        left, right = rest.rsplit(' "', 1)
        return _strip_prefix(left), _strip_prefix('"' + right)
    if rest.startswith("a/") and len(rest) % 2 == 1:
        half = (len(rest) - 1) // 2
        left, right = rest[:half], rest[half + 1 :]
        if left[2:] == right[2:]:
            return left[2:], right[2:]
    left, _, right = rest.partition(" b/")
    return _strip_prefix(left), right or None


def _meta(line: str, builder: _Builder) -> bool:
    """Extended header lines between `diff --git` and the first hunk."""
    if line.startswith("new file mode"):
        builder.is_new = True
    elif line.startswith("deleted file mode"):
        builder.is_deleted = True
    elif line.startswith(("rename from ", "copy from ")):
        builder.old = _unquote(line.split(" ", 2)[2])
    elif line.startswith(("rename to ", "copy to ")):
        builder.new = _unquote(line.split(" ", 2)[2])
    elif line.startswith("Binary files ") or line == "GIT binary patch":
        builder.is_binary = True
    elif line.startswith("--- "):
        builder.old = _strip_prefix(line[4:])
        builder.is_new = builder.is_new or builder.old is None
    elif line.startswith("+++ "):
        builder.new = _strip_prefix(line[4:])
        builder.has_pair = True
        builder.is_deleted = builder.is_deleted or builder.new is None
    else:
        return False
    return True


def _read_hunk(lines: Sequence[str], start: int, builder: _Builder) -> int:
    """Read one hunk whose header is at `start`; return the index after it."""
    match = _HUNK.match(lines[start])
    if match is None:  # `@@@` combined diffs of a merge: nothing we can attribute
        return start + 1
    old_no, new_no = int(match.group(1)), int(match.group(3))
    old_left = int(match.group(2)) if match.group(2) is not None else 1
    new_left = int(match.group(4)) if match.group(4) is not None else 1
    index = start + 1
    while index < len(lines) and (old_left > 0 or new_left > 0):
        line = lines[index].removesuffix("\r")
        tag, text = line[:1], line[1:]
        if tag == "+":
            builder.added.append((new_no, text))
            new_no, new_left = new_no + 1, new_left - 1
        elif tag == "-":
            builder.removed.append((old_no, text))
            old_no, old_left = old_no + 1, old_left - 1
        elif tag in (" ", ""):  # some tools strip the space of an empty context line
            old_no, new_no = old_no + 1, new_no + 1
            old_left, new_left = old_left - 1, new_left - 1
        elif tag != "\\":  # "\ No newline at end of file" carries no line; anything else ends it
            break
        index += 1
    while index < len(lines) and lines[index].startswith("\\"):
        index += 1
    return index


def parse_diff(text: str) -> list[FileChange]:
    """Every file of a unified diff, in order. Malformed input yields what could be read."""
    changes: list[FileChange] = []
    builder: _Builder | None = None
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        starts_plain = line.startswith("--- ") and index + 1 < len(lines)
        if line.startswith(("diff --git ", "diff --cc ", "diff --combined ")) or (
            starts_plain and lines[index + 1].startswith("+++ ") and _plain_start(builder)
        ):
            _flush(builder, changes)
            builder = _Builder()
            if line.startswith("diff --git "):
                builder.header_old, builder.header_new = _header_paths(line[len("diff --git ") :])
            elif line.startswith("diff --"):
                builder.header_new = _unquote(line.split(" ", 2)[2])
            else:
                continue  # a plain `--- x` / `+++ y` pair: let _meta read it
        elif builder is not None and line.startswith("@@"):
            index = _read_hunk(lines, index, builder)
            continue
        elif builder is not None:
            _meta(line, builder)
        index += 1
    _flush(builder, changes)
    return changes


def _plain_start(builder: _Builder | None) -> bool:
    """A `---`/`+++` pair starts a new file unless it is the git header's own pair."""
    return builder is None or builder.has_pair


def _flush(builder: _Builder | None, changes: list[FileChange]) -> None:
    if builder is not None and (built := builder.build()) is not None:
        changes.append(built)


# --- using a change ------------------------------------------------------------------------------


def _block_keys(lines: Sequence[Line]) -> Iterator[tuple[int, Line]]:
    """Key each changed line by how many unchanged lines precede it. Unchanged lines are the
    same in old and new, so a removed and an added line with the same key replaced each other."""
    for seen, line in enumerate(sorted(lines)):
        yield line[0] - 1 - seen, line


def change_blocks(change: FileChange) -> list[ChangeBlock]:
    """Group a change's lines into blocks of "these removed lines became these added lines"."""
    removed: dict[int, list[Line]] = {}
    added: dict[int, list[Line]] = {}
    for key, line in _block_keys(change.removed):
        removed.setdefault(key, []).append(line)
    for key, line in _block_keys(change.added):
        added.setdefault(key, []).append(line)
    return [
        ChangeBlock(tuple(removed.get(key, ())), tuple(added.get(key, ())))
        for key in sorted(removed.keys() | added.keys())
    ]


def old_text(change: FileChange, new_text: str) -> str | None:
    """The file before the change, rebuilt from its text now and the diff: unchanged lines in
    order, removed lines put back at their old numbers. None when `new_text` does not match the
    diff (the file moved on since), so callers never reason about a garbled past."""
    if change.is_new:
        return ""
    new_lines = split_lines(new_text)
    added = dict(change.added)
    if any(no > len(new_lines) or new_lines[no - 1] != text for no, text in added.items()):
        return None
    common = iter([line for no, line in enumerate(new_lines, 1) if no not in added])
    removed = dict(change.removed)
    total = len(new_lines) - len(added) + len(removed)
    if any(no > total for no in removed):
        return None
    old = [removed[no] if no in removed else next(common, None) for no in range(1, total + 1)]
    if any(line is None for line in old):
        return None
    return "".join(f"{line}\n" for line in old if line is not None)


# --- asking git ----------------------------------------------------------------------------------


def _git(
    workspace: Path,
    args: Sequence[str],
    timeout_s: float,
    extra_env: dict[str, str] | None = None,
) -> str | None:
    """Run git in `workspace`; its stdout, or None on any failure (missing git, timeout,
    non-zero exit). Optional locks are off so a read never blocks another git process."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}
    env.update(extra_env or {})
    try:
        done = subprocess.run(
            ["git", *_GIT_CONFIG, *args],
            cwd=workspace,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout_s,
            env=env,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", "surrogateescape")


def is_git_repo(workspace: Path, *, timeout_s: float = 10.0) -> bool:
    """Whether `workspace` is inside a git work tree (git itself must say so)."""
    if not workspace.is_dir():
        return False
    out = _git(workspace, ["rev-parse", "--is-inside-work-tree"], timeout_s)
    return out is not None and out.strip() == "true"


def workspace_diff(
    workspace: Path, base: str | None = None, *, timeout_s: float = 10.0
) -> str | None:
    """The workspace's changes against `base` (default HEAD; staged, unstaged and untracked
    files alike, since an agent may `git add` or not), as one unified diff. A repository with
    no commit yet is diffed against the empty tree. None when the workspace is not a git repo
    or git fails or overruns `timeout_s`."""
    if not is_git_repo(workspace, timeout_s=timeout_s):
        return None
    if base is None:
        has_head = _git(workspace, ["rev-parse", "--verify", "--quiet", "HEAD"], timeout_s)
        base = "HEAD" if has_head else _empty_tree(workspace, timeout_s)
    if base is None:
        return None
    tracked = _git(workspace, ["diff", *_DIFF_FLAGS, base, "--"], timeout_s)
    untracked = _git(workspace, ["ls-files", "--others", "--exclude-standard", "-z"], timeout_s)
    if tracked is None or untracked is None:
        return None
    extra = [_new_file_diff(workspace, name) for name in untracked.split("\0") if name]
    return tracked + "".join(extra)


def snapshot_tree(workspace: Path, *, timeout_s: float = 10.0) -> str | None:
    """A git tree object of the whole work tree as it is now — tracked and untracked files,
    .gitignore respected — built in a private index, so the user's index and HEAD are
    untouched. Taken before a step runs, it lets `diff_since` show exactly that step's
    changes, not everything uncommitted in the workspace. None when not a git repo or git
    fails."""
    if not is_git_repo(workspace, timeout_s=timeout_s):
        return None
    with tempfile.TemporaryDirectory(prefix="agenthq-index-") as scratch:
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        if _git(workspace, ["add", "--all", "--", ":/"], timeout_s, env) is None:
            return None
        tree = _git(workspace, ["write-tree"], timeout_s, env)
    return tree.strip() if tree else None


def diff_since(workspace: Path, tree: str, *, timeout_s: float = 10.0) -> str | None:
    """The unified diff from `tree` (a `snapshot_tree`) to the work tree now."""
    now = snapshot_tree(workspace, timeout_s=timeout_s)
    if now is None:
        return None
    return _git(workspace, ["diff", *_DIFF_FLAGS, tree, now, "--"], timeout_s)


def _empty_tree(workspace: Path, timeout_s: float) -> str | None:
    """The empty tree's id in this repository's hash (sha1 or sha256)."""
    out = _git(workspace, ["hash-object", "-t", "tree", "--stdin"], timeout_s)
    return out.strip() if out else None


def _new_file_diff(workspace: Path, name: str) -> str:
    """What `git diff` would print for `name` had it been `git add -N`ed, without touching the
    index (other processes may be using it). Symlinks show their target, as git does."""
    path = workspace / name
    quoted = _quote(name)
    try:
        info = path.lstat()
        if os.path.islink(path):
            return _text_diff(quoted, "120000", os.readlink(path).encode(), newline=False)
        if info.st_size > MAX_UNTRACKED_BYTES:
            return _binary_diff(quoted, info.st_mode)
        data = path.read_bytes()
    except OSError:
        return ""
    mode = "100755" if info.st_mode & 0o111 else "100644"
    if b"\0" in data[:_BINARY_SNIFF]:
        return _binary_diff(quoted, info.st_mode)
    return _text_diff(quoted, mode, data, newline=data.endswith(b"\n"))


def _quote(name: str) -> str:
    """Quote a path the way git does when it holds a quote, backslash or control character."""
    if not re.search(r'["\\\x00-\x1f\x7f]', name):
        return name
    raw = name.encode("utf-8", "surrogateescape")
    inner = "".join(
        chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else f"\\{b:03o}" for b in raw
    )
    return f'"{inner}"'


def _prefixed(prefix: str, quoted: str) -> str:
    return f'"{prefix}{quoted[1:]}' if quoted.startswith('"') else f"{prefix}{quoted}"


def _binary_diff(quoted: str, st_mode: int) -> str:
    mode = "100755" if st_mode & 0o111 else "100644"
    a, b = _prefixed("a/", quoted), _prefixed("b/", quoted)
    return f"diff --git {a} {b}\nnew file mode {mode}\nBinary files /dev/null and {b} differ\n"


def _text_diff(quoted: str, mode: str, data: bytes, *, newline: bool) -> str:
    a, b = _prefixed("a/", quoted), _prefixed("b/", quoted)
    head = f"diff --git {a} {b}\nnew file mode {mode}\n"
    if not data:
        return head
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    if lines[-1] == "":
        lines.pop()
    body = "".join(f"+{line}\n" for line in lines)
    tail = "" if newline else "\\ No newline at end of file\n"
    return f"{head}--- /dev/null\n+++ {b}\n@@ -0,0 +1,{len(lines)} @@\n{body}{tail}"
