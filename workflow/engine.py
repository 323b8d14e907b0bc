"""The engine: `fire` is the only way a firm's state changes, one database transaction each."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlmodel import Session

from states import MACHINE, TRIGGERS, NotFound, OutOfScope, Role, State, VersionConflict
from workflow.actors import Actor, in_scope
from workflow.audit import event_hash
from workflow.context import Context
from workflow.db import _engine_unit
from workflow.driver import Raw
from workflow.effects import EFFECTS, Mail, clean_payload
from workflow.effects import Context as EffectContext
from workflow.facts import PREFETCH_COLUMNS, DbFacts
from workflow.models import OutboxStatus
from workflow.tables import DISTRICTS, ENTERPRISES, EVENTS, OUTBOX


@dataclass(frozen=True)
class FireResult:
    enterprise_id: int
    trigger: str
    from_state: State
    to_state: State
    version: int
    event_id: int
    event_hash: str
    at: dt.datetime
    record: Mapping[str, Any]
    mails: tuple[str, ...]


# Statements of the hot path, built once: each fire only binds values.
_FIRM = sa.select(ENTERPRISES, DISTRICTS.c.name.label("district_name")).join(
    DISTRICTS, DISTRICTS.c.code == ENTERPRISES.c.district_code
)
_FIRM_BY_ID = _FIRM.where(ENTERPRISES.c.id == sa.bindparam("firm_id"))
_FIRM_BY_CODE = _FIRM.where(ENTERPRISES.c.uscc == sa.bindparam("uscc"))


class FirmRow(NamedTuple):
    """The firm as `fire` reads it through the driver (datetimes as the driver gives them: only whether
    `notified_at` is set matters to the guards)."""

    id: int
    uscc: str
    name: str
    district_code: str
    key_field: bool
    principal: str
    email: str | None
    lang: str
    prior_certificate_level: int | None
    prior_certificate_recorded_at: Any
    state: str
    version: int
    notified_at: Any
    event_count: int
    chain_head: str
    district_name: str


_FIRM_FIELDS = len(FirmRow._fields)
# The firm, its district's name and every fact the guards and effects may ask for, in one round trip.
_FIRM_SQL = (
    f"SELECT {', '.join('e.' + name for name in FirmRow._fields[:-1])}, d.name, {', '.join(PREFETCH_COLUMNS)} "
    "FROM enterprises e JOIN districts d ON d.code = e.district_code WHERE e.id = :firm_id"
)


def load_firm(conn: sa.Connection, *, enterprise_id: int | None = None, uscc: str | None = None) -> sa.Row[Any]:
    """The firm's row (with `district_name`); NotFound when there is none."""
    if uscc is None:
        firm = conn.execute(_FIRM_BY_ID, {"firm_id": enterprise_id}).first()
    else:
        firm = conn.execute(_FIRM_BY_CODE, {"uscc": uscc}).first()
    if firm is None:
        raise NotFound(f"找不到该企业 / no such enterprise: {uscc or enterprise_id}")
    return firm


def fire(
    session: Session,
    *,
    enterprise_id: int,
    trigger: str,
    actor: Actor,
    context: Context,
    payload: Mapping[str, Any] | None = None,
    expected_version: int | None = None,
    also: Callable[[sa.Connection, FireResult], None] | None = None,
    team: bool = False,
) -> FireResult:
    """Fire one trigger on one firm as one transaction: scope and role, state and guards, version
    check, state update, hash-chained event and outbox rows — all committed, or nothing.

    Args:
        expected_version: the version the caller saw; a different current version is a conflict.
        also: more writes that belong to the same transaction (e.g. the answer kept for a retried request).
        team: set only by the evaluator pool's service (`workflow.pool.record_team_result`): a team-only
            trigger (the review result) is refused to every other caller.
    Returns:
        What happened, including the new version and the event's id and hash.
    Raises:
        UnknownTrigger, NotFound / OutOfScope, NotAllowed, InvalidTransition, GuardFailed,
        InvalidInput, VersionConflict. The session is rolled back on any of them.
    """
    MACHINE.door(trigger, team=team)
    data = clean_payload(trigger, payload)
    with _engine_unit(session, with_connection=also is not None) as (raw, conn):
        result = transition(
            raw,
            enterprise_id=enterprise_id,
            trigger=trigger,
            actor=actor,
            context=context,
            data=data,
            expected_version=expected_version,
            team=team,
        )
        if also is not None:
            assert conn is not None
            also(conn, result)
    return result


def transition(
    raw: Raw,
    *,
    enterprise_id: int,
    trigger: str,
    actor: Actor,
    context: Context,
    data: dict[str, Any],
    expected_version: int | None = None,
    team: bool = False,
) -> FireResult:
    """The work of one fire inside a transaction the caller holds and ends (`fire`, `workflow.bulk`):
    `data` already checked by `clean_payload`. Raises as `fire` does; the caller rolls back."""
    found = raw.first(_FIRM_SQL, {"firm_id": enterprise_id})
    if found is None:
        raise NotFound(f"找不到该企业 / no such enterprise: {enterprise_id}")
    firm = FirmRow(*found[:_FIRM_FIELDS])
    if not in_scope(actor, firm):
        raise OutOfScope(f"找不到该企业 / no such enterprise: {enterprise_id}")
    if expected_version is not None and firm.version != expected_version:
        raise VersionConflict(
            f"该企业已被他人更新（版本 {firm.version}，而非 {expected_version}），请刷新后重试 / "
            f"the firm changed meanwhile (version {firm.version}, not {expected_version}); reload and retry"
        )
    campaign, clock = context.campaign, context.clock
    now = clock.now()
    today = now.astimezone(clock.tz).date()
    facts = DbFacts(raw, firm=firm, campaign=campaign, today=today, payload=data, prefetched=found[_FIRM_FIELDS:])
    # The machine decides: its check names the first reason a trigger cannot fire, and the firm then moves
    # through the shared `transitions` machine, which holds the only definition of where a trigger leads.
    step = MACHINE.fire(state=State(firm.state), trigger=trigger, role=actor.role, facts=facts, team=team)
    effect_context = EffectContext(raw=raw, firm=firm, facts=facts, campaign=campaign, now=now, payload=data)
    effect = EFFECTS[trigger](effect_context)
    event: dict[str, Any] = {
        "enterprise_id": firm.id,
        "seq": firm.event_count + 1,
        "trigger": trigger,
        "actor": actor.name,
        "role": actor.role.value,
        "at": now,
        "from_state": step.source.value,
        "to_state": step.dest.value,
        "payload": {**data, **effect.record},
    }
    digest = event_hash(firm.chain_head, **event)
    values: dict[str, Any] = {
        "state": step.dest.value,
        "version": firm.version + 1,
        "event_count": event["seq"],
        "chain_head": digest,
        "updated_at": now,
        **effect.firm_values,
    }
    if step.dest is not step.source:
        values["state_since"] = now
        if step.source is State.mobilized:
            values["left_mobilized_at"] = now
    event_id = raw.move_and_append(
        ENTERPRISES,
        values,
        where={"id": firm.id, "version": firm.version},
        append=(EVENTS, {**event, "prev_hash": firm.chain_head, "hash": digest}),
        extra=_mail_rows(firm, seq=event["seq"], trigger=trigger, now=now, mails=effect.mails),
        updates=effect_context.later,
    )
    if event_id is None:
        raise VersionConflict("该企业已被他人更新，请刷新后重试 / the firm changed meanwhile; reload and retry")
    result = FireResult(
        enterprise_id=firm.id,
        trigger=trigger,
        from_state=step.source,
        to_state=step.dest,
        version=firm.version + 1,
        event_id=event_id,
        event_hash=digest,
        at=now,
        record=effect.record,
        mails=tuple(m.kind for m in effect.mails),
    )
    return result


def record_event(
    conn: sa.Connection,
    *,
    enterprise_id: int,
    kind: str,
    actor: Actor,
    at: dt.datetime,
    payload: Mapping[str, Any],
) -> int:
    """Append a record that is not a transition (a hazard reported, a file uploaded, a team drawn, …) to the
    firm's hash chain inside the caller's write transaction: the firm stays in its state, its version goes up
    (its record changed) and `dabiao audit verify` covers the event like any other.

    Args:
        kind: what happened, in the `trigger` column; never a trigger's name, so a replay of the chain can tell
            records from transitions.
    Returns:
        The event's id.
    Raises:
        NotFound when there is no such firm; VersionConflict when the firm changed under the caller.
    """
    if kind in TRIGGERS or not 0 < len(kind) <= 40:
        raise ValueError(f"not a record kind: {kind!r}")
    firm = conn.execute(
        sa.select(ENTERPRISES.c.state, ENTERPRISES.c.version, ENTERPRISES.c.event_count, ENTERPRISES.c.chain_head)
        .where(ENTERPRISES.c.id == enterprise_id)
        .with_for_update()
    ).first()
    if firm is None:
        raise NotFound(f"找不到该企业 / no such enterprise: {enterprise_id}")
    event: dict[str, Any] = {
        "enterprise_id": enterprise_id,
        "seq": firm.event_count + 1,
        "trigger": kind,
        "actor": actor.name,
        "role": actor.role.value,
        "at": at,
        "from_state": firm.state,
        "to_state": firm.state,
        "payload": dict(payload),
    }
    digest = event_hash(firm.chain_head, **event)
    moved = conn.execute(
        sa.update(ENTERPRISES)
        .where(ENTERPRISES.c.id == enterprise_id, ENTERPRISES.c.version == firm.version)
        .values(version=firm.version + 1, event_count=event["seq"], chain_head=digest, updated_at=at)
    )
    if moved.rowcount != 1:
        raise VersionConflict("该企业已被他人更新，请刷新后重试 / the firm changed meanwhile; reload and retry")
    inserted = conn.execute(sa.insert(EVENTS).values(**event, prev_hash=firm.chain_head, hash=digest))
    new_id = inserted.inserted_primary_key
    assert new_id is not None
    return int(new_id[0])


def _mail_rows(
    firm: FirmRow, *, seq: int, trigger: str, now: dt.datetime, mails: list[Mail]
) -> list[tuple[sa.Table, dict[str, Any], str]]:
    """The outbox rows of a transition's mail (table, row, unique key): sent after commit by the dispatcher."""
    if not mails:
        return []
    base = {
        "enterprise_name": firm.name,
        "uscc": firm.uscc,
        "district_name": firm.district_name,
        "principal": firm.principal,
        "trigger": trigger,
        "at": now.isoformat(),
    }
    return [
        (
            OUTBOX,
            {
                "dedupe_key": f"transition:{firm.id}:{seq}:{mail.kind}",
                "kind": mail.kind,
                "audience": mail.audience,
                "enterprise_id": firm.id,
                "district_code": firm.district_code,
                "to_address": firm.email,
                "lang": firm.lang,
                "context": {**base, **mail.context},
                "status": OutboxStatus.pending,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            },
            "dedupe_key",
        )
        for mail in mails
    ]


def allowed_triggers(conn: sa.Connection, *, firm: sa.Row[Any], role: Role, context: Context) -> list[str]:
    """The triggers `role` could fire on this firm right now (every guard passes, no payload needed)."""
    clock = context.clock
    facts = DbFacts(
        conn, firm=firm, campaign=context.campaign, today=clock.now().astimezone(clock.tz).date(), payload={}
    )
    return MACHINE.allowed(state=State(firm.state), role=role, facts=facts)
