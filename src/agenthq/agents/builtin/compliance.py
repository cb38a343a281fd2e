"""`compliance-checker`: is there a licence we recognise, and are the licences of the
project's declared dependencies (read from their installed metadata) ones we allow?

Dependencies come from pyproject.toml (`[project] dependencies` and optional ones) and
requirements*.txt. A dependency that is not installed, or whose licence cannot be read, is
reported as unknown; `fail_on_unknown` decides whether that fails the step.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

from agenthq.agents.builtin._findings import Finding, report
from agenthq.agents.builtin._workspace import (
    Context,
    inside,
    log,
    read_text,
    relative,
    workspace_of,
)
from agenthq.errors import InputError

DEFAULT_ALLOW = (
    "MIT",
    "MIT-0",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "0BSD",
    "Apache-2.0",
    "ISC",
    "PSF-2.0",
    "Python-2.0",
    "MPL-2.0",
    "LGPL-2.1",
    "LGPL-3.0",
    "Unlicense",
    "CC0-1.0",
    "Zlib",
    "HPND",
)
_LICENSE_FILES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "COPYING", "COPYING.txt")
# (SPDX id, every phrase it must contain), most specific first.
_TEXTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("AGPL-3.0", ("GNU AFFERO GENERAL PUBLIC LICENSE", "Version 3")),
    ("LGPL-3.0", ("GNU LESSER GENERAL PUBLIC LICENSE", "Version 3")),
    ("LGPL-2.1", ("GNU LESSER GENERAL PUBLIC LICENSE", "Version 2.1")),
    ("GPL-3.0", ("GNU GENERAL PUBLIC LICENSE", "Version 3")),
    ("GPL-2.0", ("GNU GENERAL PUBLIC LICENSE", "Version 2")),
    ("Apache-2.0", ("Apache License", "Version 2.0")),
    ("MPL-2.0", ("Mozilla Public License", "2.0")),
    ("BSD-3-Clause", ("Redistribution and use in source and binary forms", "Neither the name")),
    ("BSD-2-Clause", ("Redistribution and use in source and binary forms",)),
    ("ISC", ("Permission to use, copy, modify, and/or distribute this software",)),
    ("MIT", ("Permission is hereby granted, free of charge",)),
    ("Unlicense", ("This is free and unencumbered software released into the public domain",)),
)
# Trove classifiers and free-text License fields → SPDX ids.
_ALIASES = {
    "mit license": "MIT",
    "mit": "MIT",
    "bsd license": "BSD-3-Clause",
    "bsd": "BSD-3-Clause",
    "new bsd": "BSD-3-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "bsd 3-clause": "BSD-3-Clause",
    "simplified bsd": "BSD-2-Clause",
    "bsd-2-clause": "BSD-2-Clause",
    "apache software license": "Apache-2.0",
    "apache 2.0": "Apache-2.0",
    "apache-2.0": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "isc license (iscl)": "ISC",
    "isc": "ISC",
    "python software foundation license": "PSF-2.0",
    "psf": "PSF-2.0",
    "mozilla public license 2.0 (mpl 2.0)": "MPL-2.0",
    "mpl-2.0": "MPL-2.0",
    "gnu general public license v3 (gplv3)": "GPL-3.0",
    "gnu general public license v2 (gplv2)": "GPL-2.0",
    "gnu lesser general public license v3 (lgplv3)": "LGPL-3.0",
    "gnu lesser general public license v2 or later (lgplv2+)": "LGPL-2.1",
    "gnu affero general public license v3": "AGPL-3.0",
    "the unlicense (unlicense)": "Unlicense",
    "historical permission notice and disclaimer (hpnd)": "HPND",
}
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def check(
    path: str = ".",
    *,
    allow: list[str] | None = None,
    require_license: bool = True,
    fail_on_unknown: bool = False,
    ctx: Context | None = None,
) -> dict[str, Any]:
    """Outputs `license` (the project's, or None), `dependencies` ({name: licence}), findings."""
    root = inside(ctx, path)
    if not root.is_dir():
        raise InputError(f"{path!r} is not a directory")
    workspace = workspace_of(ctx)
    allowed = {a.lower() for a in (allow if allow is not None else DEFAULT_ALLOW)}
    findings: list[Finding] = []
    project_license, license_file = _project_license(root)
    where = relative(license_file, workspace) if license_file else relative(root, workspace)
    if license_file is None:
        if require_license:
            findings.append(
                Finding(
                    where,
                    0,
                    "compliance",
                    "no-license",
                    "high",
                    "no LICENSE or COPYING file: others may not use this code",
                )
            )
    elif project_license is None:
        findings.append(
            Finding(
                where,
                1,
                "compliance",
                "unknown-license",
                "medium",
                "the LICENSE text is not one agenthq recognises",
            )
        )
    dependencies: dict[str, str] = {}
    for name, source in _declared(root):
        licence = _installed_license(name)
        dependencies[name] = licence or "unknown"
        at = relative(source, workspace)
        if licence is None:
            findings.append(
                Finding(
                    at,
                    0,
                    "compliance",
                    "unknown-dependency-license",
                    "high" if fail_on_unknown else "low",
                    f"{name}: not installed or no licence in its metadata",
                )
            )
        elif not _allowed(licence, allowed):
            findings.append(
                Finding(
                    at,
                    0,
                    "compliance",
                    "license-not-allowed",
                    "high",
                    f"{name} is licensed {licence}, outside the allow-list",
                )
            )
    log(
        ctx,
        f"compliance-checker: licence {project_license or 'none recognised'}, "
        f"{len(dependencies)} dependencies",
    )
    outputs = report(ctx, "compliance-checker", findings, "high")
    return {**outputs, "license": project_license, "dependencies": dependencies}


def _allowed(expression: str, allowed: set[str]) -> bool:
    """An SPDX expression is allowed when one of its OR alternatives has every AND part
    allowed (`Apache-2.0 AND BSD-2-Clause`, `MIT OR GPL-2.0`)."""
    for alternative in re.split(r"\s+OR\s+", expression.replace("(", " ").replace(")", " ")):
        parts = [p.strip().lower() for p in re.split(r"\s+AND\s+", alternative) if p.strip()]
        if parts and all(p in allowed for p in parts):
            return True
    return False


def _project_license(root: Path) -> tuple[str | None, Path | None]:
    for name in _LICENSE_FILES:
        file = root / name
        if file.is_file():
            text = " ".join((read_text(file) or "").split())
            for spdx, phrases in _TEXTS:
                if all(p in text for p in phrases):
                    return spdx, file
            return None, file
    return None, None


def _declared(root: Path) -> list[tuple[str, Path]]:
    found: dict[str, Path] = {}
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{pyproject}: not valid TOML: {exc}") from None
        project = data.get("project", {})
        requirements = list(project.get("dependencies", []))
        for extra in project.get("optional-dependencies", {}).values():
            requirements += list(extra)
        for requirement in requirements:
            name = _requirement_name(requirement)
            if name and name.lower() != str(project.get("name", "")).lower():
                found.setdefault(name, pyproject)
    for req_file in sorted(root.glob("requirements*.txt")):
        for raw in (read_text(req_file) or "").splitlines():
            line = raw.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                name = _requirement_name(line)
                if name:
                    found.setdefault(name, req_file)
    return sorted(found.items())


def _requirement_name(text: str) -> str | None:
    match = _NAME.match(text)
    return match.group(1) if match else None


def _installed_license(name: str) -> str | None:
    try:
        meta = metadata.metadata(name)
    except metadata.PackageNotFoundError:
        return None
    fields: dict[str, Any] = dict(meta.json)
    expression = fields.get("license_expression")
    if isinstance(expression, str) and expression:
        return expression
    classifiers = fields.get("classifier") or []
    for classifier in classifiers if isinstance(classifiers, list) else [classifiers]:
        if str(classifier).startswith("License :: "):
            label = str(classifier).rsplit("::", 1)[-1].strip()
            if label.lower() not in ("osi approved", "dfsg approved", "other/proprietary license"):
                return _ALIASES.get(label.lower(), label)
    free = str(fields.get("license") or "").strip()
    if free and len(free) < 100:
        return _ALIASES.get(free.lower(), free)
    if free:
        flat = " ".join(free.split())
        for spdx, phrases in _TEXTS:
            if all(p in flat for p in phrases):
                return spdx
    return None
