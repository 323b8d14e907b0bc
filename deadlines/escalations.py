"""Escalations as officials see them: listed per district (or city-wide), acknowledged by the office
they were escalated to. They resolve by themselves in the sweep when the firm moves on.

The ladder writes one row per subject and step (firm, district, center, city). An office works them as
cases: one firm × one rule, at the highest step the case has reached, counted in days overdue from its
earliest deadline, and it sees only the steps it acts on (`ACTS_ON`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from states import InvalidInput, InvalidTransition, NotAllowed, Role
from workflow.actors import Actor, require, scope
from workflow.clock import Clock
from workflow.db import begin_write
from workflow.labels import RULES, STEPS, zh
from workflow.models import EscalationStatus
from workflow.tables import DISTRICTS, ENTERPRISES, ESCALATIONS

X = ESCALATIONS
STATUSES = tuple(s.value for s in EscalationStatus)
STEP_LABELS = zh(STEPS)
RULE_LABELS = zh(RULES)
LEVELS = ("firm", "district", "center", "city")  # the ladder from the bottom up (deadlines/rules.py STEPS)

# The steps each office acts on: a district bureau the overdue notices to its firms and what reached it, the
# support center what was sent to it (重点监管领域企业…由市应急保障中心负责进行线上审核), the city bureau what
# reached the city. No step of the ladder reaches a local government: what is sent to it are referrals.
ACTS_ON: dict[Role, tuple[str, ...]] = {
    Role.district_bureau: ("firm", "district"),
    Role.support_center: ("center",),
    Role.city_bureau: ("city",),
    Role.local_government: (),
}
CASE_SORTS = ("days", "firm", "district", "rule")
CASE_STATUSES = STATUSES
BATCH_LIMIT = 500


def _scope(actor: Actor) -> sa.ColumnElement[bool]:
    if actor.role in (Role.city_bureau, Role.support_center) or (
        actor.role is Role.district_bureau and actor.district_code
    ):
        return scope(actor, "escalation")
    raise NotAllowed("无权查看督办事项 / this role may not see escalations")


def list_escalations(
    conn: sa.Connection,
    *,
    actor: Actor,
    district: str | None = None,
    status: str | None = None,
    step: str | None = None,
    rule: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"状态须为 {', '.join(STATUSES)} 之一 / status must be one of {', '.join(STATUSES)}")
    query = (
        sa.select(
            X,
            ENTERPRISES.c.uscc,
            ENTERPRISES.c.name.label("enterprise_name"),
            DISTRICTS.c.name.label("district_name"),
        )
        .join(ENTERPRISES, ENTERPRISES.c.id == X.c.enterprise_id)
        .join(DISTRICTS, DISTRICTS.c.code == X.c.district_code)
        .where(_scope(actor))
        .order_by(X.c.id)
    )
    for column, value in ((X.c.district_code, district), (X.c.status, status), (X.c.step, step), (X.c.rule, rule)):
        if value is not None:
            query = query.where(column == value)
    if limit is not None:
        query = query.limit(limit)
    return [
        {
            "id": r.id,
            "rule": r.rule,
            "rule_label": RULE_LABELS.get(r.rule, r.rule),
            "subject_kind": r.subject_kind,
            "subject_id": r.subject_id,
            "enterprise_id": r.enterprise_id,
            "uscc": r.uscc,
            "enterprise_name": r.enterprise_name,
            "district_code": r.district_code,
            "district_name": r.district_name,
            "step": r.step,
            "step_label": STEP_LABELS.get(r.step, r.step),
            "deadline": r.deadline.isoformat(),
            "days_overdue": r.days_overdue,
            "status": r.status,
            "created_at": r.created_at.isoformat(),
            "acknowledged_at": r.acknowledged_at.isoformat() if r.acknowledged_at else None,
            "acknowledged_by": r.acknowledged_by,
            "resolved_at": r.resolved_at.isoformat() if r.resolved_at else None,
        }
        for r in conn.execute(query)
    ]


def _not_for(step: str) -> InvalidTransition:
    """An escalation at a step another office acknowledges (the caller may acknowledge, just not this one)."""
    office = {"firm": "辖市（区）应急管理局", "district": "辖市（区）应急管理局", "center": "市应急保障中心"}
    office_en = {"firm": "the district bureau", "district": "the district bureau", "center": "the support center"}
    return InvalidTransition(
        f"“{STEP_LABELS.get(step, step)}”的督办事项由{office.get(step, '市应急管理局')}签收"
        f" / {office_en.get(step, 'the city bureau')} acknowledges this step ({step})"
    )


def _acting(actor: Actor) -> tuple[str, ...]:
    levels = ACTS_ON.get(actor.role, ())
    if not levels or (actor.role is Role.district_bureau and not actor.district_code):
        raise NotAllowed("只有督办事项所到的部门可签收 / only the office an escalation reached acknowledges it")
    return levels


def acknowledge_escalation(session: Session, *, escalation_id: int, actor: Actor, clock: Clock) -> dt.datetime:
    """The office an escalation reached takes note of it, at the steps it acts on (`ACTS_ON`): a district
    bureau its own district's firm and district steps, the support center the steps sent to it, the city
    bureau the city steps. A resolved escalation needs no acknowledgement."""
    levels = _acting(actor)
    now = clock.now()
    begin_write(session)
    try:
        conn = session.connection()
        row = require(conn, actor, "escalation", escalation_id)
        if row.step not in levels:
            raise _not_for(row.step)
        if row.status != EscalationStatus.open:
            raise InvalidTransition(f"该督办事项已是“{row.status}” / the escalation is already {row.status}")
        conn.execute(
            sa.update(X)
            .where(X.c.id == row.id, X.c.status == EscalationStatus.open)
            .values(status=EscalationStatus.acknowledged, acknowledged_at=now, acknowledged_by=actor.name)
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return now


# ---- cases: one firm × one rule, at the steps the office acts on ---------------------------------


@dataclass(frozen=True)
class Case:
    """The escalations of one firm under one rule, as one office works them."""

    enterprise_id: int
    rule: str
    uscc: str
    enterprise_name: str
    district_code: str
    district_name: str
    level: str  # the highest step reached (of the unresolved rows; of all when every one is resolved)
    deadline: dt.date  # the earliest deadline missed
    days_overdue: int  # from that deadline to today
    subjects: int  # hazards or applications behind the case (1 for a firm's own duty)
    status: str  # of the office's own steps: open while one is open, acknowledged, resolved when all are
    acknowledged_by: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "enterprise_id": self.enterprise_id,
            "rule": self.rule,
            "rule_label": RULE_LABELS.get(self.rule, self.rule),
            "uscc": self.uscc,
            "enterprise_name": self.enterprise_name,
            "district_code": self.district_code,
            "district_name": self.district_name,
            "level": self.level,
            "level_label": STEP_LABELS.get(self.level, self.level),
            "deadline": self.deadline.isoformat(),
            "days_overdue": self.days_overdue,
            "subjects": self.subjects,
            "status": self.status,
            "acknowledged_by": self.acknowledged_by,
        }


@dataclass(frozen=True)
class CasePage:
    total: int
    items: list[Case]


@dataclass(frozen=True)
class CaseOutcome:
    """What a batch 签收 did to one case: `acknowledged` (with how many steps) or refused with the reason."""

    enterprise_id: int
    rule: str
    enterprise_name: str | None
    outcome: str  # acknowledged / already / refused
    steps: int
    message: str

    def as_json(self) -> dict[str, Any]:
        return {
            "enterprise_id": self.enterprise_id,
            "rule": self.rule,
            "rule_label": RULE_LABELS.get(self.rule, self.rule),
            "enterprise_name": self.enterprise_name,
            "outcome": self.outcome,
            "steps": self.steps,
            "message": self.message,
        }


_RANK = sa.case({step: n for n, step in enumerate(LEVELS)}, value=X.c.step, else_=0)


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.func.sum(sa.case((condition, 1), else_=0))


def _day(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def _top_step(enterprise_id: Any, rule: Any) -> sa.ColumnElement[Any]:
    """The rank in LEVELS of the highest step a case has reached: of its unresolved rows, of all when every
    one is resolved (a probe of the firm's escalations)."""
    reached = X.alias("reached")
    same_case = [reached.c.enterprise_id == enterprise_id, reached.c.rule == rule]
    rank = sa.case({step: n for n, step in enumerate(LEVELS)}, value=reached.c.step, else_=0)
    return sa.func.coalesce(
        sa.select(sa.func.max(rank)).where(*same_case, reached.c.status != EscalationStatus.resolved).scalar_subquery(),
        sa.select(sa.func.max(rank)).where(*same_case).scalar_subquery(),
    )


def list_cases(
    conn: sa.Connection,
    *,
    actor: Actor,
    as_of: dt.date,
    district: str | None = None,
    status: str | None = EscalationStatus.open,
    level: str | None = None,
    rule: str | None = None,
    sort: str = "days",
    descending: bool = False,
    limit: int = 200,
    offset: int = 0,
) -> CasePage:
    """The cases of the actor's scope that reach a step it acts on, one row per firm × rule, in one grouped
    query over the escalations (no loop over rows): sorted by days overdue (most overdue first), firm,
    district or rule. A local government acts on no step and sees none."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"状态须为 {', '.join(STATUSES)} 之一 / status must be one of {', '.join(STATUSES)}")
    if level is not None and level not in LEVELS:
        raise InvalidInput(f"督办层级须为 {', '.join(LEVELS)} 之一 / level must be one of {', '.join(LEVELS)}")
    if sort not in CASE_SORTS:
        raise InvalidInput(f"排序须为 {', '.join(CASE_SORTS)} 之一 / sort must be one of {', '.join(CASE_SORTS)}")
    levels = ACTS_ON.get(actor.role, ())
    if actor.role not in ACTS_ON:
        raise NotAllowed("无权查看督办事项 / this role may not see escalations")
    if not levels:
        return CasePage(0, [])
    # The office's own rows decide which cases it sees, their status, deadline and subjects; only the page's
    # cases then look up the highest step reached (one probe of the firm's escalations each).
    live = X.c.status != EscalationStatus.resolved
    where: list[sa.ColumnElement[bool]] = [_scope(actor), X.c.step.in_(levels)]
    for column, value in ((X.c.district_code, district), (X.c.rule, rule)):
        if value is not None:
            where.append(column == value)
    if status == EscalationStatus.open:
        where.append(X.c.status == EscalationStatus.open)
    elif status == EscalationStatus.acknowledged:
        where.append(live)
    n_open = _count(X.c.status == EscalationStatus.open)
    n_ack = _count(X.c.status == EscalationStatus.acknowledged)
    # Open cases are read from the covering index ix_escalations_cases alone (nobody has signed them yet).
    signed = sa.null() if status == EscalationStatus.open else sa.func.max(X.c.acknowledged_by)
    grouped = (
        sa.select(
            X.c.enterprise_id,
            X.c.rule,
            sa.func.min(X.c.deadline).label("deadline"),
            n_open.label("n_open"),
            n_ack.label("n_ack"),
            signed.label("acknowledged_by"),
        )
        .where(*where)
        .group_by(X.c.enterprise_id, X.c.rule)
    )
    if status == EscalationStatus.acknowledged:
        grouped = grouped.having(n_open == 0)
    elif status == EscalationStatus.resolved:
        grouped = grouped.having(_count(live) == 0)
    g = grouped.subquery("cases")
    order: dict[str, list[Any]] = {
        "days": [g.c.deadline],
        "firm": [ENTERPRISES.c.name],
        "district": [ENTERPRISES.c.district_code, g.c.deadline],
        "rule": [g.c.rule, g.c.deadline],
    }
    keys = [k.desc() if descending else k.asc() for k in order[sort]] + [g.c.enterprise_id, g.c.rule]
    cases = (
        sa.select(
            g,
            sa.func.row_number().over(order_by=keys).label("n"),
            sa.func.count().over().label("total"),  # before LIMIT: the number of cases on every page
            ENTERPRISES.c.uscc,
            ENTERPRISES.c.name.label("enterprise_name"),
            ENTERPRISES.c.district_code,
            DISTRICTS.c.name.label("district_name"),
        )
        .select_from(
            g.join(ENTERPRISES, ENTERPRISES.c.id == g.c.enterprise_id).join(
                DISTRICTS, DISTRICTS.c.code == ENTERPRISES.c.district_code
            )
        )
        .subquery("listed")
    )

    def subjects(case: Any) -> sa.ColumnElement[Any]:
        """The hazards or applications behind a case (of the rows the listing reads)."""
        same = [X.c.enterprise_id == case.c.enterprise_id, X.c.rule == case.c.rule]
        return sa.select(sa.func.count(sa.distinct(X.c.subject_id))).where(*same, *where).scalar_subquery()

    top = _top_step(cases.c.enterprise_id, cases.c.rule)
    if level is None:  # the highest step and the subjects are looked up for the page's cases only
        paged = sa.select(cases).order_by(cases.c.n).limit(limit).offset(offset).subquery("paged")
        query = sa.select(
            paged,
            _top_step(paged.c.enterprise_id, paged.c.rule).label("top"),
            subjects(paged).label("subjects"),
        ).order_by(paged.c.n)
    else:  # a filter on the highest step reads it for every case
        filtered = (
            sa.select(cases, top.label("top"), subjects(cases).label("subjects"))
            .where(top == LEVELS.index(level))
            .subquery("filtered")
        )
        query = (
            sa.select(filtered, sa.func.count().over().label("shown"))
            .order_by(filtered.c.n)
            .limit(limit)
            .offset(offset)
        )
    rows = conn.execute(query).all()
    if rows:
        total = int(rows[0].shown if level is not None else rows[0].total)
    elif level is None:  # past the last page: count without reading
        total = int(conn.execute(sa.select(sa.func.count()).select_from(g)).scalar_one())
    else:
        counted = sa.select(sa.func.count()).select_from(cases).where(top == LEVELS.index(level))
        total = int(conn.execute(counted).scalar_one())
    items = []
    for r in rows:
        deadline = _day(r.deadline)
        items.append(
            Case(
                enterprise_id=r.enterprise_id,
                rule=r.rule,
                uscc=r.uscc,
                enterprise_name=r.enterprise_name,
                district_code=r.district_code,
                district_name=r.district_name,
                level=LEVELS[int(r.top)],
                deadline=deadline,
                days_overdue=max((as_of - deadline).days, 0),
                subjects=int(r.subjects),
                status=(
                    EscalationStatus.open
                    if r.n_open
                    else EscalationStatus.acknowledged
                    if r.n_ack
                    else EscalationStatus.resolved
                ),
                acknowledged_by=r.acknowledged_by,
            )
        )
    return CasePage(total, items)


def acknowledge_cases(
    session: Session, *, cases: Sequence[tuple[int, str]], actor: Actor, clock: Clock
) -> list[CaseOutcome]:
    """Batch 签收: every open escalation of each case (firm × rule) at the steps the actor acts on, in one
    transaction of two statements; each case gets its own result, a case outside the scope reads as not found.

    Raises:
        NotAllowed: the role acts on no step. InvalidInput: no case, or more than BATCH_LIMIT.
    """
    levels = _acting(actor)
    wanted = list(dict.fromkeys((int(e), str(r)) for e, r in cases))
    if not wanted:
        raise InvalidInput("请勾选要签收的督办事项 / choose the escalations to acknowledge")
    if len(wanted) > BATCH_LIMIT:
        raise InvalidInput(
            f"一次最多签收 {BATCH_LIMIT} 项，共选了 {len(wanted)} 项 / at most {BATCH_LIMIT} at once, not {len(wanted)}"
        )
    mine = X.c.step.in_(levels)
    keyed = sa.tuple_(X.c.enterprise_id, X.c.rule).in_(wanted)
    now = clock.now()
    begin_write(session)
    try:
        conn = session.connection()
        found = {
            (r.enterprise_id, r.rule): r
            for r in conn.execute(
                sa.select(
                    X.c.enterprise_id,
                    X.c.rule,
                    ENTERPRISES.c.name,
                    _count(sa.and_(mine, X.c.status == EscalationStatus.open)).label("n_open"),
                    _count(sa.and_(mine, X.c.status == EscalationStatus.acknowledged)).label("n_ack"),
                    _count(mine).label("n_mine"),
                    sa.func.max(_RANK).label("top"),
                )
                .join(ENTERPRISES, ENTERPRISES.c.id == X.c.enterprise_id)
                .where(keyed, _scope(actor))
                .group_by(X.c.enterprise_id, X.c.rule, ENTERPRISES.c.name)
            )
        }
        ready = [key for key in wanted if key in found and found[key].n_open]
        if ready:
            conn.execute(
                sa.update(X)
                .where(
                    sa.tuple_(X.c.enterprise_id, X.c.rule).in_(ready),
                    mine,
                    X.c.status == EscalationStatus.open,
                    _scope(actor),
                )
                .values(status=EscalationStatus.acknowledged, acknowledged_at=now, acknowledged_by=actor.name)
            )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return [_outcome(key, found.get(key)) for key in wanted]


def _outcome(key: tuple[int, str], row: Any) -> CaseOutcome:
    enterprise_id, rule = key
    rule_zh = RULE_LABELS.get(rule, rule)
    if row is None:
        return CaseOutcome(
            enterprise_id,
            rule,
            None,
            "refused",
            0,
            f"找不到企业 {enterprise_id} 的“{rule_zh}”督办事项 / no such escalation: firm {enterprise_id}, {rule}",
        )
    name = row.name
    if row.n_open:
        steps = int(row.n_open)
        return CaseOutcome(
            enterprise_id,
            rule,
            name,
            "acknowledged",
            steps,
            f"已签收 {steps} 个督办层级 / acknowledged at {steps} step{'s' if steps > 1 else ''}",
        )
    if row.n_ack:
        return CaseOutcome(enterprise_id, rule, name, "already", 0, "此前已签收 / already acknowledged")
    if row.n_mine:
        return CaseOutcome(enterprise_id, rule, name, "already", 0, "已解除，无需签收 / resolved, nothing to do")
    refusal = _not_for(LEVELS[int(row.top)])
    return CaseOutcome(enterprise_id, rule, name, "refused", 0, str(refusal))
