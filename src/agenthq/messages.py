"""Durable agent-to-agent messages, kept in the store: the same for a step calling
`agenthq msg send`, the API, and Python.

`send` is idempotent on `dedupe_key`: a step retried after a crash, or two processes racing,
store one message and both get its id. Read messages older than the retention are pruned;
unread ones are never lost.
"""

from __future__ import annotations

import time
from typing import Any

from agenthq.errors import InputError
from agenthq.spec.agents import AGENT_NAME
from agenthq.store.api import MessageRecord, NewMessage, Store

MAX_BODY = 64 * 1024
MAX_SUBJECT = 200
DEFAULT_RETENTION_DAYS = 30.0


def send(
    store: Store,
    sender: str,
    recipient: str,
    body: str,
    *,
    subject: str | None = None,
    dedupe_key: str | None = None,
    run_id: str | None = None,
    step_id: str | None = None,
) -> tuple[int, bool]:
    """(the message's id, whether this call stored it); InputError on a bad field."""
    _name("sender", sender)
    _name("recipient", recipient)
    if not body.strip():
        raise InputError("a message needs a body; say something")
    if len(body.encode("utf-8")) > MAX_BODY:
        raise InputError(
            f"a message body is at most {MAX_BODY // 1024} KiB; send a path to a file instead"
        )
    if subject is not None and len(subject) > MAX_SUBJECT:
        raise InputError(f"a subject is at most {MAX_SUBJECT} characters")
    if dedupe_key is not None and not 0 < len(dedupe_key) <= 200:
        raise InputError("a dedupe key is 1 to 200 characters")
    return store.send_message(
        NewMessage(
            sender=sender,
            recipient=recipient,
            body=body,
            at=time.time(),
            subject=subject,
            dedupe_key=dedupe_key,
            run_id=run_id,
            step_id=step_id,
        )
    )


def inbox(
    store: Store, agent: str, *, unread: bool = True, limit: int = 500
) -> list[MessageRecord]:
    _name("agent", agent)
    return store.inbox(agent, unread=unread, limit=limit)


def mark_read(store: Store, ids: list[int] | None = None, *, agent: str | None = None) -> int:
    """Mark messages read (by id, or all of an agent's); how many changed."""
    if ids is None and agent is None:
        raise InputError("say which messages: ids, or an agent for all of its messages")
    return store.mark_read(ids=ids, agent=agent, at=time.time())


def conversation(store: Store, a: str, b: str, *, limit: int = 500) -> list[MessageRecord]:
    _name("agent", a)
    _name("agent", b)
    return store.conversation(a, b, limit=limit)


def prune(store: Store, older_than_days: float = DEFAULT_RETENTION_DAYS) -> int:
    """Delete read messages read more than `older_than_days` ago; how many went."""
    if older_than_days < 0:
        raise InputError("the retention is a number of days, 0 or more")
    return store.prune_messages(time.time() - older_than_days * 86400.0)


def as_json(message: MessageRecord) -> dict[str, Any]:
    return {
        "id": message.id,
        "sender": message.sender,
        "recipient": message.recipient,
        "subject": message.subject,
        "body": message.body,
        "run_id": message.run_id,
        "step_id": message.step_id,
        "created_at": message.created_at,
        "read_at": message.read_at,
    }


def _name(what: str, value: str) -> None:
    if not AGENT_NAME.match(value) or len(value) > 200:
        raise InputError(
            f"invalid {what} {value!r}: agent names use letters, digits, '_', '.' and '-'"
        )
