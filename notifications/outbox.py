"""Reading and repairing the outbox: what is waiting or failed, putting a message back in the queue, and the
messages a firm was sent (its page's 消息 tab)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from notifications.render import Renderer, RenderError, UnknownKind
from workflow.actors import Actor, firm_records, require
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


def counts_of(conn: sa.Connection, statuses: tuple[str, ...]) -> dict[str, int]:
    """How many messages stand in each of `statuses` (0 for a status with none): the health check and the
    metrics read the outbox's backlog through this."""
    rows = conn.execute(
        sa.select(OUTBOX.c.status, sa.func.count()).where(OUTBOX.c.status.in_(statuses)).group_by(OUTBOX.c.status)
    ).all()
    return dict.fromkeys(statuses, 0) | {str(r[0]): int(r[1]) for r in rows}


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


def _firm_mail(actor: Actor, enterprise_id: int) -> tuple[sa.ColumnElement[bool], ...]:
    """Messages to the firm itself (not those to the offices about it), if the actor may see its records."""
    return (
        OUTBOX.c.enterprise_id == enterprise_id,
        OUTBOX.c.audience == "enterprise",
        firm_records(actor, OUTBOX.c.enterprise_id),
    )


def firm_message_count(conn: sa.Connection, *, actor: Actor, enterprise_id: int) -> int:
    """How many messages were sent to a firm (the 消息 tab's count). Raises NotFound / OutOfScope."""
    require(conn, actor, "firm", enterprise_id)
    query = sa.select(sa.func.count()).select_from(OUTBOX).where(*_firm_mail(actor, enterprise_id))
    return int(conn.execute(query).scalar_one())


@dataclass(frozen=True)
class FirmMessage:
    id: int
    kind: str
    subject: str  # as the firm was (or will be) sent it, in the message's language
    to_address: str | None
    status: str  # an OutboxStatus
    created_at: dt.datetime
    sent_at: dt.datetime | None


def firm_messages(
    conn: sa.Connection, *, actor: Actor, enterprise_id: int, renderer: Renderer, limit: int = 200
) -> tuple[int, list[FirmMessage]]:
    """The messages sent to a firm (addressed to the firm itself, never those to the offices about it),
    newest first, with their subjects: for the firm itself and the offices whose scope it is in. Returns
    (how many there are, the newest `limit`).

    Raises:
        NotFound / OutOfScope: no such firm, or not the actor's to see.
    """
    total = firm_message_count(conn, actor=actor, enterprise_id=enterprise_id)
    where = _firm_mail(actor, enterprise_id)
    rows = conn.execute(
        sa.select(
            OUTBOX.c.id,
            OUTBOX.c.kind,
            OUTBOX.c.lang,
            OUTBOX.c.context,
            OUTBOX.c.to_address,
            OUTBOX.c.status,
            OUTBOX.c.created_at,
            OUTBOX.c.sent_at,
        )
        .where(*where)
        .order_by(OUTBOX.c.id.desc())
        .limit(limit)
    )
    out = []
    for r in rows:
        try:
            subject = renderer.subject(r.kind, r.lang, r.context or {}, audience="enterprise")
        except (UnknownKind, RenderError):
            subject = r.kind  # a message its template cannot render is shown by its kind
        out.append(FirmMessage(int(r.id), r.kind, subject, r.to_address, r.status, r.created_at, r.sent_at))
    return total, out
