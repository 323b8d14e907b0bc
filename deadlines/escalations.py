"""Escalations as officials see them: listed per district (or city-wide), acknowledged by the office
they were escalated to. They resolve by themselves in the sweep when the firm moves on."""

from __future__ import annotations

import datetime as dt
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


def acknowledge_escalation(session: Session, *, escalation_id: int, actor: Actor, clock: Clock) -> dt.datetime:
    """The office an escalation reached takes note of it: a district bureau its own district's firm and
    district steps, the city bureau any (also the steps sent to the support center, which sees them listed).
    A resolved escalation needs no acknowledgement."""
    if actor.role not in (Role.district_bureau, Role.city_bureau):
        raise NotAllowed("只有应急管理部门可签收督办事项 / only a district or the city bureau acknowledges")
    now = clock.now()
    begin_write(session)
    try:
        conn = session.connection()
        row = require(conn, actor, "escalation", escalation_id)
        if actor.role is Role.district_bureau and row.step in ("city", "center"):
            steps = "city steps" if row.step == "city" else "the steps sent to the support center"
            raise NotAllowed(
                f"已{STEP_LABELS[row.step]}的督办事项由市应急管理局签收 / the city bureau acknowledges {steps}"
            )
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
