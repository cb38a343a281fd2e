"""`agenthq new NAME --template T`: a ready plan file to start from."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from agenthq.errors import InputError

TEMPLATES = ("nightly-maintenance", "fan-out-review", "migration-with-signoff")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def register(app: typer.Typer) -> None:
    app.command("new")(new)


def new(
    name: Annotated[str, typer.Argument(help="The plan's name; the file is NAME.yaml.")],
    template: Annotated[
        str, typer.Option("--template", "-t", help=f"One of: {', '.join(TEMPLATES)}.")
    ] = "nightly-maintenance",
    directory: Annotated[Path, typer.Option("--dir", help="Where to write it.")] = Path(),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a ready plan file from a template; `agenthq validate` it, then run it."""
    if template not in TEMPLATES:
        raise InputError(f"no template {template!r}; choose one of {', '.join(TEMPLATES)}")
    if not _NAME.match(name):
        raise InputError(
            f"invalid plan name {name!r}: use letters, digits, '_' and '-', starting with a letter"
        )
    target = directory / f"{name}.yaml"
    if target.exists() and not force:
        raise InputError(f"{target} already exists; pick another name or pass --force")
    text = resources.files("agenthq.plan_templates").joinpath(f"{template}.yaml").read_text()
    text = re.sub(r"^name: NAME$", f"name: {name}", text, count=1, flags=re.MULTILINE)
    text = text.replace("NAME.yaml", f"{name}.yaml")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {target}: {exc.strerror}") from None
    print(f"wrote {target} from the {template} template")
    print(f"next: agenthq validate {target} && agenthq run {target}")
