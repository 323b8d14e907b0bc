"""Read side for people: firm lists with filters and paging, one firm in full, and officials' worklists.
Every query is cut to the caller's scope in SQL, so nothing outside it is ever read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from states import STATE_LABELS, InvalidInput, NotAllowed, NotFound, Role, State
from workflow.actors import Actor, auditable_by, firm_scope, require, require_firm, require_firm_records
from workflow.campaign import Campaign
from workflow.certificates import prior_of
from workflow.clock import Clock, today
from workflow.context import Context
from workflow.engine import allowed_triggers, load_firm
from workflow.listing import (
    DEFAULT_PAGE_SIZE,
    Order,
    check_paging,
    keyset_after,
    order_by,
    page_count,
    parse_order,
    search_words,
    word_matches,
)
from workflow.models import (
    ApplicationStatus,
    EscalationStatus,
    HazardStatus,
    ReviewAssignmentStatus,
    unreached_clause,
)
from workflow.records import OPEN_STATUSES, raising_office
from workflow.tables import (
    APPLICATIONS,
    CERTIFICATIONS,
    DISTRICTS,
    ENTERPRISES,
    ESCALATIONS,
    EVENTS,
    EVIDENCE_FILES,
    HAZARDS,
    REVIEW_ASSIGNMENTS,
    REVIEWS,
)


def overdue_clause() -> sa.Exists:
    return (
        sa.select(ESCALATIONS.c.id)
        .where(ESCALATIONS.c.enterprise_id == ENTERPRISES.c.id, ESCALATIONS.c.status == EscalationStatus.open)
        .exists()
    )


E = ENTERPRISES
# the firm list's sortable columns (each as shown on the page) and what they sort by; ties go by id
FIRM_SORTS: dict[str, tuple[sa.ColumnElement[Any], ...]] = {
    "id": (),  # the directory's order
    "name": (E.c.name,),
    "uscc": (E.c.uscc,),
    "district": (E.c.district_code,),
    "field": (E.c.key_field, E.c.above_size),
    # the campaign's order of states, not the alphabet's
    "state": (sa.case({s.value: n for n, s in enumerate(State)}, value=E.c.state, else_=len(State)),),
    "state_since": (E.c.state_since,),
    "overdue": (sa.case((overdue_clause(), 1), else_=0),),
}


@dataclass(frozen=True)
class FirmFilter:
    district: str | None = None
    key_field: bool | None = None
    state: str | None = None
    overdue: bool | None = None
    q: str | None = None
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    above_size: bool | None = None
    sort: str | None = None  # a key of FIRM_SORTS, `-key` descending
    after: int | None = None  # keyset: the page that follows this firm (the last row of the page before)
    before: int | None = None  # keyset: the page that precedes this firm (the first row of the page after)

    def check(self) -> None:
        if self.state is not None and self.state not in State.__members__:
            raise InvalidInput(f"未知状态 {self.state} / unknown state: {self.state}")
        check_paging(self.page, self.page_size)
        search_words(self.q)
        self.order()

    def order(self) -> Order:
        return parse_order(self.sort, allowed=list(FIRM_SORTS), default="id")


def firm_where(actor: Actor, f: FirmFilter) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = [firm_scope(actor)]
    if f.district:
        where.append(ENTERPRISES.c.district_code == f.district)
    if f.key_field is not None:
        where.append(ENTERPRISES.c.key_field.is_(f.key_field))
    if f.above_size is not None:
        where.append(ENTERPRISES.c.above_size.is_(f.above_size))
    if f.state:
        where.append(ENTERPRISES.c.state == f.state)
    if f.overdue is not None:
        where.append(overdue_clause() if f.overdue else ~overdue_clause())
    # every word must match (the name, or the credit code)
    where += [word_matches(w, name=E.c.name, code=E.c.uscc) for w in search_words(f.q)]
    return where


def firm_columns() -> list[sa.ColumnElement[Any]]:
    return [
        E.c.id,
        E.c.uscc,
        E.c.name,
        E.c.district_code,
        # a lookup, not a join: a join lets the planner drive the page from the districts through the
        # district index, visiting every firm's row in district order before a sort by another column
        sa.select(DISTRICTS.c.name)
        .where(DISTRICTS.c.code == E.c.district_code)
        .scalar_subquery()
        .label("district_name"),
        E.c.sector,
        E.c.key_field,
        E.c.above_size,
        E.c.state,
        E.c.state_since,
        E.c.version,
        overdue_clause().label("overdue"),
    ]


def firm_page(
    conn: sa.Connection, *, actor: Actor, filters: FirmFilter, total: int | None = None
) -> Sequence[sa.Row[Any]]:
    """One page of the list, in order, in one statement. With a neighbour (`after`/`before`) the page is a
    keyset seek from that firm's sort values: an index range however deep. A page asked by number (a jump)
    skips (page − 1) × size entries of the sort's index in a subquery that reads ids only, never whole rows,
    and the page's rows are read by id; a page in the second half of the list (`total` known) is counted
    from the end, in the reversed order, so no jump skips more than half the list."""
    order = filters.order()
    keys = [*FIRM_SORTS[order.key], E.c.id]
    where = firm_where(actor, filters)
    page = sa.select(*firm_columns())
    neighbour = filters.after if filters.after is not None else filters.before
    if neighbour is not None:
        values = conn.execute(sa.select(*keys).where(E.c.id == neighbour, *where[:1])).first()
        if values is not None:
            backwards = filters.after is None  # the page before `before`: seek the other way, then turn round
            direction = order.descending != backwards
            rows = conn.execute(
                page.where(*where, keyset_after(keys, list(values), descending=direction))
                .order_by(*order_by(keys, descending=direction))
                .limit(filters.page_size)
            ).all()
            return rows[::-1] if backwards else rows
    ordered = order_by(keys, descending=order.descending)
    offset = (filters.page - 1) * filters.page_size
    if offset == 0:
        return conn.execute(page.where(*where).order_by(*ordered).limit(filters.page_size)).all()
    size = filters.page_size
    if total is not None and total // 2 < offset < total:
        size = min(size, total - offset)
        offset = total - offset - size
        ordered_ids = order_by(keys, descending=not order.descending)
    else:
        ordered_ids = ordered
    ids = sa.select(E.c.id).where(*where).order_by(*ordered_ids).limit(size).offset(offset)
    return conn.execute(page.where(E.c.id.in_(ids.scalar_subquery())).order_by(*ordered)).all()


def list_firms(conn: sa.Connection, *, actor: Actor, filters: FirmFilter) -> dict[str, Any]:
    """One page of the firms in the caller's scope: filters, search (every word must match), a sort on any
    column shown, the total, and the first and last firm of the page (for keyset links to its neighbours)."""
    filters.check()
    order = filters.order()
    where = firm_where(actor, filters)
    total = conn.execute(sa.select(sa.func.count()).select_from(ENTERPRISES).where(*where)).scalar_one()
    rows = firm_page(conn, actor=actor, filters=filters, total=int(total))
    return {
        "items": [
            {**r._asdict(), "state_label": STATE_LABELS[State(r.state)][0], "overdue": bool(r.overdue)} for r in rows
        ],
        "total": int(total),
        "page": filters.page,
        "page_size": filters.page_size,
        "pages": page_count(int(total), filters.page_size),
        "sort": order.text,
        "first_id": rows[0].id if rows else None,
        "last_id": rows[-1].id if rows else None,
    }


def firm_in_scope(conn: sa.Connection, *, actor: Actor, enterprise_id: int) -> Any:
    return require_firm(conn, actor, load_firm(conn, enterprise_id=enterprise_id))


def next_deadline(firm: Any, *, campaign: Campaign, open_hazard_deadlines: list[dt.date]) -> dict[str, Any] | None:
    """The next campaign date that binds this firm, from its state and record: its own start duty (only
    key-field and non-key above-size firms have one), its hazards' deadlines, or the end of evaluation for an
    open application (the offices' date). The end of the creation phase binds nobody (自愿申请)."""
    state = State(firm.state)
    candidates: list[tuple[dt.date, str]] = []
    if state is State.mobilized:
        for m in campaign.milestones:
            applies = firm.key_field if m.applies_to == "key_field" else (not firm.key_field and firm.above_size)
            if applies:
                candidates.append((m.date, m.id))
    elif state in (State.self_assessing, State.rectifying):
        candidates += [(d, "hazard_deadline") for d in open_hazard_deadlines]
    elif state in (State.applied, State.verified, State.reviewed):
        candidates.append((campaign.phases.evaluation.end, "evaluation_end"))
    if not candidates:
        return None
    day, rule = min(candidates)
    return {"date": day.isoformat(), "rule": rule}


def firm_detail(conn: sa.Connection, *, actor: Actor, enterprise_id: int, context: Context) -> dict[str, Any]:
    campaign, clock = context.campaign, context.clock
    firm = firm_in_scope(conn, actor=actor, enterprise_id=enterprise_id)
    # the districts table is kept equal to the campaign file (`sync_districts`): its name without a query
    district = next((d.name for d in campaign.districts if d.code == firm.district_code), None)
    if district is None:  # a district the campaign no longer lists
        district = conn.execute(sa.select(DISTRICTS.c.name).where(DISTRICTS.c.code == firm.district_code)).scalar()
    hazards = conn.execute(sa.select(HAZARDS).where(HAZARDS.c.enterprise_id == firm.id).order_by(HAZARDS.c.id)).all()
    events = conn.execute(sa.select(EVENTS).where(EVENTS.c.enterprise_id == firm.id).order_by(EVENTS.c.seq)).all()
    application = conn.execute(
        sa.select(APPLICATIONS)
        .where(APPLICATIONS.c.enterprise_id == firm.id)
        .order_by(APPLICATIONS.c.id.desc())
        .limit(1)
    ).first()
    certification = conn.execute(
        sa.select(CERTIFICATIONS)
        .where(CERTIFICATIONS.c.enterprise_id == firm.id, CERTIFICATIONS.c.revoked_at.is_(None))
        .order_by(CERTIFICATIONS.c.id.desc())
        .limit(1)
    ).first()
    evidence = conn.execute(
        sa.select(EVIDENCE_FILES).where(EVIDENCE_FILES.c.enterprise_id == firm.id).order_by(EVIDENCE_FILES.c.id)
    ).all()
    open_deadlines = [h.deadline for h in hazards if h.status == HazardStatus.open and h.deadline is not None]
    deadline = next_deadline(firm, campaign=campaign, open_hazard_deadlines=open_deadlines)
    if deadline is not None:
        deadline["days_left"] = (dt.date.fromisoformat(deadline["date"]) - today(clock)).days
    history: list[dict[str, Any]] = [
        {
            "kind": "event",
            "at": e.at.isoformat(),
            "seq": e.seq,
            "trigger": e.trigger,
            "actor": e.actor,
            "role": e.role,
            "from": e.from_state,
            "to": e.to_state,
            "payload": e.payload,
        }
        for e in events
    ]
    # uploads are events of their own; files stored before that are listed from their rows
    recorded = {
        e.payload.get("evidence_id") for e in events if e.trigger == "evidence_uploaded" and isinstance(e.payload, dict)
    }
    history += [
        {
            "kind": "evidence",
            "at": f.uploaded_at.isoformat(),
            "evidence_id": f.id,
            "filename": f.filename,
            "evidence_kind": f.kind,
            "actor": f.uploaded_by,
        }
        for f in evidence
        if f.id not in recorded
    ]
    history.sort(key=lambda item: (item["at"], item.get("seq", 0)))
    state = State(firm.state)
    return {
        "id": firm.id,
        "uscc": firm.uscc,
        "name": firm.name,
        "district": {"code": firm.district_code, "name": district},
        "sector": firm.sector,
        "key_field": firm.key_field,
        "above_size": firm.above_size,
        "principal": firm.principal,
        "phone": firm.phone,
        "email": firm.email,
        "state": state.value,
        "state_label": STATE_LABELS[state][0],
        "state_since": firm.state_since.isoformat(),
        "notified_at": firm.notified_at.isoformat() if firm.notified_at else None,
        "version": firm.version,
        "next_deadline": deadline,
        "open_hazards": [_hazard(h, key_field=firm.key_field) for h in hazards if h.status in OPEN_STATUSES],
        "application": None if application is None else _application(application),
        "certification": None
        if certification is None
        else {
            "level": certification.level,
            "score": certification.score,
            "eligible_level": certification.eligible_level,
            "certified_at": certification.certified_at.isoformat(),
            "certificate_no": certification.certificate_no,
            "valid_until": None if certification.valid_until is None else certification.valid_until.isoformat(),
            "benchmark_at": None if certification.benchmark_at is None else certification.benchmark_at.isoformat(),
        },
        "prior_certificate": prior_of(firm),
        "allowed_triggers": allowed_triggers(conn, firm=firm, role=actor.role, context=context),
        "history": history,
    }


def _hazard(h: Any, *, key_field: bool) -> dict[str, Any]:
    office = raising_office(h.source, key_field=bool(key_field))
    return {
        "id": h.id,
        "description": h.description,
        "severity": h.severity,
        "source": h.source,
        "status": h.status,
        "responsible_person": h.responsible_person,
        "measures": h.measures,
        "funds": h.funds,
        "deadline": h.deadline.isoformat() if h.deadline else None,
        "emergency_plan": h.emergency_plan,
        "reported_at": h.reported_at.isoformat(),
        "rectified_at": h.rectified_at.isoformat() if h.rectified_at else None,
        "rectification_evidence_id": h.rectification_evidence_id,
        "closed_by": "enterprise" if office is None else office.value,  # who closes it: the firm or an office
        "decided_at": h.decided_at.isoformat() if h.decided_at else None,
        "decided_by": h.decided_by,
        "decision_note": h.decision_note,
    }


def application_in_scope(conn: sa.Connection, *, actor: Actor, application_id: int) -> Any:
    """An application the actor may see: its firm is in scope, or the actor is on its review team."""
    return require(conn, actor, "application", application_id)


def hazards_of(conn: sa.Connection, *, actor: Actor, enterprise_id: int) -> list[dict[str, Any]]:
    firm = require_firm_records(actor, load_firm(conn, enterprise_id=enterprise_id))
    rows = conn.execute(sa.select(HAZARDS).where(HAZARDS.c.enterprise_id == enterprise_id).order_by(HAZARDS.c.id))
    return [_hazard(h, key_field=firm.key_field) for h in rows]


def hazard_firm_id(conn: sa.Connection, *, hazard_id: int) -> int:
    """The firm a hazard belongs to (NotFound when there is no such hazard; the caller checks the scope)."""
    firm_id = conn.execute(sa.select(HAZARDS.c.enterprise_id).where(HAZARDS.c.id == hazard_id)).scalar()
    if firm_id is None:
        raise NotFound(f"找不到该隐患 / no such hazard: {hazard_id}")
    return int(firm_id)


def hazard_in_scope(conn: sa.Connection, *, actor: Actor, hazard_id: int) -> dict[str, Any]:
    """One hazard as the register shows it, if its firm is in the actor's scope."""
    row = require(conn, actor, "hazard", hazard_id)
    firm = load_firm(conn, enterprise_id=row.enterprise_id)
    return _hazard(row, key_field=firm.key_field)


def evidence_named(conn: sa.Connection, *, enterprise_id: int, ids: list[int]) -> list[dict[str, Any]]:
    """The firm's uploads among `ids`, as an application's materials name them."""
    rows = conn.execute(
        sa.select(EVIDENCE_FILES).where(EVIDENCE_FILES.c.enterprise_id == enterprise_id, EVIDENCE_FILES.c.id.in_(ids))
    )
    return [{"sha256": f.sha256, "name": f.filename, "kind": f.kind} for f in rows]


def _application(a: Any) -> dict[str, Any]:
    return {
        "id": a.id,
        "enterprise_id": a.enterprise_id,
        "status": a.status,
        "self_assessment_total": a.self_assessment_total,
        "materials": a.materials,
        "submitted_at": a.submitted_at.isoformat(),
        "verified_at": a.verified_at.isoformat() if a.verified_at else None,
        "audit_passed_at": a.audit_passed_at.isoformat() if a.audit_passed_at else None,
        "review_score": a.review_score,
        "verification_opinion": a.verification_opinion,
        "verification_checklist": a.verification_checklist or [],
        "missing": a.missing or [],
        "outcome_reason": a.outcome_reason,
    }


# ---- worklists -----------------------------------------------------------------------------------

WORKLISTS = ("verification", "audit", "review", "certification")


def undeliverable_notices(conn: sa.Connection, *, actor: Actor, clock: Clock, limit: int = 200) -> dict[str, Any]:
    """Firms the mobilization notice cannot reach (无法送达): still `mobilized`, not notified, and no e-mail
    address for the principal. The district fixes the address or notifies the firm another way (the plan:
    对照工业企业名录清单对企业主要负责人逐个通知). Oldest first, with whether a notice was already tried."""
    if actor.role not in (Role.district_bureau, Role.city_bureau):
        raise NotAllowed("只有应急管理部门负责动员通知 / only the district and city bureaus notify firms")
    e = ENTERPRISES
    tried = (
        sa.select(sa.func.max(EVENTS.c.at))
        .where(EVENTS.c.enterprise_id == e.c.id, EVENTS.c.trigger == "notify")
        .scalar_subquery()
    )
    rows = conn.execute(
        sa.select(
            e.c.id.label("enterprise_id"),
            e.c.uscc,
            e.c.name,
            e.c.district_code,
            e.c.key_field,
            e.c.version,
            e.c.principal,
            e.c.phone,
            e.c.created_at.label("since"),
            tried.label("tried_at"),
        )
        .where(unreached_clause(e), firm_scope(actor))
        .order_by(e.c.created_at, e.c.id)
        .limit(limit)
    ).all()
    day = today(clock)
    items = [
        {
            **{k: v for k, v in r._asdict().items() if k not in ("since", "tried_at")},
            "reason": "no_email",
            "since": r.since.isoformat(),
            "tried_at": r.tried_at.isoformat() if r.tried_at else None,
            "days_waiting": (day - r.since.astimezone(clock.tz).date()).days,
        }
        for r in rows
    ]
    return {"name": "undeliverable", "items": items}


def worklist(conn: sa.Connection, *, actor: Actor, name: str, clock: Clock, limit: int = 200) -> dict[str, Any]:
    """What waits on this official, oldest first, with days waiting."""
    a = APPLICATIONS
    active_team = (
        sa.select(sa.func.count())
        .where(
            REVIEW_ASSIGNMENTS.c.application_id == a.c.id, REVIEW_ASSIGNMENTS.c.status == ReviewAssignmentStatus.active
        )
        .scalar_subquery()
    )
    scored = (
        sa.select(sa.func.count(sa.distinct(REVIEWS.c.reviewer_id)))
        .where(REVIEWS.c.application_id == a.c.id, REVIEWS.c.reviewer_id.is_not(None))
        .scalar_subquery()
    )
    match name:
        case "verification":
            since, where = a.c.submitted_at, [a.c.status == ApplicationStatus.applied, firm_scope(actor)]
        case "audit":
            since, where = (
                a.c.verified_at,
                [a.c.status == ApplicationStatus.verified, a.c.audit_passed_at.is_(None), auditable_by(actor)],
            )
        case "review":
            since, where = (
                a.c.audit_passed_at,
                [a.c.status == ApplicationStatus.verified, a.c.audit_passed_at.is_not(None), auditable_by(actor)],
            )
        case "certification":
            since, where = a.c.reviewed_at, [a.c.status == ApplicationStatus.reviewed, firm_scope(actor)]
        case _:
            raise InvalidInput(f"未知工作清单 {name} / unknown worklist: {name}; one of {', '.join(WORKLISTS)}")
    rows = conn.execute(
        sa.select(
            a.c.id.label("application_id"),
            ENTERPRISES.c.id.label("enterprise_id"),
            ENTERPRISES.c.uscc,
            ENTERPRISES.c.name,
            ENTERPRISES.c.district_code,
            ENTERPRISES.c.key_field,
            ENTERPRISES.c.version,
            a.c.review_score,
            since.label("since"),
            active_team.label("team_size"),
            scored.label("scored"),
        )
        .join(ENTERPRISES, ENTERPRISES.c.id == a.c.enterprise_id)
        .where(*where)
        .order_by(since, a.c.id)
        .limit(limit)
    ).all()
    day = today(clock)
    items = [
        {
            **{k: v for k, v in r._asdict().items() if k != "since"},
            "since": r.since.isoformat(),
            "days_waiting": (day - r.since.astimezone(clock.tz).date()).days,
        }
        for r in rows
    ]
    return {"name": name, "items": items}


def review_assignments_of(conn: sa.Connection, *, actor: Actor, clock: Clock) -> dict[str, Any]:
    """A reviewer's active assignments, oldest first."""
    rows = conn.execute(
        sa.select(
            REVIEW_ASSIGNMENTS.c.id.label("assignment_id"),
            REVIEW_ASSIGNMENTS.c.application_id,
            REVIEW_ASSIGNMENTS.c.assigned_at,
            ENTERPRISES.c.name,
            ENTERPRISES.c.uscc,
            ENTERPRISES.c.district_code,
        )
        .join(APPLICATIONS, APPLICATIONS.c.id == REVIEW_ASSIGNMENTS.c.application_id)
        .join(ENTERPRISES, ENTERPRISES.c.id == APPLICATIONS.c.enterprise_id)
        .where(
            REVIEW_ASSIGNMENTS.c.reviewer_id == (actor.user_id or -1),
            REVIEW_ASSIGNMENTS.c.status == ReviewAssignmentStatus.active,
        )
        .order_by(REVIEW_ASSIGNMENTS.c.assigned_at, REVIEW_ASSIGNMENTS.c.id)
    ).all()
    day = today(clock)
    return {
        "name": "reviews",
        "items": [
            {
                **{k: v for k, v in r._asdict().items() if k != "assigned_at"},
                "since": r.assigned_at.isoformat(),
                "days_waiting": (day - r.assigned_at.astimezone(clock.tz).date()).days,
            }
            for r in rows
        ],
    }


def state_counts(conn: sa.Connection) -> list[dict[str, Any]]:
    """How many firms stand in each state, per district and field (key field first): `dabiao stats`."""
    rows = conn.execute(
        sa.select(
            ENTERPRISES.c.district_code,
            DISTRICTS.c.name,
            ENTERPRISES.c.key_field,
            ENTERPRISES.c.state,
            sa.func.count().label("n"),
        )
        .join(DISTRICTS, DISTRICTS.c.code == ENTERPRISES.c.district_code)
        .group_by(ENTERPRISES.c.district_code, DISTRICTS.c.name, ENTERPRISES.c.key_field, ENTERPRISES.c.state)
        .order_by(ENTERPRISES.c.district_code, ENTERPRISES.c.key_field.desc(), ENTERPRISES.c.state)
    ).all()
    return [
        {
            "district": r.district_code,
            "district_name": r.name,
            "key_field": bool(r.key_field),
            "state": r.state,
            "count": int(r.n),
        }
        for r in rows
    ]
