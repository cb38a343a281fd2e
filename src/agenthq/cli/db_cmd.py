"""`agenthq db upgrade` and `agenthq db check`: the database behind AGENTHQ_DB_URL (or
`.agenthq/agenthq.db`), made current or diagnosed without touching it."""

from __future__ import annotations

import typer

from agenthq.cli import common

db_app = typer.Typer(help="The database: bring its schema to this version, or check it.")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade() -> None:
    """Create the schema, or migrate it to this agenthq's version (safe to repeat)."""
    from agenthq.store import HEAD_REVISION, open_store

    config = common.settings()
    with open_store(config.db_url):
        pass
    print(f"{common.shown_url(config.db_url)} is at schema {HEAD_REVISION}")


@db_app.command("check")
def check() -> None:
    """Say in one sentence what is wrong with the database (cannot connect, wrong version,
    not migrated); exit 1 then. Changes nothing."""
    from agenthq.store import HEAD_REVISION, check_database

    config = common.settings()
    problem = check_database(config.db_url)
    if problem is not None:
        print(problem)
        raise typer.Exit(1)
    print(f"{common.shown_url(config.db_url)}: reachable, at schema {HEAD_REVISION}")
