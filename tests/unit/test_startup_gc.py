"""The collector while the `agenthq` command sets up (cli/startup_gc.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from agenthq.cli import startup_gc


@pytest.fixture
def armed() -> Iterator[None]:
    startup_gc.arm()
    try:
        yield
    finally:
        startup_gc._armed = False
        gc.unfreeze()  # this test process keeps collecting everything, as before
        gc.enable()


def test_unarmed_it_changes_nothing() -> None:
    frozen = gc.get_freeze_count()
    with startup_gc.setting_up():
        assert gc.isenabled()
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


@pytest.mark.usefixtures("armed")
def test_armed_it_builds_without_collecting_then_freezes_and_collects_again() -> None:
    with startup_gc.setting_up():
        assert not gc.isenabled()
        built = [[n] for n in range(1000)]
        with startup_gc.setting_up():  # an inner block leaves it all to the outer one
            pass
        assert not gc.isenabled()
        assert gc.get_freeze_count() == 0
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(built)


@pytest.mark.usefixtures("armed")
def test_the_collector_comes_back_when_setting_up_fails() -> None:
    with pytest.raises(RuntimeError), startup_gc.setting_up():
        raise RuntimeError("a bad plan")
    assert gc.isenabled()
