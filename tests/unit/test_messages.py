"""The message bus on a real SQLite file: send, inbox, read, conversation, retention,
idempotence on dedupe_key — under concurrent threads and processes, with no message lost or
stored twice and the audit chain intact."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import agenthq
from agenthq import messages
from agenthq.errors import InputError
from agenthq.events.audit import verify_chain
from agenthq.store.api import Store

AGENTHQ = str(Path(sys.executable).parent / "agenthq")


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'agenthq.db'}"


@pytest.fixture
def store(db: str) -> Iterator[Store]:
    with agenthq.open_store(db) as opened:
        yield opened


def test_send_inbox_read_and_conversation(store: Store) -> None:
    first, new = messages.send(store, "reviewer", "coder", "fix line 3", subject="review")
    assert new
    messages.send(store, "coder", "reviewer", "done")
    messages.send(store, "planner", "coder", "also docs")
    unread = messages.inbox(store, "coder")
    assert [(m.sender, m.body) for m in unread] == [
        ("reviewer", "fix line 3"),
        ("planner", "also docs"),
    ]
    assert unread[0].subject == "review"
    assert messages.mark_read(store, [first]) == 1
    assert [m.body for m in messages.inbox(store, "coder")] == ["also docs"]
    assert len(messages.inbox(store, "coder", unread=False)) == 2
    talk = messages.conversation(store, "coder", "reviewer")
    assert [m.body for m in talk] == ["fix line 3", "done"]
    assert messages.mark_read(store, agent="coder") == 1
    assert messages.inbox(store, "coder") == []


def test_sending_twice_with_one_dedupe_key_stores_it_once(store: Store) -> None:
    a = messages.send(store, "ci", "coder", "build broke", dedupe_key="build-41")
    b = messages.send(store, "ci", "coder", "build broke", dedupe_key="build-41")
    assert a == (a[0], True)
    assert b == (a[0], False)
    assert len(messages.inbox(store, "coder")) == 1


def test_retention_prunes_only_read_messages(store: Store) -> None:
    kept, _ = messages.send(store, "a", "b", "unread, old")
    read, _ = messages.send(store, "a", "b", "read, old")
    store.mark_read(ids=[read], at=time.time() - 40 * 86400)
    assert messages.prune(store, older_than_days=30) == 1
    assert [m.id for m in messages.inbox(store, "b", unread=False)] == [kept]


@pytest.mark.parametrize(
    ("sender", "recipient", "body", "hint"),
    [
        ("a", "b", "   ", "needs a body"),
        ("a b", "b", "hi", "invalid sender"),
        ("a", "", "hi", "invalid recipient"),
        ("a", "b", "x" * (65 * 1024), "at most 64 KiB"),
    ],
)
def test_bad_messages_are_refused_with_a_reason(
    store: Store, sender: str, recipient: str, body: str, hint: str
) -> None:
    with pytest.raises(InputError, match=hint):
        messages.send(store, sender, recipient, body)


def test_concurrent_threads_lose_nothing_and_duplicate_nothing(db: str) -> None:
    stores = [agenthq.open_store(db) for _ in range(8)]
    errors: list[BaseException] = []

    def sender(n: int) -> None:
        try:
            for i in range(50):
                key = f"shared-{i}" if i % 5 == 0 else None  # every thread races for these
                messages.send(stores[n], f"t{n}", "sink", f"{n}:{i}", dedupe_key=key)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    got = messages.inbox(stores[0], "sink", limit=10_000)
    bodies = [m.body for m in got]
    assert len(bodies) == len(set(bodies))
    unique = [b for b in bodies if int(b.split(":")[1]) % 5 != 0]
    assert len(unique) == 8 * 40  # every message without a key arrived once
    assert len(got) - len(unique) == 10  # each shared key stored exactly once
    assert verify_chain(stores[0]).intact
    for s in stores:
        s.close()


def test_concurrent_processes_lose_nothing_and_duplicate_nothing(db: str, tmp_path: Path) -> None:
    env = {**os.environ, "AGENTHQ_DB_URL": db, "AGENTHQ_HOME": str(tmp_path / ".agenthq")}
    script = (
        "import sys, agenthq\n"
        "from agenthq import messages\n"
        "n = sys.argv[1]\n"
        "with agenthq.open_store(sys.argv[2]) as s:\n"
        "    for i in range(25):\n"
        "        key = f'k{i}' if i % 5 == 0 else None\n"
        "        messages.send(s, 'p' + n, 'sink', f'{n}:{i}', dedupe_key=key)\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(n), db], env=env) for n in range(4)
    ]
    cli = subprocess.run(
        [AGENTHQ, "msg", "send", "sink", "from the cli", "--from", "human", "--dedupe-key", "k0"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    assert cli.returncode == 0, cli.stderr
    with agenthq.open_store(db) as store:
        got = messages.inbox(store, "sink", limit=10_000)
        bodies = [m.body for m in got]
        assert len(bodies) == len(set(bodies))
        assert sum(1 for b in bodies if ":" in b and int(b.split(":")[1]) % 5 != 0) == 4 * 20
        assert len(got) == 4 * 20 + 5  # k0..k20: five keys, each once, whoever won
        assert verify_chain(store).intact
