"""The environment a step starts with.

A step inherits the runner's environment (PATH, HOME, proxies, tool settings) but never
agenthq's own settings as the runner got them: `AGENTHQ_DB_URL` may carry a database password,
and a server token would let a step act as its operator. What a step is given instead is set
by the engine: its run, step, attempt and agent, and where the store is (`AGENTHQ_HOME`, and
`AGENTHQ_DB_URL` without any password, see `store_location`) so it can use `agenthq msg`.
"""

from __future__ import annotations

from collections.abc import Mapping

SETTINGS_PREFIX = "AGENTHQ_"


def step_environment(environ: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """`environ` without any `AGENTHQ_*` setting, then `extra` (the plan's own `env:`) on top.

    `extra` is applied as written: a plan that sets an `AGENTHQ_*` variable chose to.
    """
    env = {key: value for key, value in environ.items() if not _is_setting(key)}
    env.update(extra)
    return env


def _is_setting(name: str) -> bool:
    return name.upper().startswith(SETTINGS_PREFIX)


def store_location(url: str) -> str:
    """The database URL with any password removed: a step may reach the store (the message
    bus), it may not learn a secret (PostgreSQL steps authenticate with ~/.pgpass)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed._replace(password=None).render_as_string(hide_password=False)
