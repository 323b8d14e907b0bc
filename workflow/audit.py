"""The audit chain: every event carries the hash of the one before it (per firm, from a fixed genesis),
and the firm row carries the hash of its last event, so a changed, removed or inserted event shows."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from workflow.models import GENESIS_HASH
from workflow.tables import ENTERPRISES, EVENTS


def canonical_instant(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


def event_hash(
    prev_hash: str,
    *,
    enterprise_id: int,
    seq: int,
    trigger: str,
    actor: str,
    role: str,
    at: dt.datetime,
    from_state: str,
    to_state: str,
    payload: Mapping[str, Any],
) -> str:
    body = json.dumps(
        {
            "enterprise_id": enterprise_id,
            "seq": seq,
            "trigger": trigger,
            "actor": actor,
            "role": role,
            "at": canonical_instant(at),
            "from": from_state,
            "to": to_state,
            "payload": payload,
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class BrokenLink:
    event_id: int | None
    enterprise_id: int
    seq: int | None
    problem: str

    def __str__(self) -> str:
        where = f"event {self.event_id} (firm {self.enterprise_id}, #{self.seq})"
        if self.event_id is None:
            where = f"firm {self.enterprise_id}"
        return f"{where}: {self.problem}"


@dataclass(frozen=True)
class AuditReport:
    events_checked: int
    firms_checked: int
    broken: BrokenLink | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def verify_chain(conn: sa.Connection, *, batch: int = 10_000) -> AuditReport:
    """Walk every firm's events in order and stop at the first broken link. Firms and events are both
    streamed in firm order and merged, so memory stays flat however large the log is."""
    firms = conn.execution_options(yield_per=batch).execute(
        sa.select(ENTERPRISES.c.id, ENTERPRISES.c.chain_head, ENTERPRISES.c.event_count).order_by(ENTERPRISES.c.id)
    )
    events = iter(
        conn.execution_options(yield_per=batch).execute(
            sa.select(EVENTS).order_by(EVENTS.c.enterprise_id, EVENTS.c.seq)
        )
    )
    checked = firms_checked = 0
    pending = next(events, None)
    for firm in firms:
        running, count, last_state = GENESIS_HASH, 0, "mobilized"
        while pending is not None and pending.enterprise_id <= firm.id:
            ev, pending = pending, next(events, None)
            checked += 1
            if ev.enterprise_id < firm.id:  # the foreign key makes this impossible unless it was bypassed
                return AuditReport(
                    checked, firms_checked, BrokenLink(ev.id, ev.enterprise_id, ev.seq, "event of no firm")
                )
            count += 1
            problem = _link_problem(ev, expected_seq=count, running=running, last_state=last_state)
            if problem is not None:
                return AuditReport(checked, firms_checked, BrokenLink(ev.id, ev.enterprise_id, ev.seq, problem))
            running, last_state = ev.hash, ev.to_state
        firms_checked += 1
        if (running, count) != (firm.chain_head, firm.event_count):
            problem = "the firm's chain head does not match its last event (events removed?)"
            return AuditReport(checked, firms_checked, BrokenLink(None, firm.id, None, problem))
    return AuditReport(checked, firms_checked, None)


def _link_problem(ev: Any, *, expected_seq: int, running: str, last_state: str) -> str | None:
    if ev.seq != expected_seq:
        return f"sequence gap: expected #{expected_seq}, found #{ev.seq} (an event is missing)"
    if ev.prev_hash != running:
        return "prev_hash does not match the event before it"
    recomputed = event_hash(
        running,
        enterprise_id=ev.enterprise_id,
        seq=ev.seq,
        trigger=ev.trigger,
        actor=ev.actor,
        role=ev.role,
        at=ev.at,
        from_state=ev.from_state,
        to_state=ev.to_state,
        payload=ev.payload or {},
    )
    if recomputed != ev.hash:
        return "content does not match its hash (the event was changed)"
    if ev.from_state != last_state:
        return f"starts from {ev.from_state} but the firm was in {last_state}"
    return None
