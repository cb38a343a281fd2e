"""Settings from the environment and `agenthq.toml`, read once at the edges (CLI, server).

Precedence, highest first: command-line flags (applied by the caller), `AGENTHQ_*` variables,
`agenthq.toml` in the project directory, defaults. The engine never reads settings itself;
it is handed values, which keeps it testable and free of hidden global state.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agenthq.errors import ConfigError

CONFIG_FILE = "agenthq.toml"
_KNOWN = {"home", "db_url", "max_workers", "spawner"}
_ON = {"1", "true", "yes", "on"}
_OFF = {"0", "false", "no", "off"}
# Tables read by other layers (the gates, the agents); config only checks they are tables.
_TABLES = (
    "agenthq",
    "policy",
    "gates",
    "approvals",
    "budgets",
    "breaker",
    "agents",
    "alerts",
    "workers",
    "model",
)


@dataclass(frozen=True)
class Settings:
    project_dir: Path
    home: Path  # .agenthq/ by default: the database, logs and the server token live here
    db_url: str
    max_workers: int | None
    tables: Mapping[str, Any] = field(default_factory=dict)  # the other tables of agenthq.toml
    spawner: bool = True  # shell steps start from the spawner helper (executors/spawner.py)

    @property
    def config_file(self) -> Path:
        return self.project_dir / CONFIG_FILE

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"


def load_settings(
    project_dir: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    env = os.environ if environ is None else environ
    project = (project_dir or Path.cwd()).resolve()
    tables = _read_toml(project / CONFIG_FILE)
    file_values = tables.get("agenthq", {})
    home_text = env.get("AGENTHQ_HOME") or file_values.get("home") or ".agenthq"
    home = (project / str(home_text)).resolve()
    db_url = (
        env.get("AGENTHQ_DB_URL") or file_values.get("db_url") or f"sqlite:///{home / 'agenthq.db'}"
    )
    workers_raw = env.get("AGENTHQ_MAX_WORKERS") or file_values.get("max_workers")
    max_workers: int | None = None
    if workers_raw is not None:
        try:
            max_workers = int(workers_raw)
        except (TypeError, ValueError):
            raise ConfigError(f"max_workers must be a whole number, got {workers_raw!r}") from None
        if max_workers < 1:
            raise ConfigError(f"max_workers must be at least 1, got {max_workers}")
    return Settings(
        project_dir=project,
        home=home,
        db_url=str(db_url),
        max_workers=max_workers,
        tables={k: v for k, v in tables.items() if k != "agenthq"},
        spawner=_spawner(env.get("AGENTHQ_SPAWNER"), file_values.get("spawner", True)),
    )


def _spawner(from_env: str | None, from_file: object) -> bool:
    if from_env is not None and from_env.strip():
        text = from_env.strip().lower()
        if text in _ON | _OFF:
            return text in _ON
        raise ConfigError(f"AGENTHQ_SPAWNER must be on or off, got {from_env!r}")
    if not isinstance(from_file, bool):
        raise ConfigError(
            f"[agenthq] spawner in {CONFIG_FILE} must be true or false, got {from_file!r}"
        )
    return from_file


def _read_toml(path: Path) -> dict[str, Any]:
    """The file's tables, each checked to be a table; unknown tables are errors (a typo in
    `[polcy]` must not silently drop the project's rules)."""
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    for name, value in data.items():
        if name not in _TABLES:
            from difflib import get_close_matches

            close = get_close_matches(name, _TABLES, n=1)
            hint = f" (did you mean [{close[0]}]?)" if close else ""
            raise ConfigError(
                f"{path}: unknown table [{name}]{hint}; known tables: {', '.join(_TABLES)}"
            )
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: [{name}] must be a table")
    unknown = set(data.get("agenthq", {})) - _KNOWN
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) in [agenthq]: {', '.join(sorted(unknown))}")
    return data
