"""YAML plan file → PlanSpec, remembering where every value came from.

PyYAML's `safe_load` forgets positions, so the loader composes the node tree itself and
records the line and column of each value and key in a SourceMap. Every later error (bad
field, unknown need, cycle) can then name `file:line:column`. Pydantic's errors are turned
into one PlanError that lists every problem at once, worded for the person who wrote the plan.
"""

from __future__ import annotations

import difflib
import functools
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from agenthq.errors import InputError, PlanError, Problem
from agenthq.spec.durations import DURATION_HINT
from agenthq.spec.models import PlanSpec
from agenthq.spec.source_map import Path as SpecPath
from agenthq.spec.source_map import SourceMap

# The C parser is several times faster on big plans; positions are the same.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# Aliases are expanded into plain data; nested ones could otherwise multiply a small file
# into billions of values ("billion laughs").
_MAX_VALUES = 1_000_000
_QUOTE_HINT = 'a value that starts with `{{` must be quoted: run: "{{ params.x }} …"'


@dataclass(frozen=True)
class LoadedPlan:
    """A validated plan and, when it came from a file, where each of its values is written."""

    spec: PlanSpec
    source: SourceMap | None
    path: Path | None


def load_plan(path: str | Path) -> LoadedPlan:
    """Read, parse and validate one plan file; PlanError/InputError for anything wrong."""
    loaded = load_plan_text(_read_text(Path(path)), name=str(path))
    return LoadedPlan(loaded.spec, loaded.source, Path(path))


def load_plan_text(text: str, *, name: str = "<plan>") -> LoadedPlan:
    """Parse and validate plan YAML given as text (the API's request bodies); `name` stands
    for the file in messages."""
    file = name
    root = _compose(text, file)
    if root is None:
        raise PlanError([Problem("the plan file is empty", file, hint="start with `name:`")])
    if not isinstance(root, yaml.MappingNode) or root.tag != _MAP_TAG:
        line, column = _mark(root)
        got = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
        raise PlanError(
            [
                Problem(
                    f"a plan must be a mapping at the top level, got {got}",
                    file,
                    line,
                    column,
                    "start with `name:` and `steps:` at the left margin",
                )
            ]
        )
    source = SourceMap(file)
    try:
        data = _Converter(source).convert(root, ())
    except RecursionError:
        raise PlanError([_too_deep(file)]) from None
    return LoadedPlan(spec_from_data(data, file=file, source=source), source, None)


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"plan file not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory, not a plan file") from None
    except PermissionError:
        raise InputError(f"cannot read plan file {path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"cannot read plan file {path}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save the plan as UTF-8"
        ) from None


def _compose(text: str, file: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        if "nesting depth" in str(exc.problem or ""):  # PyYAML ≥ 6.0.4 limits depth itself
            raise PlanError([_too_deep(file)]) from None
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        message = f"invalid YAML: {exc.problem or exc.context}"
        if exc.problem and exc.context:
            message += f" ({exc.context})"
        lines = text.splitlines()
        source_line = lines[line - 1] if line is not None and line <= len(lines) else ""
        hint = _syntax_hint(message, source_line)
        raise PlanError([Problem(message, file, line, column, hint)]) from None
    except RecursionError:
        raise PlanError([_too_deep(file)]) from None
    except yaml.YAMLError as exc:  # reader errors: characters YAML does not allow
        position = getattr(exc, "position", None)
        line = column = None
        if isinstance(position, int):
            line = text.count("\n", 0, position) + 1
            column = position - text.rfind("\n", 0, position)
        first = str(exc).splitlines()[0]  # the rest names "<unicode string>", not the file
        raise PlanError([Problem(f"invalid YAML: {first}", file, line, column)]) from None


def _too_deep(file: str) -> Problem:
    return Problem("the plan nests lists and mappings too deeply to read", file)


def _syntax_hint(message: str, source_line: str) -> str:
    """The likeliest fix for the mistakes people make most often in YAML."""
    if "\t" in source_line or "'\\t'" in message:
        return "YAML indents with spaces, not tabs"
    if "{{" in source_line and not re.search(r"""['"]\s*\{\{""", source_line):
        return _QUOTE_HINT
    if "another document" in message:
        return "a plan file holds one YAML document; remove the `---` line"
    if "mapping values are not allowed" in message:
        return 'a value containing ": " must be quoted'
    return "check the indentation and the quoting on this line and the one before"


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Converter:
    """Turns composed YAML nodes into plain data, filling the SourceMap on the way."""

    def __init__(self, source: SourceMap) -> None:
        self.source = source
        self.scalars = yaml.constructor.SafeConstructor()
        self.active: set[int] = set()  # nodes being converted, to catch recursive aliases
        self.budget = _MAX_VALUES

    def fail(self, node: yaml.Node, message: str, hint: str | None = None) -> PlanError:
        line, column = _mark(node)
        return PlanError([Problem(message, self.source.file, line, column, hint)])

    def convert(self, node: yaml.Node, path: SpecPath) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise self.fail(
                node,
                f"the plan expands to more than {_MAX_VALUES:,} values",
                "each use of a YAML alias (`*name`) copies what it names",
            )
        self.source.values[path] = _mark(node)
        if isinstance(node, yaml.ScalarNode):
            try:
                return self.scalars.construct_object(node, deep=True)
            except yaml.YAMLError as exc:
                problem = getattr(exc, "problem", None) or str(exc)
                raise self.fail(node, f"invalid YAML value: {problem}") from None
        if id(node) in self.active:
            raise self.fail(node, "a YAML alias refers to itself; plans must be finite")
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ_TAG:
                return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode) and node.tag == _MAP_TAG:
                return self.mapping(node, path)
            raise self.fail(node, f"unsupported YAML tag {node.tag!r}", "remove the `!tag`")
        finally:
            self.active.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: SpecPath) -> dict[Any, Any]:
        # Merged keys (`<<: *defaults`) go in first, so keys written here override them,
        # values and positions alike, as safe_load would.
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                result.update(self.merged(value_node, path))
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.key(key_node)
            if key in first_line:
                raise self.fail(
                    key_node,
                    f"duplicate key `{key}` (first on line {first_line[key]})",
                    "a key may appear once in a mapping; YAML would silently keep only the last",
                )
            first_line[key] = _mark(key_node)[0]
            self.source.keys[(*path, key)] = _mark(key_node)
            result[key] = self.convert(value_node, (*path, key))
        return result

    def key(self, node: yaml.Node) -> str:
        """Keys are names in a plan, kept as written: YAML 1.1 would read `on:` as True."""
        if not isinstance(node, yaml.ScalarNode):
            flow_template = isinstance(node, yaml.MappingNode) and node.flow_style
            hint = _QUOTE_HINT if flow_template else "write keys as plain names"
            raise self.fail(node, "a mapping key must be a plain name", hint)
        return str(node.value)

    def merged(self, node: yaml.Node, path: SpecPath) -> dict[Any, Any]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        combined: dict[Any, Any] = {}
        for source in reversed(sources):  # the first mapping listed wins
            if not isinstance(source, yaml.MappingNode):
                raise self.fail(source, "`<<` merges only mappings (`<<: *anchor`)")
            combined.update(self.mapping(source, path))
        return combined


def spec_from_data(data: Any, *, file: str, source: SourceMap | None = None) -> PlanSpec:
    """Validate plain data as a plan; one PlanError names every problem, located if we can."""
    try:
        return PlanSpec.model_validate(data)
    except ValidationError as exc:
        issues = _collapse_unions([_issue(error, data) for error in exc.errors()])
        problems = [_problem(issue, data, file, source) for issue in issues]
        problems.sort(key=lambda p: (p.line or 0, p.column or 0))
        raise PlanError(problems) from None


@dataclass(frozen=True)
class _Issue:
    """One pydantic error with its location translated to the plan's own keys."""

    kind: str
    path: SpecPath
    message: str
    input: Any
    context: Mapping[str, Any]
    union_at: int | None  # length of `path` where pydantic tried the branches of a union
    on_key: bool  # the error is about a mapping key, not its value


def _issue(error: Any, data: Any) -> _Issue:
    path: list[str | int] = []
    node: Any = data
    union_at: int | None = None
    on_key = False
    for item in error["loc"]:
        if item == "[key]":
            on_key = True
        elif isinstance(node, Mapping) and item in node:
            path.append(item)
            node = node[item]
        elif isinstance(node, Mapping) and item in _aliases() and _aliases()[item] in node:
            path.append(_aliases()[item])
            node = node[path[-1]]
        elif isinstance(node, list | tuple) and isinstance(item, int) and 0 <= item < len(node):
            path.append(item)
            node = node[item]
        elif isinstance(item, str) and item in _field_names():
            path.append(_aliases().get(item, item))  # a missing field
            node = None
        elif union_at is None:  # a union branch tag such as 'list[str]' or 'function-after[…]'
            union_at = len(path)
    message = str(error["msg"]).removeprefix("Value error, ")
    return _Issue(
        str(error["type"]),
        tuple(path),
        message,
        error.get("input"),
        error.get("ctx") or {},
        union_at,
        on_key,
    )


def _collapse_unions(issues: list[_Issue]) -> list[_Issue]:
    """One issue per union instead of one per branch pydantic tried.

    A branch that got past the type check (its errors lie deeper) is the one the author
    meant; when none did, the branches' expected types become one "expected X or Y".
    """
    groups: dict[SpecPath, list[_Issue]] = {}
    result: list[_Issue] = []
    for issue in issues:
        if issue.union_at is None:
            result.append(issue)
        else:
            groups.setdefault(issue.path[: issue.union_at], []).append(issue)
    for at, members in groups.items():
        deeper = [m for m in members if len(m.path) > len(at)]
        if deeper:
            result.extend(deeper)
            continue
        typed = [m for m in members if m.kind in _EXPECTED]
        result.extend(m for m in members if m.kind not in _EXPECTED)
        if typed:
            kinds = list(dict.fromkeys(_EXPECTED[m.kind] for m in typed))
            message = "expected " + " or ".join(kinds)
            result.append(_Issue("union_type", at, message, typed[0].input, {}, None, False))
    return result


# What a type error expected, in the words of the YAML the author writes.
_EXPECTED = {
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}


def _problem(issue: _Issue, data: Any, file: str, source: SourceMap | None) -> Problem:
    owner, rest = _owner(issue.path, data)
    subject, text, hint = _describe(issue, rest)
    if issue.kind == "value_error" and not rest and text.startswith("step "):
        owner = None  # the validator's message already names the step
    message = ": ".join(part for part in (owner, subject, text) if part)
    line = column = None
    if source is not None:
        found = source.locate(issue.path, key=issue.kind == "extra_forbidden" or issue.on_key)
        if found is not None:
            line, column = found
    return Problem(message, file, line, column, hint)


def _owner(path: SpecPath, data: Any) -> tuple[str | None, SpecPath]:
    """`steps[1] (id: test)` for a path inside a step, so people find it by its name."""
    if len(path) < 2 or path[0] != "steps" or not isinstance(path[1], int):
        return None, path
    index = path[1]
    owner = f"steps[{index}]"
    try:
        step_id = data["steps"][index]["id"]
    except (KeyError, IndexError, TypeError):
        step_id = None
    if isinstance(step_id, str):
        owner += f" (id: {step_id})"
    return owner, path[2:]


def _describe(issue: _Issue, rest: SpecPath) -> tuple[str, str, str | None]:
    """(subject, what is wrong, hint) for one issue; `rest` is its path inside the owner."""
    if issue.kind in ("extra_forbidden", "missing"):
        where = f" in `{_dotted(rest[:-1])}`" if len(rest) > 1 else ""
        if issue.kind == "missing":
            return "", f"missing `{rest[-1] if rest else '?'}`{where}", None
        return "", f"unknown key `{rest[-1]}`{where}", _key_hint(issue.path)
    subject = _dotted(rest)
    if issue.on_key and rest:
        subject = f"key `{rest[-1]}` in `{_dotted(rest[:-1])}`" if len(rest) > 1 else ""
    if issue.kind == "too_short" and issue.path == ("steps",):
        return "", "`steps` is empty", "a plan needs at least one step"
    if issue.kind == "value_error":
        text, found, _ = issue.message.partition(f": {DURATION_HINT}")
        return subject, text, DURATION_HINT if found else None
    got = f", got {_describe_value(issue.input)}"
    if issue.kind in ("enum", "literal_error"):
        expected = str(issue.context.get("expected", ""))
        choices = re.findall(r"'([^']*)'", expected)
        return subject, f"expected one of {expected}{got}", _choice_hint(issue, choices)
    if issue.kind in _EXPECTED or issue.kind == "union_type":
        expected = (
            issue.message if issue.kind == "union_type" else f"expected {_EXPECTED[issue.kind]}"
        )
        hint = None
        if issue.kind == "list_type" and isinstance(issue.input, str):
            hint = f"write a list: [{issue.input}]"
        return subject, expected + got, hint
    if issue.kind in _BOUNDS:
        name, words = _BOUNDS[issue.kind]
        return subject, f"must be {words} {issue.context.get(name)}{got}", None
    return subject, issue.message.replace("Input should be", "must be") + got, None


def _dotted(path: SpecPath) -> str:
    text = ""
    for item in path:
        text += f"[{item}]" if isinstance(item, int) else f".{item}"
    return text.lstrip(".")


def _describe_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "…"
        return f"the string {shown!r}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return f"a {type(value).__name__}"


def _choice_hint(issue: _Issue, choices: list[str]) -> str | None:
    if not isinstance(issue.input, str):
        return None
    close = difflib.get_close_matches(issue.input, choices, n=1)
    return f"did you mean {close[0]!r}?" if close else None


def _key_hint(path: SpecPath) -> str | None:
    """Suggest the key the author probably meant, by the names written in plans."""
    model = _model_at(path[:-1])
    if model is None:
        return None
    names = sorted(_public_keys(model))
    close = difflib.get_close_matches(str(path[-1]), names, n=1)
    if close:
        return f"did you mean `{close[0]}`?"
    return f"valid keys here: {', '.join(names)}"


def _public_keys(model: type[BaseModel]) -> dict[str, Any]:
    """Each field under the name a plan writes (`with`, never `with_`), with its type."""
    return {info.alias or name: info.annotation for name, info in model.model_fields.items()}


def _model_at(path: SpecPath) -> type[BaseModel] | None:
    current: Any = PlanSpec
    for item in path:
        current = _child_type(current, item)
    models = [b for b in _branches(current) if isinstance(b, type) and issubclass(b, BaseModel)]
    return models[0] if models else None


def _child_type(annotation: Any, item: str | int) -> Any:
    for branch in _branches(annotation):
        if isinstance(branch, type) and issubclass(branch, BaseModel):
            if str(item) in branch.model_fields:
                return branch.model_fields[str(item)].annotation
            if str(item) in _public_keys(branch):
                return _public_keys(branch)[str(item)]
        elif typing.get_origin(branch) is list and isinstance(item, int):
            return typing.get_args(branch)[0]
        elif typing.get_origin(branch) is dict:
            return typing.get_args(branch)[1]
    return None


def _branches(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _branches(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [b for arg in typing.get_args(annotation) for b in _branches(arg)]
    return [annotation]


@functools.cache
def _all_models() -> tuple[type[BaseModel], ...]:
    found: list[type[BaseModel]] = []
    pending: list[Any] = [PlanSpec]
    while pending:
        annotation = pending.pop()
        for branch in _branches(annotation):
            if isinstance(branch, type) and issubclass(branch, BaseModel):
                if branch not in found:
                    found.append(branch)
                    pending.extend(info.annotation for info in branch.model_fields.values())
            else:
                pending.extend(typing.get_args(branch))
    return tuple(found)


@functools.cache
def _aliases() -> dict[str, str]:
    """Python field name → the key plans write, for fields whose names differ (`with_`)."""
    return {
        name: info.alias
        for model in _all_models()
        for name, info in model.model_fields.items()
        if info.alias is not None
    }


@functools.cache
def _field_names() -> frozenset[str]:
    return frozenset(key for model in _all_models() for key in _public_keys(model)) | frozenset(
        _aliases()
    )


# Pydantic's numeric bounds, said the short way: (the ctx entry holding the limit, words).
_BOUNDS = {
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "more than"),
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
}
