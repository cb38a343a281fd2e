"""Agent-to-agent messages: rows of the `messages` table, each send with its chained event.

Idempotence rests on the unique index on dedupe_key: of two senders racing with one key, the
database lets exactly one insert through, and the other reads back the winner's id.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, and_, delete, insert, or_, select, update

from agenthq.store.api import MessageRecord, NewMessage
from agenthq.store.tables import messages

EventDraft = tuple[str | None, str | None, int | None, str, dict[str, object]]


def existing(conn: Connection, dedupe_key: str) -> int | None:
    found = conn.execute(select(messages.c.id).where(messages.c.dedupe_key == dedupe_key)).scalar()
    return int(found) if found is not None else None


def insert_message(conn: Connection, message: NewMessage) -> tuple[int, EventDraft]:
    new_id = conn.execute(
        insert(messages)
        .values(
            sender=message.sender,
            recipient=message.recipient,
            subject=message.subject,
            body=message.body,
            dedupe_key=message.dedupe_key,
            run_id=message.run_id,
            step_id=message.step_id,
            created_at=message.at,
        )
        .returning(messages.c.id)
    ).scalar_one()
    event: EventDraft = (
        message.run_id,
        message.step_id,
        None,
        "message.sent",
        {
            "id": int(new_id),
            "sender": message.sender,
            "recipient": message.recipient,
            "subject": message.subject,
        },
    )
    return int(new_id), event


def inbox(conn: Connection, agent: str, *, unread: bool, limit: int) -> list[MessageRecord]:
    query = select(messages).where(messages.c.recipient == agent)
    if unread:
        query = query.where(messages.c.read_at.is_(None))
    rows = conn.execute(query.order_by(messages.c.id).limit(limit)).mappings()
    return [_record(r) for r in rows]


def mark_read(conn: Connection, *, ids: Sequence[int] | None, agent: str | None, at: float) -> int:
    query = update(messages).where(messages.c.read_at.is_(None)).values(read_at=at)
    if ids is not None:
        query = query.where(messages.c.id.in_(list(ids)))
    if agent is not None:
        query = query.where(messages.c.recipient == agent)
    return int(conn.execute(query).rowcount or 0)


def conversation(conn: Connection, a: str, b: str, limit: int) -> list[MessageRecord]:
    between = or_(
        and_(messages.c.sender == a, messages.c.recipient == b),
        and_(messages.c.sender == b, messages.c.recipient == a),
    )
    rows = conn.execute(
        select(messages).where(between).order_by(messages.c.id).limit(limit)
    ).mappings()
    return [_record(r) for r in rows]


def prune(conn: Connection, read_before: float) -> int:
    done = conn.execute(
        delete(messages).where(messages.c.read_at.is_not(None), messages.c.read_at < read_before)
    )
    return int(done.rowcount or 0)


def _record(row: object) -> MessageRecord:
    r = dict(row)  # type: ignore[call-overload]
    return MessageRecord(
        id=int(r["id"]),
        sender=r["sender"],
        recipient=r["recipient"],
        subject=r["subject"],
        body=r["body"],
        dedupe_key=r["dedupe_key"],
        run_id=r["run_id"],
        step_id=r["step_id"],
        created_at=r["created_at"],
        read_at=r["read_at"],
    )
