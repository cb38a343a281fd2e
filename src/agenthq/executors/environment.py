"""The environment a step starts with.

A step inherits the runner's environment (PATH, HOME, proxies, tool settings) but never
agenthq's own settings: `AGENTHQ_DB_URL` may carry a database password, `AGENTHQ_HOME` leads to
the store and other runs' logs, and a server token would let a step act as its operator.
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
