"""Outbox dispatch: claim due rows under a lease, render them, send them after the claim committed, and
record each outcome (sent, retry later with backoff, failed, no recipient).

Claiming. One short transaction picks up to `dispatch_batch` due rows — pending rows whose next attempt is
due, and rows left `sending` by a dispatcher whose lease ran out — and marks them `sending`, claimed by this
pass until `now + lease`, with their Message-ID fixed and `attempts` counted. On PostgreSQL the rows are
selected `FOR UPDATE SKIP LOCKED`, so concurrent dispatchers take disjoint rows without waiting; on SQLite
the transaction begins `IMMEDIATE`, so claimers take turns. Nothing is sent until that transaction committed.

Delivery is at least once; SMTP has no idempotent submit. A dispatcher that dies after the server accepted a
message and before it recorded that leaves the row `sending`; once the lease expires another pass sends it
again — with the same Message-ID, derived from the dedupe key, so receivers that collapse duplicates by
Message-ID show it once. Inside one process we do better: an outcome is kept in memory until it has been
recorded, so when the recording step fails (the database went away) the next pass records it instead of
sending the message again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import os
import random
import socket
import threading
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Session

from notifications.channels import Channel, ChannelDown, Envelope, SendFailure, channel_for
from notifications.labels import normalize_lang
from notifications.message import compose, envelope_sender, mail_domain, message_id_for, needs_smtputf8
from notifications.recipients import Addressable, BadAddress, Recipient, check_address, resolve
from notifications.render import Renderer, RenderError, UnknownKind
from workflow.campaign import Campaign, load_campaign
from workflow.clock import Clock
from workflow.db import begin_write
from workflow.settings import Settings
from workflow.tables import OUTBOX

T = TypeVar("T")

# Outcomes are recorded in short transactions of this many while a batch is being sent: fewer commits than
# one per message, and a dispatcher that dies mid-batch leaves at most this many messages to be sent twice.
RECORD_EVERY = 20
LEASE_MIN_SECONDS = 60.0
# Stop sending from a claim when less than the SMTP timeout plus this is left of its lease: past the lease
# another dispatcher may take the rows, and a message must not be on the wire from two places.
LEASE_MARGIN_SECONDS = 5.0

SENT, PENDING, FAILED, NO_RECIPIENT, SENDING = "sent", "pending", "failed", "no_recipient", "sending"


@dataclass
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    no_recipient: int = 0
    released: int = 0  # claimed but handed back unsent (the lease was running out)
    recovered: int = 0  # outcomes of an earlier pass recorded now (its recording step had failed)
    channel: str = ""
    channel_error: str | None = None

    def count(self, outcome: Outcome) -> None:
        if outcome.status == SENT:
            self.sent += 1
        elif outcome.status == PENDING:
            self.retrying += 1
        elif outcome.status == FAILED:
            self.failed += 1
        elif outcome.status == NO_RECIPIENT:
            self.no_recipient += 1

    def summary(self) -> str:
        text = (
            f"已发送 {self.sent}，待重试 {self.retrying}，失败 {self.failed}，无收件人 {self.no_recipient} / "
            f"sent {self.sent}, retrying {self.retrying}, failed {self.failed}, no recipient {self.no_recipient}"
        )
        if self.released:
            text += f", released {self.released}"
        if self.recovered:
            text += f", recorded from an earlier pass {self.recovered}"
        if self.channel:
            text += f" ({self.channel})"
        if self.channel_error:
            text += f"\n  {self.channel_error}"
        return text


@dataclass(frozen=True)
class Outcome:
    outbox_id: int
    message_id: str
    status: str  # sent / pending / failed / no_recipient
    at: dt.datetime
    error: str | None = None
    next_attempt_at: dt.datetime | None = None
    to_address: str | None = None


@dataclass(frozen=True)
class Claimed:
    id: int
    dedupe_key: str
    kind: str
    audience: str
    enterprise_id: int | None
    district_code: str | None
    to_address: str | None
    lang: str
    context: Mapping[str, Any]
    message_id: str
    attempts: int  # including this one
    created_at: dt.datetime
    retaken: bool  # found `sending` with an expired lease

    def addressable(self) -> Addressable:
        return Addressable(
            id=self.id,
            audience=self.audience,
            enterprise_id=self.enterprise_id,
            district_code=self.district_code,
            to_address=self.to_address,
            lang=self.lang,
            context=self.context,
        )


class _Journal:
    """Outcomes this process knows and the database does not yet: kept until recorded, so a failed recording
    step is repaired by the next pass instead of the message going out again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_database: dict[str, dict[int, Outcome]] = {}

    def add(self, database: str, outcomes: Sequence[Outcome]) -> None:
        with self._lock:
            self._by_database.setdefault(database, {}).update({o.outbox_id: o for o in outcomes})

    def pending(self, database: str) -> list[Outcome]:
        with self._lock:
            return list(self._by_database.get(database, {}).values())

    def discard(self, database: str, outcomes: Sequence[Outcome]) -> None:
        with self._lock:
            known = self._by_database.get(database, {})
            for o in outcomes:
                if known.get(o.outbox_id) is o:
                    del known[o.outbox_id]

    def clear(self) -> None:
        """Forget everything (what a process restart does)."""
        with self._lock:
            self._by_database.clear()


JOURNAL = _Journal()


def backoff_delay(attempts: int, *, settings: Settings, rng: Callable[[], float] = random.random) -> dt.timedelta:
    """Wait before the next try: base · 2^(attempts−1), capped at the maximum, then jittered to between half
    and all of it, so messages that failed together do not all come back in the same second."""
    exponent = min(max(attempts - 1, 0), 60)
    delay = min(settings.outbox_backoff_max_seconds, settings.outbox_backoff_seconds * 2.0**exponent)
    return dt.timedelta(seconds=delay * (0.5 + 0.5 * rng()))


def lease_for(settings: Settings) -> dt.timedelta:
    return dt.timedelta(seconds=max(LEASE_MIN_SECONDS, 4 * settings.smtp_timeout_seconds))


def dispatch_once(
    engine: sa.Engine,
    *,
    settings: Settings,
    clock: Clock,
    campaign: Campaign | None = None,
) -> DispatchReport:
    """One pass: claim up to `settings.dispatch_batch` due messages, send them over one connection (or into
    the mail folder) and record what happened to each.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database failed while claiming or recording; outcomes already
            known are kept and recorded by the next pass in this process.
    """
    campaign = campaign or _campaign(settings.campaign_file)
    database = _database_key(engine)
    report = DispatchReport()

    leftover = JOURNAL.pending(database)
    if leftover:
        _record(engine, leftover)
        JOURNAL.discard(database, leftover)
        report.recovered = len(leftover)

    channel = channel_for(settings)  # refuses contradictory settings before any row is claimed
    now = clock.now()
    worker = _worker_id()
    lease = lease_for(settings)
    claimed = _claim(
        engine,
        worker=worker,
        now=now,
        limit=settings.dispatch_batch,
        lease=lease,
        domain=mail_domain(settings.mail_from),
    )
    report.claimed = len(claimed)
    if not claimed:
        return report

    with engine.connect() as conn:
        recipients = resolve(conn, [c.addressable() for c in claimed], campaign=campaign)
    renderer = _renderer(settings, campaign)
    settled: list[Outcome] = []
    ready: list[tuple[Claimed, Envelope]] = []
    for row in claimed:
        prepared = _prepare(row, recipients.get(row.id), renderer=renderer, settings=settings, now=now)
        if isinstance(prepared, Outcome):
            settled.append(prepared)
        else:
            ready.append((row, prepared))

    report.channel = channel.description
    stop_at = now + lease - dt.timedelta(seconds=settings.smtp_timeout_seconds + LEASE_MARGIN_SECONDS)
    _run(
        _deliver(
            engine,
            database=database,
            channel=channel,
            ready=ready,
            settled=settled,
            settings=settings,
            clock=clock,
            worker=worker,
            stop_at=stop_at,
            report=report,
        )
    )
    return report


# ---- claiming -----------------------------------------------------------------------------------


_CLAIM_COLUMNS = (
    OUTBOX.c.id,
    OUTBOX.c.dedupe_key,
    OUTBOX.c.kind,
    OUTBOX.c.audience,
    OUTBOX.c.enterprise_id,
    OUTBOX.c.district_code,
    OUTBOX.c.to_address,
    OUTBOX.c.lang,
    OUTBOX.c.context,
    OUTBOX.c.message_id,
    OUTBOX.c.attempts,
    OUTBOX.c.status,
    OUTBOX.c.created_at,
)


def _claim(
    engine: sa.Engine, *, worker: str, now: dt.datetime, limit: int, lease: dt.timedelta, domain: str
) -> list[Claimed]:
    with Session(engine) as session:
        begin_write(session)
        conn = session.connection()
        skip_locked = conn.dialect.name == "postgresql"

        def locked(query: sa.Select[Any]) -> sa.Select[Any]:
            return query.with_for_update(skip_locked=True) if skip_locked else query

        expired = conn.execute(
            locked(
                sa.select(*_CLAIM_COLUMNS)
                .where(OUTBOX.c.status == SENDING, OUTBOX.c.claimed_until < now)
                .order_by(OUTBOX.c.claimed_until, OUTBOX.c.id)
                .limit(limit)
            )
        ).all()
        due: list[sa.Row[Any]] = []
        if len(expired) < limit:
            due = list(
                conn.execute(
                    locked(
                        sa.select(*_CLAIM_COLUMNS)
                        .where(
                            OUTBOX.c.status == PENDING,
                            sa.or_(OUTBOX.c.next_attempt_at.is_(None), OUTBOX.c.next_attempt_at <= now),
                        )
                        .order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.id)
                        .limit(limit - len(expired))
                    )
                ).all()
            )
        rows = [*expired, *due]
        if not rows:
            session.commit()
            return []
        claimed = [
            Claimed(
                id=int(r.id),
                dedupe_key=r.dedupe_key,
                kind=r.kind,
                audience=r.audience,
                enterprise_id=r.enterprise_id,
                district_code=r.district_code,
                to_address=r.to_address,
                lang=normalize_lang(r.lang),
                context=dict(r.context or {}),
                message_id=r.message_id or message_id_for(r.dedupe_key, domain),
                attempts=int(r.attempts or 0) + 1,
                created_at=r.created_at,
                retaken=r.status == SENDING,
            )
            for r in rows
        ]
        conn.execute(
            sa.update(OUTBOX)
            .where(OUTBOX.c.id == sa.bindparam("b_id"))
            .values(
                status=SENDING,
                claimed_by=worker,
                claimed_until=now + lease,
                message_id=sa.bindparam("b_message_id"),
                attempts=sa.bindparam("b_attempts"),
            ),
            [{"b_id": c.id, "b_message_id": c.message_id, "b_attempts": c.attempts} for c in claimed],
        )
        session.commit()
        return claimed


# ---- preparing ----------------------------------------------------------------------------------


def _prepare(
    row: Claimed, recipient: Recipient | None, *, renderer: Renderer, settings: Settings, now: dt.datetime
) -> Envelope | Outcome:
    def settle(status: str, error: str, to: str | None = None) -> Outcome:
        return Outcome(row.id, row.message_id, status, now, error=error, to_address=to)

    if row.attempts > settings.outbox_max_attempts:
        # A row whose dispatcher died mid-send on its last attempt (or the maximum was lowered since).
        limit = settings.outbox_max_attempts
        return settle(FAILED, f"gave up after {row.attempts - 1} attempts (maximum {limit}); the last is unconfirmed")
    if recipient is None:
        return settle(NO_RECIPIENT, _no_recipient_reason(row))
    try:
        address = check_address(recipient.address)
    except BadAddress as exc:
        return settle(FAILED, str(exc), recipient.address)
    context = dict(row.context)
    if recipient.greeting:
        context["recipient_name"] = recipient.greeting
    try:
        rendered = renderer.render(row.kind, row.lang, context, audience=row.audience)
    except UnknownKind as exc:
        return settle(FAILED, f"no templates for this kind of mail: {exc}", address)
    except RenderError as exc:
        return settle(FAILED, f"cannot render: {exc}", address)
    data = compose(
        rendered,
        mail_from=settings.mail_from,
        to=address,
        to_name=recipient.name,
        message_id=row.message_id,
        date=now.astimezone(settings.tz),
        lang=row.lang,
        kind=row.kind,
        outbox_id=row.id,
    )
    sender = envelope_sender(settings.mail_from)
    return Envelope(
        outbox_id=row.id,
        kind=row.kind,
        sender=sender,
        recipient=address,
        message_id=row.message_id,
        created_at=row.created_at,
        data=data,
        smtputf8=needs_smtputf8(sender, address),
    )


def _no_recipient_reason(row: Claimed) -> str:
    if row.audience == "enterprise":
        return "no recipient: the firm has no e-mail address in the directory"
    if row.audience in ("district_bureau", "local_government"):
        return f"no recipient: no {row.audience} mailbox for district {row.district_code!r} in the campaign file"
    return f"no recipient: audience {row.audience!r} has no address and names no active user with one"


# ---- sending ------------------------------------------------------------------------------------


async def _deliver(
    engine: sa.Engine,
    *,
    database: str,
    channel: Channel,
    ready: list[tuple[Claimed, Envelope]],
    settled: list[Outcome],
    settings: Settings,
    clock: Clock,
    worker: str,
    stop_at: dt.datetime,
    report: DispatchReport,
) -> None:
    unrecorded: list[Outcome] = []

    def note(outcome: Outcome) -> None:
        JOURNAL.add(database, [outcome])
        unrecorded.append(outcome)
        report.count(outcome)
        if len(unrecorded) >= RECORD_EVERY:
            flush()

    def flush() -> None:
        if unrecorded:
            _record(engine, unrecorded)
            JOURNAL.discard(database, unrecorded)
            unrecorded.clear()

    for outcome in settled:
        note(outcome)
    down: str | None = None
    try:
        for index, (row, envelope) in enumerate(ready):
            now = clock.now()
            if down is None and now >= stop_at:
                rest = [r.id for r, _ in ready[index:]]
                _release(engine, rest, worker=worker)
                report.released += len(rest)
                break
            if down is not None:
                note(_retry_or_fail(row, down, now, settings))
                continue
            try:
                await channel.send(envelope)
            except SendFailure as exc:
                if exc.permanent:
                    note(Outcome(row.id, row.message_id, FAILED, now, error=exc.reason, to_address=envelope.recipient))
                else:
                    note(_retry_or_fail(row, exc.reason, now, settings, to=envelope.recipient))
            except ChannelDown as exc:
                down = str(exc)
                report.channel_error = down
                note(_retry_or_fail(row, down, now, settings))
            else:
                note(Outcome(row.id, row.message_id, SENT, now, to_address=envelope.recipient))
        flush()
    finally:
        await channel.close()


def _retry_or_fail(row: Claimed, error: str, now: dt.datetime, settings: Settings, *, to: str | None = None) -> Outcome:
    if row.attempts >= settings.outbox_max_attempts:
        return Outcome(
            row.id, row.message_id, FAILED, now, error=f"{error} (gave up after {row.attempts} attempts)", to_address=to
        )
    next_at = now + backoff_delay(row.attempts, settings=settings)
    return Outcome(row.id, row.message_id, PENDING, now, error=error, next_attempt_at=next_at, to_address=to)


# ---- recording ----------------------------------------------------------------------------------


def _record(engine: sa.Engine, outcomes: Sequence[Outcome]) -> None:
    """Write outcomes in one short transaction. Only rows still `sending` change: a row someone else already
    finished (or an operator changed) is left as it is."""
    with Session(engine) as session:
        begin_write(session)
        session.connection().execute(
            sa.update(OUTBOX)
            .where(OUTBOX.c.id == sa.bindparam("b_id"), OUTBOX.c.status == SENDING)
            .values(
                status=sa.bindparam("b_status"),
                last_error=sa.func.coalesce(sa.bindparam("b_error", type_=sa.Text()), OUTBOX.c.last_error),
                next_attempt_at=sa.bindparam("b_next", type_=OUTBOX.c.next_attempt_at.type),
                sent_at=sa.bindparam("b_sent", type_=OUTBOX.c.sent_at.type),
                to_address=sa.func.coalesce(OUTBOX.c.to_address, sa.bindparam("b_to", type_=sa.String())),
                claimed_by=None,
                claimed_until=None,
            ),
            [
                {
                    "b_id": o.outbox_id,
                    "b_status": o.status,
                    "b_error": None if o.error is None else o.error[:2000],
                    "b_next": o.next_attempt_at,
                    "b_sent": o.at if o.status == SENT else None,
                    "b_to": o.to_address,
                }
                for o in outcomes
            ],
        )
        session.commit()


def _release(engine: sa.Engine, ids: Sequence[int], *, worker: str) -> None:
    with Session(engine) as session:
        begin_write(session)
        session.connection().execute(
            sa.update(OUTBOX)
            .where(OUTBOX.c.id.in_(ids), OUTBOX.c.status == SENDING, OUTBOX.c.claimed_by == worker)
            .values(status=PENDING, claimed_by=None, claimed_until=None, attempts=OUTBOX.c.attempts - 1)
        )
        session.commit()


# ---- plumbing -----------------------------------------------------------------------------------


def _worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _database_key(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


@lru_cache(maxsize=4)
def _campaign(path: Path) -> Campaign:
    return load_campaign(path)


_renderers: dict[tuple[str, str, int], Renderer] = {}
_renderers_lock = threading.Lock()


def _renderer(settings: Settings, campaign: Campaign) -> Renderer:
    key = (settings.timezone, settings.public_url, id(campaign))
    with _renderers_lock:
        renderer = _renderers.get(key)
        if renderer is None or renderer.campaign is not campaign:
            renderer = Renderer(tz=settings.tz, public_url=settings.public_url, campaign=campaign)
            _renderers[key] = renderer
        return renderer


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end from synchronous code, also when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


__all__ = ["JOURNAL", "DispatchReport", "Outcome", "backoff_delay", "dispatch_once", "lease_for"]
