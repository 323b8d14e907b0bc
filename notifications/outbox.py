"""Reading and repairing the outbox: what is waiting or failed (in words, for the outbox page), putting a
message back in the queue (the page's 重新发送 and `dabiao outbox retry`, each retry recorded), and the messages
a firm was sent (its page's 消息 tab)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from notifications.recipients import resolve
from notifications.render import Renderer, RenderError, UnknownKind
from workflow.actors import Actor, firm_records, require
from workflow.campaign import Campaign
from workflow.db import begin_write
from workflow.models import OutboxStatus
from workflow.tables import ENTERPRISES, OUTBOX, OUTBOX_RETRIES

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


@dataclass(frozen=True)
class Retried:
    """A message put back in the queue: the status it had."""

    outbox_id: int
    was: str


def retry_messages(session: Session, *, ids: Sequence[int], by: str, now: dt.datetime) -> list[Retried]:
    """Put failed (or recipient-less, or waiting) messages back in the queue, due now, with fresh attempts, in
    one transaction; each one is recorded in `outbox_retries` (who, when, where it stood).

    Raises:
        OutboxError: a message does not exist, was sent or is being sent (then nothing changes).
    """
    wanted = list(dict.fromkeys(int(i) for i in ids))
    if not wanted:
        return []
    begin_write(session)
    try:
        conn = session.connection()
        rows = {
            r.id: r
            for r in conn.execute(
                sa.select(OUTBOX.c.id, OUTBOX.c.status, OUTBOX.c.sent_at, OUTBOX.c.last_error).where(
                    OUTBOX.c.id.in_(wanted)
                )
            )
        }
        for outbox_id in wanted:
            row = rows.get(outbox_id)
            if row is None:
                raise OutboxError(f"没有编号为 {outbox_id} 的邮件 / no message with id {outbox_id}")
            if row.status == OutboxStatus.sent:
                raise OutboxError(
                    f"邮件 {outbox_id} 已于 {row.sent_at:%Y-%m-%d %H:%M} 发出 / message {outbox_id} was sent at "
                    f"{row.sent_at:%Y-%m-%d %H:%M}"
                )
            if row.status == OutboxStatus.sending:
                raise OutboxError(f"邮件 {outbox_id} 正在发送 / message {outbox_id} is being sent right now")
        conn.execute(
            sa.update(OUTBOX)
            .where(OUTBOX.c.id.in_(wanted), OUTBOX.c.status.in_(RETRYABLE))
            .values(status=OutboxStatus.pending, attempts=0, next_attempt_at=now, claimed_by=None, claimed_until=None)
        )
        conn.execute(
            sa.insert(OUTBOX_RETRIES),
            [
                {
                    "outbox_id": i,
                    "retried_by": by[:80],
                    "retried_at": now,
                    "was_status": str(rows[i].status),
                    "was_error": rows[i].last_error,
                }
                for i in wanted
            ],
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return [Retried(i, str(rows[i].status)) for i in wanted]


def retry_message(engine: sa.Engine, *, outbox_id: int, now: dt.datetime, by: str = "cli") -> str:
    """One message back in the queue (see `retry_messages`); returns the status it had."""
    with Session(engine) as session:
        return retry_messages(session, ids=[outbox_id], by=by, now=now)[0].was


# ---- the outbox page: mail not yet out, in words ----------------------------------------------------

# The statuses the page lists and counts: everything but `sent` (the bulk of the table, never counted here).
WATCHED = (OutboxStatus.pending, OutboxStatus.sending, OutboxStatus.failed, OutboxStatus.no_recipient)
# the SMTP reply code at the start of a refusal ("550 5.1.1 no such user")
_SMTP_CODE = re.compile(r"^([245])\d\d\b")


def error_reason(status: str, last_error: str | None, audience: str) -> str | None:
    """Why a message did not go out, as a code of workflow/labels.py MAIL_ERRORS (None when nothing failed)."""
    if status == OutboxStatus.no_recipient:
        if audience == "enterprise":
            return "no_firm_address"
        return "no_office_address" if audience in ("district_bureau", "local_government") else "no_address"
    if not last_error or status == OutboxStatus.sent:
        return None
    text = last_error.strip()
    code = _SMTP_CODE.match(text)
    if code:
        if code.group(1) == "5":
            return "rejected"
        return "deferred_gave_up" if status == OutboxStatus.failed else "deferred"
    for start, reason in (
        ("invalid recipient address", "bad_address"),
        ("unusable address", "bad_address"),
        ("cannot reach", "unreachable"),
        ("login refused", "login"),
        ("connection lost", "connection_lost"),
        ("cannot write", "mail_folder"),
        ("no templates", "template"),
        ("cannot render", "template"),
        ("gave up after", "unconfirmed"),
        ("not supported by the server", "rejected"),
    ):
        if text.startswith(start):
            return reason
    return "other"


@dataclass(frozen=True)
class OutboxLine:
    """One message as the outbox page shows it."""

    id: int
    kind: str
    status: str
    audience: str
    recipient: str | None  # the office's or the firm's name
    address: str | None
    enterprise_id: int | None
    created_at: dt.datetime
    attempts: int
    next_attempt_at: dt.datetime | None
    reason: str | None  # a MAIL_ERRORS code
    retryable: bool


def outbox_lines(
    conn: sa.Connection, *, campaign: Campaign, status: str | None = None, district: str | None = None, limit: int = 500
) -> list[OutboxLine]:
    """Mail not yet out (or of one watched status), oldest first, for the city or one district, with the
    recipient named (the firm, the district bureau, the local government, the reviewer)."""
    statuses = (status,) if status in WATCHED else WATCHED
    query = (
        sa.select(
            OUTBOX.c.id,
            OUTBOX.c.kind,
            OUTBOX.c.status,
            OUTBOX.c.audience,
            OUTBOX.c.enterprise_id,
            OUTBOX.c.district_code,
            OUTBOX.c.to_address,
            OUTBOX.c.lang,
            OUTBOX.c.context,
            OUTBOX.c.attempts,
            OUTBOX.c.next_attempt_at,
            OUTBOX.c.last_error,
            OUTBOX.c.created_at,
            ENTERPRISES.c.name.label("enterprise_name"),
        )
        .select_from(OUTBOX.outerjoin(ENTERPRISES, ENTERPRISES.c.id == OUTBOX.c.enterprise_id))
        .where(OUTBOX.c.status.in_(statuses))
        .order_by(OUTBOX.c.created_at, OUTBOX.c.id)
        .limit(limit)
    )
    if district is not None:
        query = query.where(OUTBOX.c.district_code == district)
    rows = conn.execute(query).all()
    recipients = resolve(conn, rows, campaign=campaign)  # type: ignore[arg-type]
    lines = []
    for r in rows:
        found = recipients.get(r.id)
        name = r.enterprise_name if r.audience == "enterprise" else (found.name if found else None)
        lines.append(
            OutboxLine(
                id=r.id,
                kind=r.kind,
                status=r.status,
                audience=r.audience,
                recipient=name,
                address=r.to_address or (found.address if found else None),
                enterprise_id=r.enterprise_id,
                created_at=r.created_at,
                attempts=r.attempts,
                next_attempt_at=r.next_attempt_at,
                reason=error_reason(r.status, r.last_error, r.audience),
                retryable=r.status in (OutboxStatus.failed, OutboxStatus.no_recipient),
            )
        )
    return lines


def watched_counts(conn: sa.Connection, *, district: str | None = None) -> dict[str, int]:
    """How many messages stand in each watched status: a message nobody can receive is 无法送达, never sent."""
    where: list[sa.ColumnElement[bool]] = [OUTBOX.c.status.in_(WATCHED)]
    if district is not None:
        where.append(OUTBOX.c.district_code == district)
    rows = conn.execute(sa.select(OUTBOX.c.status, sa.func.count()).where(*where).group_by(OUTBOX.c.status))
    return dict.fromkeys(WATCHED, 0) | {str(status): int(n) for status, n in rows}


# ---- a firm's messages (its page's 消息 tab) ------------------------------------------------------------


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
