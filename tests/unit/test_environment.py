"""A step's environment: the runner's, minus agenthq's own settings, plus the plan's `env:`."""

from __future__ import annotations

from agenthq.executors.environment import step_environment


def test_agenthq_settings_are_removed() -> None:
    environ = {
        "PATH": "/usr/bin",
        "AGENTHQ_DB_URL": "postgresql://u:p@h/db",
        "AGENTHQ_HOME": "/srv/agenthq",
        "AGENTHQ_TOKEN": "t0ken",
        "agenthq_home": "/lowercase/too",
        "MY_AGENTHQ_NOTE": "not a setting: the prefix is what counts",
    }
    env = step_environment(environ, {})
    assert env == {
        "PATH": "/usr/bin",
        "MY_AGENTHQ_NOTE": "not a setting: the prefix is what counts",
    }


def test_extra_is_added_and_wins() -> None:
    env = step_environment({"PATH": "/usr/bin", "CI": "0"}, {"CI": "1", "LANG": "C.UTF-8"})
    assert env == {"PATH": "/usr/bin", "CI": "1", "LANG": "C.UTF-8"}


def test_inputs_are_not_changed() -> None:
    environ = {"AGENTHQ_HOME": "/h", "A": "1"}
    extra = {"B": "2"}
    env = step_environment(environ, extra)
    env["C"] = "3"
    assert environ == {"AGENTHQ_HOME": "/h", "A": "1"}
    assert extra == {"B": "2"}


def test_a_step_learns_where_the_store_is_but_never_its_password() -> None:
    from agenthq.executors.environment import store_location

    assert store_location("postgresql+psycopg://bob:s3cret@db:5432/hq") == (
        "postgresql+psycopg://bob@db:5432/hq"
    )
    assert store_location("sqlite:////tmp/x/agenthq.db") == "sqlite:////tmp/x/agenthq.db"
