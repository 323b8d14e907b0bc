"""Oversight: escalations, referrals to local governments, and monthly inspection plans."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ContextDep, ReadSessionDep, SessionDep, allow
from deadlines.escalations import BATCH_LIMIT, acknowledge_cases, acknowledge_escalation, list_cases, list_escalations
from deadlines.referrals import (
    list_referrals,
    list_suggestions,
    propose_referral,
    referral_order,
    take_referral_step,
)
from deadlines.supervision import inspection_plan, parse_month
from states import InvalidInput, OutOfScope, Role
from workflow.actors import Actor, district_in_scope
from workflow.clock import today
from workflow.db import read_unit
from workflow.guidance import assign_guide, list_guidance, record_visit
from workflow.models import EscalationStatus, ReferralStatus

router = APIRouter(prefix="/api", tags=["oversight"])
Overseer = Annotated[Actor, allow(Role.city_bureau, Role.support_center, Role.district_bureau, Role.local_government)]


class ReferralCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enterprise_id: int = Field(ge=1)
    grounds: str = Field(description="non_participating / failed_review_twice / major_hazard_overdue")
    note: str | None = Field(default=None, max_length=2000)


class DecisionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=2000)


class CaseKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enterprise_id: int = Field(ge=1)
    rule: str = Field(min_length=1, max_length=40)


class CaseAcknowledge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cases: list[CaseKey] = Field(min_length=1, max_length=BATCH_LIMIT)


Short = Annotated[str | None, Query(max_length=40)]


@router.get("/escalations/cases")
def escalation_cases(
    context: ContextDep,
    session: ReadSessionDep,
    actor: Overseer,
    district: Short = None,
    status: Short = "open",
    level: Short = None,
    rule: Short = None,
    sort: Annotated[str, Query(max_length=12)] = "days",
    desc: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Escalations as cases, one per firm × rule at the highest step reached, limited to the steps the caller
    acts on (a district: firm and district steps of its district; the support center: the steps sent to it;
    the city: city steps; a local government: none), sorted by days overdue (most first), firm, district or
    rule. The same service as the escalations page."""
    if district is not None and not district_in_scope(actor, district):
        district = actor.district_code
    with read_unit(session) as conn:
        found = list_cases(
            conn,
            actor=actor,
            as_of=today(context.clock),
            district=district if actor.role in (Role.city_bureau, Role.support_center) else None,
            status=status or None,
            level=level or None,
            rule=rule or None,
            sort=sort,
            descending=desc,
            limit=limit,
            offset=offset,
        )
    return {"total": found.total, "items": [c.as_json() for c in found.items]}


@router.post("/escalations/cases/acknowledge")
def acknowledge_escalation_cases(
    body: CaseAcknowledge,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, allow(Role.city_bureau, Role.support_center, Role.district_bureau)],
) -> dict[str, Any]:
    """Batch 签收: each case's open steps that the caller acts on; one result per case (a case outside the
    caller's scope reads as not found)."""
    results = acknowledge_cases(
        session, cases=[(c.enterprise_id, c.rule) for c in body.cases], actor=actor, clock=context.clock
    )
    return {
        "acknowledged": sum(1 for r in results if r.outcome == "acknowledged"),
        "results": [r.as_json() for r in results],
    }


@router.get("/escalations")
def escalations(
    session: ReadSessionDep,
    actor: Annotated[Actor, allow(Role.city_bureau, Role.support_center, Role.district_bureau)],
    status: str | None = None,
    step: str | None = None,
    rule: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """Escalations in the caller's scope (a district bureau: its district), oldest first."""
    with read_unit(session) as conn:
        return list_escalations(conn, actor=actor, status=status, step=step, rule=rule, limit=limit)


@router.post("/escalations/{escalation_id}/acknowledge")
def acknowledge(
    escalation_id: int,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, allow(Role.city_bureau, Role.support_center, Role.district_bureau, scope="escalation")],
) -> dict[str, str]:
    """Acknowledge one escalation at a step the caller acts on (it stays until the firm moves on, then it is
    resolved)."""
    at = acknowledge_escalation(session, escalation_id=escalation_id, actor=actor, clock=context.clock)
    return {"status": EscalationStatus.acknowledged, "acknowledged_at": at.isoformat()}


@router.get("/referrals")
def referrals(
    context: ContextDep,
    session: ReadSessionDep,
    actor: Overseer,
    status: str | None = None,
    sort: Annotated[str | None, Query(max_length=40)] = None,
) -> list[dict[str, Any]]:
    """Referrals of key-field firms with no hope of compliance, in the caller's area. `sort`: name, uscc,
    district, grounds, status, state or proposed_at, `-` before it for descending (by district by default)."""
    order = referral_order(sort)
    with read_unit(session) as conn:
        rows = list_referrals(conn, actor=actor, campaign=context.campaign, status=status, order=order)
        return [r.as_json() for r in rows]


@router.get("/referrals/suggestions")
def suggestions(
    session: ReadSessionDep,
    actor: Annotated[Actor, allow(Role.city_bureau, Role.support_center, Role.district_bureau)],
    status: Annotated[str | None, Query(max_length=12)] = "open",
    district: Annotated[str | None, Query(max_length=12)] = None,
) -> list[dict[str, Any]]:
    """The sweep's candidates for referral, with the grounds and the firm's current state: suggestions to the
    district, not referrals (a district bureau sees its own, the city all)."""
    with read_unit(session) as conn:
        return [s.as_json() for s in list_suggestions(conn, actor=actor, district=district, status=status or None)]


@router.get("/worklists/referrals")
def referral_queue(context: ContextDep, session: ReadSessionDep, actor: Overseer) -> list[dict[str, Any]]:
    """What waits on the caller: a district bureau weighs the sweep's suggestions (propose or not), the city
    bureau decides proposals, a local government acknowledges confirmed referrals."""
    day = today(context.clock)
    if actor.role is Role.district_bureau:  # the sweep's suggestions wait on the district's decision
        with read_unit(session) as conn:
            suggested = list_suggestions(conn, actor=actor)
        return [
            s.as_json()
            | {
                "since": s.suggested_at.isoformat(),
                "days_waiting": (day - s.suggested_at.astimezone(context.clock.tz).date()).days,
            }
            for s in suggested
        ]
    waiting = {
        Role.city_bureau: ReferralStatus.proposed,
        Role.support_center: ReferralStatus.proposed,
        Role.local_government: ReferralStatus.confirmed,
    }[actor.role]
    with read_unit(session) as conn:
        items = list_referrals(conn, actor=actor, campaign=context.campaign, status=waiting)
    out = []
    for r in items:
        since = r.decided_at if waiting == ReferralStatus.confirmed and r.decided_at else r.proposed_at
        out.append(
            r.as_json()
            | {"since": since.isoformat(), "days_waiting": (day - since.astimezone(context.clock.tz).date()).days}
        )
    return sorted(out, key=lambda item: (item["since"], item["id"]))


@router.post("/referrals", status_code=201)
def propose(
    body: ReferralCreate,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, allow(Role.district_bureau)],
) -> dict[str, int]:
    """A district bureau proposes one of its key-field firms; the grounds must hold today."""
    referral_id = propose_referral(
        session,
        enterprise_id=body.enterprise_id,
        grounds=body.grounds,
        actor=actor,
        context=context.service,
        note=body.note,
    )
    return {"id": referral_id}


@router.post("/referrals/{referral_id}/confirm")
def confirm(
    referral_id: int,
    body: DecisionCreate,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, allow(Role.city_bureau, scope="referral")],
) -> dict[str, str]:
    """The city bureau confirms: the referral is sent to the local government."""
    return _decide(session, context, actor, referral_id, body, confirm=True)


@router.post("/referrals/{referral_id}/decline")
def decline(
    referral_id: int,
    body: DecisionCreate,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, allow(Role.city_bureau, scope="referral")],
) -> dict[str, str]:
    """The city bureau declines a proposal (with a note)."""
    return _decide(session, context, actor, referral_id, body, confirm=False)


def _decide(
    session: Any, context: Any, actor: Actor, referral_id: int, body: DecisionCreate, *, confirm: bool
) -> dict[str, str]:
    step = "confirm" if confirm else "decline"
    status = take_referral_step(session, referral_id, step, actor=actor, context=context.service, note=body.note)
    return {"status": status}


@router.post("/referrals/{referral_id}/acknowledge")
def acknowledge_receipt(
    referral_id: int,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, allow(Role.local_government, scope="referral")],
) -> dict[str, str]:
    """The local government acknowledges a confirmed referral of its area."""
    status = take_referral_step(session, referral_id, "acknowledge", actor=actor, context=context.service)
    return {"status": status}


@router.get("/inspections/plan")
def plan(
    context: ContextDep,
    session: ReadSessionDep,
    actor: Annotated[Actor, allow(Role.city_bureau, Role.district_bureau)],
    month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")],
    district: str | None = None,
) -> dict[str, Any]:
    """A district's inspection plan for a month (graded supervision), strictest grade first."""
    code = district if actor.role is Role.city_bureau else actor.district_code
    if code is None:
        raise InvalidInput("请指定辖区 / name the district")
    if district is not None and not district_in_scope(actor, district):
        raise OutOfScope(f"找不到该辖区 / no such district: {district}")
    first = parse_month(month)
    with read_unit(session) as conn:
        lines = [
            line.as_json()
            for line in inspection_plan(
                conn, campaign=context.campaign, district=code, month=first, as_of=today(context.clock)
            )
        ]
    return {"district": code, "month": month, "firms": lines}


# ---- guidance of benchmark candidates (派驻专家重点指导、监管人员重点督导) ----------------------------

Guide = Annotated[Actor, allow(Role.city_bureau, Role.district_bureau)]


class GuideCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person: str = Field(min_length=1, max_length=80)
    kind: str = Field(description="expert (派驻专家) / officer (监管人员)")
    from_date: dt.date


class VisitCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    visited_on: dt.date
    note: str = Field(min_length=1, max_length=2000)


@router.get("/guidance")
def guidance(
    session: ReadSessionDep, actor: Guide, district: str | None = None, enterprise_id: int | None = None
) -> list[dict[str, Any]]:
    """Experts and officers sent to benchmark candidates, with their visits (a district bureau: its own)."""
    with read_unit(session) as conn:
        return [a.as_json() for a in list_guidance(conn, actor=actor, district=district, enterprise_id=enterprise_id)]


@router.post("/enterprises/{enterprise_id}/guidance", status_code=201)
def assign(
    enterprise_id: int,
    body: GuideCreate,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, allow(Role.city_bureau, Role.district_bureau, scope="enterprise")],
) -> dict[str, int]:
    """Send an expert or an officer to a benchmark candidate."""
    assignment_id = assign_guide(
        session,
        enterprise_id=enterprise_id,
        person=body.person,
        kind=body.kind,
        from_date=body.from_date,
        actor=actor,
        clock=context.clock,
    )
    return {"id": assignment_id}


@router.post("/guidance/{assignment_id}/visits", status_code=201)
def visit(
    assignment_id: int,
    body: VisitCreate,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, allow(Role.city_bureau, Role.district_bureau, scope="guidance")],
) -> dict[str, int]:
    """Record a visit of an assigned expert or officer."""
    visit_id = record_visit(
        session,
        assignment_id=assignment_id,
        visited_on=body.visited_on,
        note=body.note,
        actor=actor,
        clock=context.clock,
    )
    return {"id": visit_id}
