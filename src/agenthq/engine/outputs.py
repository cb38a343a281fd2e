"""Declared outputs (`outputs: {name: {file: …} | {pattern: …}}`), captured after success."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agenthq.spec.models import OutputSpec

MAX_OUTPUT_BYTES = 1 << 20


class OutputCaptureError(Exception):
    """A declared output could not be read; the step fails with the message."""


def capture_outputs(
    declared: Mapping[str, OutputSpec], *, cwd: Path, workspace: Path, stdout_path: Path
) -> dict[str, Any]:
    captured: dict[str, Any] = {}
    stdout_text: str | None = None
    for name, output in declared.items():
        if output.file is not None:
            path = (cwd / output.file).resolve()
            if not path.is_relative_to(workspace.resolve()):
                raise OutputCaptureError(f"output {name!r}: {output.file} is outside the workspace")
            try:
                if path.stat().st_size > MAX_OUTPUT_BYTES:
                    raise OutputCaptureError(f"output {name!r}: {output.file} is over 1 MiB")
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise OutputCaptureError(
                    f"output {name!r}: cannot read {output.file}: {exc.strerror}"
                ) from None
            if output.json_:
                try:
                    captured[name] = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise OutputCaptureError(
                        f"output {name!r}: {output.file} is not JSON: {exc}"
                    ) from None
            else:
                captured[name] = text.strip()
        elif output.pattern is not None:
            if stdout_text is None:
                stdout_text = _tail(stdout_path)
            matches = list(re.finditer(output.pattern, stdout_text, re.MULTILINE))
            if not matches:
                raise OutputCaptureError(
                    f"output {name!r}: pattern {output.pattern!r} not found in stdout"
                )
            last = matches[-1]
            captured[name] = last.group(1) if last.groups() else last.group(0)
    return captured


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - MAX_OUTPUT_BYTES))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
