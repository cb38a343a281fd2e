"""Settings from the environment and agenthq.toml: the spawner switch, read at the edges."""

from __future__ import annotations

from pathlib import Path

import pytest

from agenthq.config import load_settings
from agenthq.errors import ConfigError


def test_the_spawner_is_on_unless_switched_off(tmp_path: Path) -> None:
    assert load_settings(tmp_path, {}).spawner is True
    for off in ("0", "off", "FALSE", " no "):
        assert load_settings(tmp_path, {"AGENTHQ_SPAWNER": off}).spawner is False
    (tmp_path / "agenthq.toml").write_text("[agenthq]\nspawner = false\n")
    assert load_settings(tmp_path, {}).spawner is False
    assert load_settings(tmp_path, {"AGENTHQ_SPAWNER": "on"}).spawner is True  # env wins


@pytest.mark.parametrize(
    ("environ", "toml", "message"),
    [
        ({"AGENTHQ_SPAWNER": "maybe"}, "", "AGENTHQ_SPAWNER must be on or off, got 'maybe'"),
        ({}, 'spawner = "off"\n', "spawner in agenthq.toml must be true or false, got 'off'"),
    ],
)
def test_a_bad_spawner_setting_says_what_to_write(
    tmp_path: Path, environ: dict[str, str], toml: str, message: str
) -> None:
    (tmp_path / "agenthq.toml").write_text(f"[agenthq]\n{toml}")
    with pytest.raises(ConfigError) as raised:
        load_settings(tmp_path, environ)
    assert message in str(raised.value)
