"""`code-reviewer`: what a careful reviewer flags before reading the logic.

Cyclomatic complexity (radon), long functions, TODO/FIXME counts, `eval`/`exec`, SQL built
from strings and passed to `execute`, and `innerHTML` assignments. Python is read with `ast`
(so a string mentioning eval is not a call to it); JavaScript, TypeScript and HTML by pattern.
Report-only unless `fail_on` names a severity.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from typing import Any

from agenthq.agents.builtin._findings import Finding, report, threshold
from agenthq.agents.builtin._workspace import (
    Context,
    files_under,
    inside,
    log,
    read_text,
    relative,
    workspace_of,
)

_CODE = (".py", ".js", ".jsx", ".ts", ".tsx", ".html", ".htm", ".go", ".rs", ".java", ".rb", ".sh")
_MARKER = re.compile(r"(?:#|//|/\*|<!--|--)\s*(TODO|FIXME|XXX|HACK)\b", re.IGNORECASE)
_INNER_HTML = re.compile(r"\.(?:inner|outer)HTML\s*(?:\+)?=(?!=)")
_SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE|MERGE|DROP|ALTER)\b", re.IGNORECASE)
_EXECUTORS = frozenset({"execute", "executemany", "executescript", "raw", "text", "query"})


def review(
    path: str = ".",
    *,
    max_complexity: int = 10,
    max_function_lines: int = 60,
    fail_on: str | None = None,
    exclude: Sequence[str] = (),
    ctx: Context | None = None,
) -> dict[str, Any]:
    """Review `path`; outputs `findings`, `counts`, `total` and `todo` (markers by kind)."""
    level = threshold(fail_on, name="fail_on")
    workspace = workspace_of(ctx)
    files = files_under(inside(ctx, path), workspace, exclude=exclude, suffixes=_CODE)
    findings: list[Finding] = []
    todo: dict[str, int] = {}
    for file in files:
        text = read_text(file)
        if text is None:
            continue
        name = relative(file, workspace)
        for number, line in enumerate(text.splitlines(), 1):
            marker = _MARKER.search(line)
            if marker:
                kind = marker.group(1).upper()
                todo[kind] = todo.get(kind, 0) + 1
                findings.append(Finding(name, number, "review", kind, "info", line.strip()[:200]))
            if file.suffix in (
                ".js",
                ".jsx",
                ".ts",
                ".tsx",
                ".html",
                ".htm",
            ) and _INNER_HTML.search(line):
                findings.append(
                    Finding(
                        name,
                        number,
                        "review",
                        "innerHTML",
                        "medium",
                        "assigning innerHTML can inject script; use textContent or the DOM",
                    )
                )
        if file.suffix == ".py":
            findings += _python(text, name, max_complexity, max_function_lines)
    log(ctx, f"code-reviewer: {len(files)} file(s)")
    outputs = report(ctx, "code-reviewer", findings, level)
    return {**outputs, "todo": todo, "files": len(files)}


def _python(text: str, name: str, max_complexity: int, max_lines: int) -> list[Finding]:
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        return [
            Finding(name, exc.lineno or 0, "review", "syntax", "high", f"does not parse: {exc.msg}")
        ]
    found: list[Finding] = []
    from radon.complexity import cc_visit

    for block in cc_visit(text):
        if block.complexity > max_complexity:
            severity = "high" if block.complexity > 2 * max_complexity else "medium"
            found.append(
                Finding(
                    name,
                    block.lineno,
                    "radon",
                    "complexity",
                    severity,
                    f"{block.name} has cyclomatic complexity {block.complexity} "
                    f"(limit {max_complexity})",
                )
            )
    # Names bound to SQL built from strings: `q = "SELECT …" + x` then `execute(q)`.
    built = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and _built_sql(node.value)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > max_lines:
                found.append(
                    Finding(
                        name,
                        node.lineno,
                        "review",
                        "long-function",
                        "low",
                        f"{node.name} is {length} lines long (limit {max_lines})",
                    )
                )
        elif isinstance(node, ast.Call):
            found += _call(node, name, built)
    return found


def _call(node: ast.Call, name: str, built: set[str]) -> list[Finding]:
    func = node.func
    if isinstance(func, ast.Name) and func.id in ("eval", "exec"):
        return [
            Finding(
                name,
                node.lineno,
                "review",
                func.id,
                "high",
                f"{func.id}() runs arbitrary code; parse the input instead",
            )
        ]
    called = (
        func.attr
        if isinstance(func, ast.Attribute)
        else func.id
        if isinstance(func, ast.Name)
        else ""
    )
    first = node.args[0] if node.args else None
    spliced = first is not None and (
        _built_sql(first) or (isinstance(first, ast.Name) and first.id in built)
    )
    if called in _EXECUTORS and spliced:
        return [
            Finding(
                name,
                node.lineno,
                "review",
                "sql-concatenation",
                "high",
                f"SQL built from strings is passed to {called}(); use parameters",
            )
        ]
    return []


def _built_sql(arg: ast.expr) -> bool:
    """A string expression that splices values into SQL: +, %, .format() or an f-string."""
    if isinstance(arg, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in arg.values) and _sql_text(arg)
    if isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Add | ast.Mod):
        return _sql_text(arg)
    if (
        isinstance(arg, ast.Call)
        and isinstance(arg.func, ast.Attribute)
        and arg.func.attr == "format"
    ):
        return _sql_text(arg.func.value)
    return False


def _sql_text(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Constant) and isinstance(n.value, str) and _SQL.match(n.value)
        for n in ast.walk(node)
    )
