"""Referral to the local government (属地政府) of key-field firms with no hope of compliance. The plan:
要结合"危污乱散低"出清提升行动，将达标无望的重点监管领域企业名单按流程报送属地政府 — the districts (各地) report.

The sweep only *suggests* candidates to their district (a worklist item, `referral_suggestions`); a referral
exists once a district bureau proposes it; the city bureau confirms or declines it; only confirmed ones reach
the local government, which acknowledges them. A proposal whose firm has moved on (started, applied, been
certified or closed) is withdrawn by the sweep, and a confirmation whose grounds no longer hold is refused.
Each step is recorded on the referral and as an event in the firm's hash chain."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from deadlines.export import Column
from deadlines.sql import concat, insert_statement, json_object, run_insert, text_value
from states import (
    STATE_LABELS,
    GuardFailed,
    InvalidInput,
    InvalidTransition,
    NotAllowed,
    NotFound,
    Role,
    State,
)
from workflow import labels
from workflow.actors import DELIVERED_REFERRALS, Actor, require, require_firm, scope
from workflow.campaign import Campaign
from workflow.clock import SHANGHAI, Clock
from workflow.context import Context
from workflow.db import begin_write
from workflow.driver import insert_ignore
from workflow.engine import load_firm, record_event
from workflow.labels import zh
from workflow.listing import Order, order_by, parse_order
from workflow.models import (
    ApplicationStatus,
    HazardStatus,
    OutboxStatus,
    ReferralStatus,
    ReferralSuggestionStatus,
    UTCDateTime,
)
from workflow.tables import (
    APPLICATIONS,
    DISTRICTS,
    ENTERPRISES,
    HAZARDS,
    OUTBOX,
    REFERRAL_SUGGESTIONS,
    REFERRALS,
    SWEEP_CHANGES,
    USERS,
)

E, R, C, S = ENTERPRISES, REFERRALS, SWEEP_CHANGES, REFERRAL_SUGGESTIONS
GROUNDS = ("non_participating", "failed_review_twice", "major_hazard_overdue")
GROUNDS_LABELS = zh(labels.GROUNDS)
STATUS_LABELS = zh(labels.REFERRAL_STATUSES)
ACTIVE = (ReferralStatus.proposed, ReferralStatus.confirmed, ReferralStatus.acknowledged)
# What a local government ever sees: referrals the city has confirmed.
DELIVERED = DELIVERED_REFERRALS  # what the local government sees (workflow.actors)
SUGGESTION_LABELS = {"open": "待辖区研判", "proposed": "已提出移交", "lapsed": "理由已不成立"}
SWEEP_ACTOR = Actor("逾期扫描 / deadline sweep", Role.city_bureau)
COLUMNS = ["dedupe_key", "enterprise_id", "district_code", "grounds", "status", "detail", "suggested_at"]
# A firm in the evaluation (applied, verified, reviewed), certified or closed has moved on from every ground.
MOVED_ON = ("applied", "verified", "reviewed", "certified", "closed")


# ---- the grounds, as SQL over the record ---------------------------------------------------------


def _key_field_firm_open() -> list[sa.ColumnElement[bool]]:
    return [E.c.key_field == sa.true(), E.c.state.not_in(("closed", "certified"))]


def _no_active_referral() -> sa.ColumnElement[bool]:
    return ~sa.exists(sa.select(1).where(R.c.enterprise_id == E.c.id, R.c.status.in_(ACTIVE)))


def _failed_reviews(campaign: Campaign) -> sa.Subquery:
    return (
        sa.select(APPLICATIONS.c.enterprise_id.label("enterprise_id"))
        .where(APPLICATIONS.c.status == ApplicationStatus.review_failed)
        .group_by(APPLICATIONS.c.enterprise_id)
        .having(sa.func.count() >= campaign.deadlines.referral.failed_reviews)
        .subquery()
    )


def _overdue_major_hazards(lo: Any, hi: Any) -> sa.Subquery:
    """Open major hazards with lo < deadline <= hi (hi: today less the campaign's limit, less a day), per firm."""
    return (
        sa.select(HAZARDS.c.enterprise_id.label("enterprise_id"), sa.func.min(HAZARDS.c.id).label("hazard_id"))
        .where(
            HAZARDS.c.severity == "major",
            HAZARDS.c.status == HazardStatus.open,
            HAZARDS.c.deadline > lo,
            HAZARDS.c.deadline <= hi,
        )
        .group_by(HAZARDS.c.enterprise_id)
        .subquery()
    )


def _key_milestone(campaign: Campaign) -> dt.date | None:
    dates = [m.date for m in campaign.milestones if m.applies_to == "key_field"]
    return min(dates) if dates else None


def _touched_firms() -> sa.ColumnElement[bool]:
    """Firms that changed since the last sweep, or whose hazards or applications did (see sweep_changes)."""
    as_of = sa.bindparam("as_of", type_=sa.Date)

    def changed(kind: str) -> sa.Select[Any]:
        return sa.select(C.c.subject_id).where(C.c.claimed_for == as_of, C.c.subject_kind == kind)

    return sa.or_(
        E.c.id.in_(changed("enterprise")),
        E.c.id.in_(sa.select(HAZARDS.c.enterprise_id).where(HAZARDS.c.id.in_(changed("hazard")))),
        E.c.id.in_(sa.select(APPLICATIONS.c.enterprise_id).where(APPLICATIONS.c.id.in_(changed("application")))),
    )


class PreparedReferrals:
    """The sweep's referral suggestions, built once: for each district, every key-field firm whose grounds
    hold today and which has no referral under way — a worklist item of the district, never a referral.
    One suggestion per firm and grounds (and hazard) ever. Like the rules, an ordinary day looks only at
    firms whose grounds start to hold today by the calendar, and at firms that changed."""

    def __init__(self, campaign: Campaign, dialect: str) -> None:
        self.milestone = _key_milestone(campaign)
        self.after_days = campaign.deadlines.referral.non_participating_after_days
        self.limit = campaign.deadlines.referral.major_hazard_overdue_days
        as_of = sa.bindparam("as_of", type_=sa.Date)
        now = sa.bindparam("now", type_=UTCDateTime())
        as_of_text = as_of if dialect == "sqlite" else sa.cast(as_of, sa.Date)

        def suggest(grounds: str, key: Any, source: sa.FromClause, *where: Any, **extra: Any) -> tuple[Any, Any]:
            detail = json_object(dialect, {"enterprise_name": E.c.name, "uscc": E.c.uscc, "as_of": as_of_text, **extra})
            select = (
                sa.select(key, E.c.id, E.c.district_code, text_value(grounds), text_value("open"), detail, now)
                .select_from(source)
                .where(*_key_field_firm_open(), _no_active_referral(), *where)
            )
            every = insert_statement(dialect, S, COLUMNS, select)
            changed = insert_statement(dialect, S, COLUMNS, select.where(_touched_firms()))
            return every, changed

        self.non_participating = suggest(
            "non_participating",
            concat("suggestion:non_participating:enterprise:", E.c.id),
            E,
            E.c.state == "mobilized",
        )
        failed = _failed_reviews(campaign)
        self.failed_reviews = suggest(
            "failed_review_twice",
            concat("suggestion:failed_review_twice:enterprise:", E.c.id),
            E.join(failed, failed.c.enterprise_id == E.c.id),
            E.c.state.not_in(MOVED_ON),
        )
        hazards = _overdue_major_hazards(sa.bindparam("lo", type_=sa.Date), sa.bindparam("hi", type_=sa.Date))
        self.major_hazards = suggest(
            "major_hazard_overdue",
            concat("suggestion:major_hazard_overdue:hazard:", hazards.c.hazard_id),
            E.join(hazards, hazards.c.enterprise_id == E.c.id),
            E.c.state.not_in(MOVED_ON),
            hazard_id=hazards.c.hazard_id,
        )

    def apply(self, conn: sa.Connection, *, as_of: dt.date, now: dt.datetime, full: bool, changes: bool = True) -> int:
        params = {"as_of": as_of, "now": now}
        # a major hazard is past the limit once its deadline lies before today less the limit
        last_deadline = as_of - dt.timedelta(days=self.limit + 1)
        every_hazard = {**params, "lo": dt.date(1900, 1, 1), "hi": last_deadline}
        runs: list[tuple[Any, dict[str, Any]]] = []
        days_past = None if self.milestone is None else (as_of - self.milestone).days
        if full:
            if days_past is not None and days_past >= self.after_days:
                runs.append((self.non_participating[0], params))
            runs += [(self.failed_reviews[0], params), (self.major_hazards[0], every_hazard)]
        else:
            if days_past == self.after_days:
                runs.append((self.non_participating[0], params))
            elif days_past is not None and days_past > self.after_days and changes:
                runs.append((self.non_participating[1], params))
            runs.append(
                (self.major_hazards[0], {**params, "lo": last_deadline - dt.timedelta(days=1), "hi": last_deadline})
            )
            if changes:
                runs += [(self.failed_reviews[1], params), (self.major_hazards[1], every_hazard)]
        return sum(run_insert(conn, stmt, p) for stmt, p in runs)


def _holds(campaign: Campaign, grounds: str, as_of: dt.date) -> sa.ColumnElement[bool]:
    """Whether the grounds hold today, over a row of `enterprises`: the firm is a key-field firm still in the
    campaign that has not moved on (started, for non-participation; applied, been certified or closed, for
    every ground), and the ground itself holds."""
    base = [*_key_field_firm_open()]
    if grounds == "non_participating":
        milestone = _key_milestone(campaign)
        if milestone is None or as_of <= milestone:
            return sa.false()
        return sa.and_(*base, E.c.state == "mobilized")
    if grounds == "failed_review_twice":
        failed = _failed_reviews(campaign)
        return sa.and_(*base, E.c.state.not_in(MOVED_ON), E.c.id.in_(sa.select(failed.c.enterprise_id)))
    if grounds == "major_hazard_overdue":
        limit = campaign.deadlines.referral.major_hazard_overdue_days
        hazards = _overdue_major_hazards(dt.date(1900, 1, 1), as_of - dt.timedelta(days=limit + 1))
        return sa.and_(*base, E.c.state.not_in(MOVED_ON), E.c.id.in_(sa.select(hazards.c.enterprise_id)))
    raise InvalidInput(f"移交理由须为 {', '.join(GROUNDS)} 之一 / grounds must be one of {', '.join(GROUNDS)}")


def grounds_hold(conn: sa.Connection, *, campaign: Campaign, firm_id: int, grounds: str, as_of: dt.date) -> bool:
    """Whether the campaign's grounds hold for this firm today."""
    query = sa.select(E.c.id).where(E.c.id == firm_id, _holds(campaign, grounds, as_of))
    return conn.execute(query).first() is not None


def _local_day(value: dt.datetime) -> str:
    return value.astimezone(SHANGHAI).date().isoformat()


def stale_reasons(firm: Any, grounds: str) -> tuple[str, str]:
    """Why the grounds no longer hold, naming the firm's current state and since when (Chinese, English)."""
    state = str(firm.state)
    label = STATE_LABELS[State(state)][0]
    since = _local_day(firm.state_since)
    ground = GROUNDS_LABELS.get(grounds, grounds)
    if state == "mobilized" or (grounds != "non_participating" and state not in MOVED_ON):
        cause = "重大隐患已不再逾期未整改" if grounds == "major_hazard_overdue" else "理由已不成立"
        cause_en = "no major hazard is overdue any more" if grounds == "major_hazard_overdue" else "they lapsed"
        return (
            f"“{ground}”的移交理由已不成立：{cause}（企业当前状态“{label}”，自 {since} 起）",
            f"the grounds {grounds} no longer hold: {cause_en} (the firm is {state} since {since})",
        )
    return (
        f"“{ground}”的移交理由已不成立：企业自 {since} 起为“{label}”",
        f"the grounds {grounds} no longer hold: the firm is {state} since {since}",
    )


def stale_reason(firm: Any, grounds: str) -> str:
    return " / ".join(stale_reasons(firm, grounds))


# ---- the sweep follows the firms -----------------------------------------------------------------


def follow_firms(conn: sa.Connection, *, campaign: Campaign, as_of: dt.date, now: dt.datetime) -> dict[str, int]:
    """The sweep's second half: proposals whose grounds no longer hold are withdrawn (an event in the firm's
    chain and a note to the proposer), and open suggestions whose grounds no longer hold lapse."""
    withdrawn = 0
    for grounds in GROUNDS:
        holds = _holds(campaign, grounds, as_of)
        stale = conn.execute(
            sa.select(R.c.id, R.c.enterprise_id, R.c.district_code, R.c.proposed_by, R.c.proposer_user_id)
            .join(E, E.c.id == R.c.enterprise_id)
            .where(R.c.status == ReferralStatus.proposed, R.c.grounds == grounds, ~holds)
            .order_by(R.c.id)
        ).all()
        for ref in stale:
            firm = load_firm(conn, enterprise_id=ref.enterprise_id)
            reason = stale_reason(firm, grounds)
            reason_zh, reason_en = stale_reasons(firm, grounds)
            done = conn.execute(
                sa.update(R)
                .where(R.c.id == ref.id, R.c.status == ReferralStatus.proposed)
                .values(status=ReferralStatus.withdrawn, withdrawn_at=now, withdrawal_reason=reason)
            ).rowcount
            if not done:
                continue
            record_event(
                conn,
                enterprise_id=firm.id,
                kind="referral_withdrawn",
                actor=SWEEP_ACTOR,
                at=now,
                payload={"referral_id": ref.id, "grounds": grounds, "reason": reason},
            )
            _note_to_proposer(
                conn, campaign=campaign, ref=ref, firm=firm, grounds=grounds, reasons=(reason_zh, reason_en), now=now
            )
            withdrawn += 1
        conn.execute(
            sa.update(S)
            .where(
                S.c.status == ReferralSuggestionStatus.open,
                S.c.grounds == grounds,
                S.c.enterprise_id.in_(sa.select(E.c.id).where(E.c.id == S.c.enterprise_id, ~holds)),
            )
            .values(status=ReferralSuggestionStatus.lapsed, closed_at=now)
        )
    return {"withdrawn": withdrawn}


def _note_to_proposer(
    conn: sa.Connection,
    *,
    campaign: Campaign,
    ref: Any,
    firm: Any,
    grounds: str,
    reasons: tuple[str, str],
    now: dt.datetime,
) -> None:
    user = None
    if ref.proposer_user_id is not None:
        user = conn.execute(sa.select(USERS.c.id, USERS.c.lang).where(USERS.c.id == ref.proposer_user_id)).first()
    district = campaign.district(ref.district_code)
    insert_ignore(
        conn,
        OUTBOX,
        [
            {
                "dedupe_key": f"referral:{ref.id}:withdrawn",
                "kind": "referral_withdrawn",
                "audience": "user" if user is not None else "district_bureau",
                "enterprise_id": firm.id,
                "district_code": ref.district_code,
                "to_address": None,
                "lang": user.lang if user is not None else "zh-CN",
                "context": {
                    "enterprise_name": firm.name,
                    "uscc": firm.uscc,
                    "district_name": district.name if district else ref.district_code,
                    "grounds": grounds,
                    "referral_id": ref.id,
                    "proposed_by": ref.proposed_by,
                    "reason": reasons[0],
                    "reason_en": reasons[1],
                    **({"user_id": user.id} if user is not None else {}),
                },
                "status": OutboxStatus.pending,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
        ],
        key="dedupe_key",
    )


# ---- the steps people take ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferralRead:
    id: int
    enterprise_id: int
    uscc: str
    enterprise_name: str
    district_code: str
    district_name: str
    local_government: str
    grounds: str
    status: str
    proposed_at: dt.datetime
    proposed_by: str
    decided_at: dt.datetime | None
    decided_by: str | None
    decision_note: str | None
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    state: str  # the firm's current state, and since when
    state_since: dt.datetime
    withdrawn_at: dt.datetime | None = None
    withdrawal_reason: str | None = None

    @property
    def state_label(self) -> str:
        return STATE_LABELS[State(self.state)][0]

    def as_json(self) -> dict[str, Any]:
        out = {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in self.__dict__.items()}
        out["grounds_label"] = GROUNDS_LABELS.get(self.grounds, self.grounds)
        out["status_label"] = STATUS_LABELS.get(self.status, self.status)
        out["state_label"] = self.state_label
        return out


def _visible(actor: Actor) -> sa.ColumnElement[bool]:
    match actor.role:
        case Role.city_bureau | Role.support_center:
            return scope(actor, "referral")
        case Role.district_bureau | Role.local_government if actor.district_code:
            # only what the city confirmed reaches the local government, whatever it filters by
            return scope(actor, "referral")
        case _:
            raise NotAllowed("无权查看移交名单 / this role may not see referrals")


# a referral's statuses in the order it passes through them, then its ends
REFERRAL_PATH = ("proposed", "confirmed", "acknowledged", "declined", "withdrawn")
# the referral list's sortable columns, as shown; ties by id
REFERRAL_SORTS: dict[str, tuple[sa.ColumnElement[Any], ...]] = {
    "name": (E.c.name,),
    "uscc": (E.c.uscc,),
    "district": (R.c.district_code,),  # 属地政府: one per district
    "grounds": (sa.case({g: n for n, g in enumerate(labels.GROUNDS)}, value=R.c.grounds, else_=99),),
    "status": (sa.case({s: n for n, s in enumerate(REFERRAL_PATH)}, value=R.c.status, else_=99),),
    "state": (sa.case({s.value: n for n, s in enumerate(State)}, value=E.c.state, else_=99),),
    "proposed_at": (R.c.proposed_at,),
}


def referral_order(sort: str | None) -> Order:
    """`column` or `-column` of REFERRAL_SORTS (by district when empty); any other is refused in words."""
    return parse_order(sort, allowed=list(REFERRAL_SORTS), default="district")


def _referral_where(actor: Actor, district: str | None, status: str | None) -> list[sa.ColumnElement[bool]]:
    where = [_visible(actor)]
    if district:
        where.append(R.c.district_code == district)
    if status:
        where.append(R.c.status == status)
    return where


def count_referrals(
    conn: sa.Connection, *, actor: Actor, district: str | None = None, status: str | None = None
) -> int:
    query = sa.select(sa.func.count()).select_from(R).join(E, E.c.id == R.c.enterprise_id)
    return int(conn.execute(query.where(*_referral_where(actor, district, status))).scalar_one())


def list_referrals(
    conn: sa.Connection,
    *,
    actor: Actor,
    campaign: Campaign,
    district: str | None = None,
    status: str | None = None,
    order: Order | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[ReferralRead]:
    """The referrals the actor may see, by district then proposal unless `order` names a column of
    REFERRAL_SORTS; `limit`/`offset` give one page."""
    keys = [R.c.district_code, R.c.id] if order is None else [*REFERRAL_SORTS[order.key], R.c.id]
    query = (
        sa.select(
            R,
            E.c.uscc,
            E.c.name.label("enterprise_name"),
            E.c.state.label("firm_state"),
            E.c.state_since,
            DISTRICTS.c.name.label("district_name"),
        )
        .join(E, E.c.id == R.c.enterprise_id)
        .join(DISTRICTS, DISTRICTS.c.code == R.c.district_code)
        .where(*_referral_where(actor, district, status))
        .order_by(*order_by(keys, descending=order is not None and order.descending))
        .limit(limit)
        .offset(offset or None)
    )
    out = []
    for row in conn.execute(query):
        d = campaign.district(row.district_code)
        out.append(
            ReferralRead(
                id=row.id,
                enterprise_id=row.enterprise_id,
                uscc=row.uscc,
                enterprise_name=row.enterprise_name,
                district_code=row.district_code,
                district_name=row.district_name,
                local_government=d.local_government if d else "",
                grounds=row.grounds,
                status=row.status,
                proposed_at=row.proposed_at,
                proposed_by=row.proposed_by,
                decided_at=row.decided_at,
                decided_by=row.decided_by,
                decision_note=row.decision_note,
                acknowledged_at=row.acknowledged_at,
                acknowledged_by=row.acknowledged_by,
                state=row.firm_state,
                state_since=row.state_since,
                withdrawn_at=row.withdrawn_at,
                withdrawal_reason=row.withdrawal_reason,
            )
        )
    return out


@dataclass(frozen=True)
class SuggestionRead:
    """A candidate the sweep suggests to the district: the grounds and the firm's current state."""

    id: int
    enterprise_id: int
    uscc: str
    enterprise_name: str
    district_code: str
    grounds: str
    status: str
    suggested_at: dt.datetime
    state: str
    state_since: dt.datetime

    def as_json(self) -> dict[str, Any]:
        out = {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in self.__dict__.items()}
        out["grounds_label"] = GROUNDS_LABELS.get(self.grounds, self.grounds)
        out["status_label"] = SUGGESTION_LABELS.get(self.status, self.status)
        out["state_label"] = STATE_LABELS[State(self.state)][0]
        return out


def list_suggestions(
    conn: sa.Connection, *, actor: Actor, district: str | None = None, status: str | None = "open", limit: int = 500
) -> list[SuggestionRead]:
    """The sweep's suggestions (open ones by default): a district bureau sees its own, the city all."""
    match actor.role:
        case Role.city_bureau | Role.support_center:
            where: list[sa.ColumnElement[bool]] = [scope(actor, "referral_suggestion")]
            if district:
                where.append(S.c.district_code == district)
        case Role.district_bureau if actor.district_code:
            where = [scope(actor, "referral_suggestion")]
        case _:
            raise NotAllowed("无权查看移交建议 / this role may not see referral suggestions")
    if status:
        if status not in SUGGESTION_LABELS:
            raise InvalidInput(f"未知状态 {status} / unknown status: {status}")
        where.append(S.c.status == status)
    rows = conn.execute(
        sa.select(S, E.c.uscc, E.c.name.label("enterprise_name"), E.c.state.label("firm_state"), E.c.state_since)
        .join(E, E.c.id == S.c.enterprise_id)
        .where(*where)
        .order_by(S.c.suggested_at, S.c.id)
        .limit(limit)
    )
    return [
        SuggestionRead(
            id=r.id,
            enterprise_id=r.enterprise_id,
            uscc=r.uscc,
            enterprise_name=r.enterprise_name,
            district_code=r.district_code,
            grounds=r.grounds,
            status=r.status,
            suggested_at=r.suggested_at,
            state=r.firm_state,
            state_since=r.state_since,
        )
        for r in rows
    ]


def referral_district(conn: sa.Connection, *, referral_id: int) -> str | None:
    """The district a referral goes to (None for an unknown referral)."""
    value = conn.execute(sa.select(REFERRALS.c.district_code).where(REFERRALS.c.id == referral_id)).scalar()
    return None if value is None else str(value)


def _note(note: str | None) -> str | None:
    if note is not None and len(note) > 2000:
        raise InvalidInput("说明超过2000字 / the note is longer than 2000 characters")
    return note.strip() if note else None


def propose_referral(
    session: Session,
    *,
    enterprise_id: int,
    grounds: str,
    actor: Actor,
    context: Context,
    note: str | None = None,
) -> int:
    """A district bureau proposes a key-field firm of its own district; the grounds must hold today."""
    campaign, clock = context.campaign, context.clock
    if actor.role is not Role.district_bureau:
        raise NotAllowed("只有辖市（区）应急管理局可提出移交 / only a district bureau proposes a referral")
    if grounds not in GROUNDS:
        raise InvalidInput(f"移交理由须为 {', '.join(GROUNDS)} 之一 / grounds must be one of {', '.join(GROUNDS)}")
    note = _note(note)
    now = clock.now()
    as_of = now.astimezone(clock.tz).date()
    begin_write(session)
    try:
        conn = session.connection()
        firm = require_firm(conn, actor, load_firm(conn, enterprise_id=enterprise_id))
        if not firm.key_field:
            raise InvalidInput("只有重点监管领域企业可移交属地政府 / only key-field firms are referred")
        if not grounds_hold(conn, campaign=campaign, firm_id=firm.id, grounds=grounds, as_of=as_of):
            label = STATE_LABELS[State(firm.state)][0]
            raise InvalidInput(
                f"该企业目前不符合“{GROUNDS_LABELS[grounds]}”的移交条件（当前状态“{label}”，"
                f"自 {_local_day(firm.state_since)} 起） / the grounds {grounds} do not hold for this firm "
                f"(it is {firm.state} since {_local_day(firm.state_since)})"
            )
        active = conn.execute(sa.select(R.c.id).where(R.c.enterprise_id == firm.id, R.c.status.in_(ACTIVE))).scalar()
        if active is not None:
            raise InvalidTransition(f"该企业已有进行中的移交（#{active}） / a referral is already under way: #{active}")
        key = f"referral:{grounds}:enterprise:{firm.id}"
        if conn.execute(sa.select(R.c.id).where(R.c.dedupe_key == key)).scalar() is not None:
            key = f"{key}:{now.isoformat()}"  # proposed again by hand after a decline
        result = conn.execute(
            sa.insert(R).values(
                dedupe_key=key,
                enterprise_id=firm.id,
                district_code=firm.district_code,
                grounds=grounds,
                status=ReferralStatus.proposed,
                detail={"enterprise_name": firm.name, "uscc": firm.uscc, "as_of": as_of.isoformat(), "note": note},
                proposed_at=now,
                proposed_by=actor.name,
                proposer_user_id=actor.user_id,
            )
        )
        assert result.inserted_primary_key is not None
        referral_id = int(result.inserted_primary_key[0])
        conn.execute(
            sa.update(S)
            .where(S.c.enterprise_id == firm.id, S.c.grounds == grounds, S.c.status == ReferralSuggestionStatus.open)
            .values(status=ReferralSuggestionStatus.proposed, closed_at=now)
        )
        record_event(
            conn,
            enterprise_id=firm.id,
            kind="referral_proposed",
            actor=actor,
            at=now,
            payload={"referral_id": referral_id, "grounds": grounds, "note": note},
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return referral_id


def decide_referral(
    session: Session,
    *,
    referral_id: int,
    actor: Actor,
    context: Context,
    confirm: bool,
    note: str | None,
) -> None:
    campaign, clock = context.campaign, context.clock
    if actor.role is not Role.city_bureau:
        raise NotAllowed("只有市应急管理局可确认或不予确认移交 / only the city bureau decides a referral")
    note = _note(note)
    now = clock.now()
    begin_write(session)
    try:
        conn = session.connection()
        ref = require(conn, actor, "referral", referral_id)
        if ref.status != ReferralStatus.proposed:
            raise InvalidTransition(
                f"该移交已是“{STATUS_LABELS.get(ref.status, ref.status)}”，不能再决定 / the referral is {ref.status}"
            )
        firm = load_firm(conn, enterprise_id=ref.enterprise_id)
        as_of = now.astimezone(clock.tz).date()
        if confirm and not grounds_hold(conn, campaign=campaign, firm_id=firm.id, grounds=ref.grounds, as_of=as_of):
            raise GuardFailed("referral_grounds", "不能确认移交 / cannot confirm: " + stale_reason(firm, ref.grounds))
        record_event(
            conn,
            enterprise_id=firm.id,
            kind="referral_confirmed" if confirm else "referral_declined",
            actor=actor,
            at=now,
            payload={"referral_id": ref.id, "grounds": ref.grounds, "note": note},
        )
        conn.execute(
            sa.update(R)
            .where(R.c.id == ref.id, R.c.status == ReferralStatus.proposed)
            .values(
                status=ReferralStatus.confirmed if confirm else ReferralStatus.declined,
                decided_at=now,
                decided_by=actor.name,
                decision_note=note,
            )
        )
        if confirm:
            district = campaign.district(ref.district_code)
            insert_ignore(
                conn,
                OUTBOX,
                [
                    {
                        "dedupe_key": f"referral:{ref.id}:local_government",
                        "kind": "referral",
                        "audience": "local_government",
                        "enterprise_id": firm.id,
                        "district_code": ref.district_code,
                        "to_address": str(district.local_government_email) if district else None,
                        "lang": "zh-CN",
                        "context": {
                            "enterprise_name": firm.name,
                            "uscc": firm.uscc,
                            "district_name": district.name if district else ref.district_code,
                            "grounds": ref.grounds,
                            "note": note,
                        },
                        "status": OutboxStatus.pending,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                ],
                key="dedupe_key",
            )
        session.commit()
    except BaseException:
        session.rollback()
        raise


def confirm_referral(
    session: Session, *, referral_id: int, actor: Actor, context: Context, note: str | None = None
) -> None:
    """The city bureau confirms: the referral goes to the local government of the firm's area (outbox)."""
    decide_referral(session, referral_id=referral_id, actor=actor, context=context, confirm=True, note=note)


def decline_referral(
    session: Session, *, referral_id: int, actor: Actor, context: Context, note: str | None = None
) -> None:
    decide_referral(session, referral_id=referral_id, actor=actor, context=context, confirm=False, note=note)


REFERRAL_STEPS = {
    "confirm": ReferralStatus.confirmed,
    "decline": ReferralStatus.declined,
    "acknowledge": ReferralStatus.acknowledged,
}


def take_referral_step(
    session: Session, referral_id: int, step: str, *, actor: Actor, context: Context, note: str | None = None
) -> ReferralStatus:
    """One step on a referral by its name, as the API, the pages and the command line take it: the city
    bureau confirms or declines a proposal (with a note), the local government acknowledges a confirmed
    referral of its area. Returns the referral's new status."""
    if step not in REFERRAL_STEPS:
        raise NotFound(f"未知操作 / unknown step: {step}")
    if step == "acknowledge":
        acknowledge_referral(session, referral_id=referral_id, actor=actor, clock=context.clock)
    else:
        confirm = step == "confirm"
        decide_referral(session, referral_id=referral_id, actor=actor, context=context, confirm=confirm, note=note)
    return REFERRAL_STEPS[step]


def acknowledge_referral(session: Session, *, referral_id: int, actor: Actor, clock: Clock) -> None:
    """The local government of the referral's area acknowledges a confirmed referral."""
    if actor.role is not Role.local_government:
        raise NotAllowed("只有属地政府可签收移交 / only the local government acknowledges a referral")
    now = clock.now()
    begin_write(session)
    try:
        conn = session.connection()
        # a proposal the city has not confirmed (or declined) does not exist for the local government
        ref = require(conn, actor, "referral", referral_id)
        if ref.status != ReferralStatus.confirmed:
            raise InvalidTransition(
                f"只能签收已确认的移交（当前：{STATUS_LABELS.get(ref.status, ref.status)}） / "
                f"only a confirmed referral can be acknowledged (it is {ref.status})"
            )
        conn.execute(
            sa.update(R)
            .where(R.c.id == ref.id, R.c.status == ReferralStatus.confirmed)
            .values(status=ReferralStatus.acknowledged, acknowledged_at=now, acknowledged_by=actor.name)
        )
        record_event(
            conn,
            enterprise_id=ref.enterprise_id,
            kind="referral_acknowledged",
            actor=actor,
            at=now,
            payload={"referral_id": ref.id, "grounds": ref.grounds},
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise


REFERRAL_COLUMNS = (
    Column("序号", "No.", "number"),
    Column("统一社会信用代码", "Unified social credit code"),
    Column("企业名称", "Firm"),
    Column("辖区", "District"),
    Column("属地政府", "Local government"),
    Column("移交理由", "Grounds"),
    Column("状态", "Status"),
    Column("提出时间", "Proposed at", "datetime"),
    Column("提出人", "Proposed by"),
    Column("决定时间", "Decided at", "datetime"),
    Column("决定人", "Decided by"),
    Column("决定说明", "Decision note"),
    Column("签收时间", "Acknowledged at", "datetime"),
    Column("签收人", "Acknowledged by"),
    Column("企业当前状态", "Firm's current state"),
    Column("当前状态起始", "In this state since", "datetime"),
    Column("撤回时间", "Withdrawn at", "datetime"),
    Column("撤回原因", "Reason for withdrawal"),
)
REFERRAL_HEADERS = tuple(c.zh for c in REFERRAL_COLUMNS)


def referral_cells(n: int, r: ReferralRead, lang: str = "zh-CN", district_name: str | None = None) -> list[Any]:
    """One referral as a spreadsheet row in one language (times typed; the writer shows them in local time)."""
    return [
        n,
        r.uscc,
        r.enterprise_name,
        district_name or r.district_name,
        r.local_government,
        labels.name(labels.GROUNDS, r.grounds, lang),
        labels.name(labels.REFERRAL_STATUSES, r.status, lang),
        r.proposed_at,
        r.proposed_by,
        r.decided_at,
        r.decided_by or "",
        r.decision_note or "",
        r.acknowledged_at,
        r.acknowledged_by or "",
        STATE_LABELS[State(r.state)][0 if lang == "zh-CN" else 1],
        r.state_since,
        r.withdrawn_at,
        r.withdrawal_reason or "",
    ]
