"""Reading and repairing the outbox: what is waiting or failed, and putting a message back in the queue."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from workflow.db import begin_write
from workflow.models import OutboxStatus
from workflow.tables import OUTBOX

STATUSES = tuple(s.value for s in OutboxStatus)
RETRYABLE = (OutboxStatus.failed, OutboxStatus.no_recipient, OutboxStatus.pending)


class OutboxError(Exception):
    """A request about the outbox that cannot be done (unknown id, a message already sent)."""


def list_messages(
    conn: sa.Connection, *, status: str | None = None, kind: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Newest first."""
    query = sa.select(
        OUTBOX.c.id,
        OUTBOX.c.status,
        OUTBOX.c.kind,
        OUTBOX.c.audience,
        OUTBOX.c.enterprise_id,
        OUTBOX.c.district_code,
        OUTBOX.c.to_address,
        OUTBOX.c.lang,
        OUTBOX.c.attempts,
        OUTBOX.c.next_attempt_at,
        OUTBOX.c.last_error,
        OUTBOX.c.message_id,
        OUTBOX.c.dedupe_key,
        OUTBOX.c.created_at,
        OUTBOX.c.sent_at,
    )
    if status:
        query = query.where(OUTBOX.c.status == status)
    if kind:
        query = query.where(OUTBOX.c.kind == kind)
    rows = conn.execute(query.order_by(OUTBOX.c.id.desc()).limit(limit)).all()
    return [{key: _plain(value) for key, value in row._asdict().items()} for row in rows]


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def status_counts(conn: sa.Connection) -> dict[str, int]:
    rows = conn.execute(sa.select(OUTBOX.c.status, sa.func.count()).group_by(OUTBOX.c.status))
    counts = dict.fromkeys(STATUSES, 0)
    counts.update({str(status): int(n) for status, n in rows})
    return counts


def failed_ids(conn: sa.Connection) -> list[int]:
    query = sa.select(OUTBOX.c.id).where(OUTBOX.c.status == OutboxStatus.failed).order_by(OUTBOX.c.id)
    return [int(i) for i in conn.execute(query).scalars()]


def retry_message(engine: sa.Engine, *, outbox_id: int, now: dt.datetime) -> str:
    """Put a failed (or recipient-less, or waiting) message back in the queue, due now, with fresh attempts.
    Returns the status it had.

    Raises:
        OutboxError: no such message, or it was sent or is being sent.
    """
    with Session(engine) as session:
        begin_write(session)
        conn = session.connection()
        row = conn.execute(
            sa.select(OUTBOX.c.status, OUTBOX.c.sent_at, OUTBOX.c.claimed_until).where(OUTBOX.c.id == outbox_id)
        ).first()
        if row is None:
            raise OutboxError(f"没有编号为 {outbox_id} 的邮件 / no message with id {outbox_id}")
        if row.status == OutboxStatus.sent:
            raise OutboxError(f"邮件 {outbox_id} 已发送 / message {outbox_id} was sent at {row.sent_at:%Y-%m-%d %H:%M}")
        if row.status == OutboxStatus.sending:
            raise OutboxError(f"邮件 {outbox_id} 正在发送 / message {outbox_id} is being sent right now")
        conn.execute(
            sa.update(OUTBOX)
            .where(OUTBOX.c.id == outbox_id, OUTBOX.c.status.in_(RETRYABLE))
            .values(status=OutboxStatus.pending, attempts=0, next_attempt_at=now, claimed_by=None, claimed_until=None)
        )
        session.commit()
        return str(row.status)
