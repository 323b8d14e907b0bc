"""Guidance of benchmark candidates. The plan: 各地要通过"派驻专家重点指导、监管人员重点督导"的方式，在企业达标
创建基础上，打造安全生产领域标杆企业 — the districts send experts to guide and officers to supervise firms on their
way to 标杆, and record their visits. A district bureau sees and records its own firms, the city bureau all;
each assignment and visit is an event in the firm's hash chain. A visit is a supervision record of kind `guidance`
(the same table as inspections and patrols, `workflow.supervision_records`), so it may also carry the outline
items looked at, findings and files when recorded through the inspection form."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from states import STATE_LABELS, InvalidInput, NotAllowed, NotFound, Role, State
from workflow import labels
from workflow.actors import Actor, require_firm, scope
from workflow.clock import Clock
from workflow.db import begin_write
from workflow.engine import load_firm, record_event
from workflow.labels import zh
from workflow.listing import Order, order_by, parse_order
from workflow.supervision_records import write_record
from workflow.tables import ENTERPRISES, GUIDANCE_ASSIGNMENTS, INSPECTIONS

A, V, E = GUIDANCE_ASSIGNMENTS, INSPECTIONS, ENTERPRISES
KINDS = zh(labels.GUIDE_KINDS)
# Guidance builds on the firm's own creation work (在企业达标创建基础上): a firm that has not started, or is
# closed, is no benchmark candidate.
NOT_CANDIDATES = ("mobilized", "closed")


@dataclass(frozen=True)
class VisitRead:
    id: int
    visited_on: dt.date
    note: str
    recorded_by: str


@dataclass(frozen=True)
class AssignmentRead:
    id: int
    enterprise_id: int
    enterprise_name: str
    uscc: str
    district_code: str
    person: str
    kind: str
    from_date: dt.date
    assigned_by: str
    state: str
    visits: list[VisitRead] = field(default_factory=list)

    @property
    def kind_label(self) -> str:
        return KINDS.get(self.kind, self.kind)

    @property
    def last_visit(self) -> dt.date | None:
        return max((v.visited_on for v in self.visits), default=None)

    def as_json(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in self.__dict__.items() if k != "visits"},
            "from_date": self.from_date.isoformat(),
            "kind_label": self.kind_label,
            "state_label": STATE_LABELS[State(self.state)][0],
            "visits": [{**v.__dict__, "visited_on": v.visited_on.isoformat()} for v in self.visits],
        }


def _check_actor(actor: Actor) -> None:
    if actor.role is Role.city_bureau:
        return
    if actor.role is Role.district_bureau and actor.district_code:
        return
    raise NotAllowed("只有市、辖区应急管理局可派驻专家和监管人员 / only the city and district bureaus guide firms")


def _firm_in_scope(conn: sa.Connection, actor: Actor, enterprise_id: int) -> Any:
    return require_firm(conn, actor, load_firm(conn, enterprise_id=enterprise_id))


def _text(value: str, what: str, what_en: str, limit: int) -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidInput(f"请填写{what} / {what_en} is required")
    if len(value) > limit:
        raise InvalidInput(f"{what}超过{limit}字 / {what_en} is longer than {limit} characters")
    return value


def assign_guide(
    session: Session,
    *,
    enterprise_id: int,
    person: str,
    kind: str,
    from_date: dt.date,
    actor: Actor,
    clock: Clock,
) -> int:
    """Send an expert (kind `expert`) or an officer (`officer`) to a benchmark candidate from a date."""
    _check_actor(actor)
    if kind not in KINDS:
        raise InvalidInput(
            f"类别须为 expert（专家）或 officer（监管人员） / kind must be expert or officer, not {kind}"
        )
    person = _text(person, "人员姓名", "the person's name", 80)
    now = clock.now()
    begin_write(session)
    try:
        conn = session.connection()
        firm = _firm_in_scope(conn, actor, enterprise_id)
        if firm.state in NOT_CANDIDATES:
            label = STATE_LABELS[State(firm.state)][0]
            raise InvalidInput(
                f"{firm.name}目前为“{label}”，不是标杆培育对象（须已开展创建） / {firm.name} is {firm.state}: "
                "only firms that have started the creation work are benchmark candidates"
            )
        result = conn.execute(
            sa.insert(A).values(
                enterprise_id=firm.id,
                district_code=firm.district_code,
                person=person,
                kind=kind,
                from_date=from_date,
                assigned_by=actor.name,
                assigned_at=now,
            )
        )
        assert result.inserted_primary_key is not None
        assignment_id = int(result.inserted_primary_key[0])
        record_event(
            conn,
            enterprise_id=firm.id,
            kind="guidance_assigned",
            actor=actor,
            at=now,
            payload={"assignment_id": assignment_id, "person": person, "kind": kind, "from": from_date.isoformat()},
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return assignment_id


def visit_assignment(
    conn: sa.Connection, *, assignment_id: int, visited_on: dt.date, today: dt.date, enterprise_id: int | None = None
) -> Any:
    """The assignment a visit belongs to (of this firm, when named); the visit lies between the assignment's
    first day and today."""
    assignment = conn.execute(sa.select(A).where(A.c.id == assignment_id)).first()
    if assignment is None or (enterprise_id is not None and assignment.enterprise_id != enterprise_id):
        raise NotFound(f"找不到该派驻记录 / no such assignment: {assignment_id}")
    if visited_on < assignment.from_date or visited_on > today:
        raise InvalidInput(
            f"走访日期 {visited_on} 须在派驻之日（{assignment.from_date}）与今天（{today}）之间 / "
            f"the visit date {visited_on} must lie between the assignment ({assignment.from_date}) and today"
        )
    return assignment


def record_visit(
    session: Session,
    *,
    assignment_id: int,
    visited_on: dt.date,
    note: str,
    actor: Actor,
    clock: Clock,
) -> int:
    """Record a visit of an assigned expert or officer (date, note) as a guidance record; not before the
    assignment, not ahead. Returns the record's id."""
    _check_actor(actor)
    note = _text(note, "走访记录", "the note", 2000)
    now = clock.now()
    today = now.astimezone(clock.tz).date()
    begin_write(session)
    try:
        conn = session.connection()
        assignment = conn.execute(sa.select(A).where(A.c.id == assignment_id)).first()
        if assignment is None:
            raise NotFound(f"找不到该派驻记录 / no such assignment: {assignment_id}")
        _firm_in_scope(conn, actor, assignment.enterprise_id)
        visit_assignment(conn, assignment_id=assignment_id, visited_on=visited_on, today=today)
        record = write_record(
            conn,
            enterprise_id=assignment.enterprise_id,
            district_code=assignment.district_code,
            kind="guidance",
            held_on=visited_on,
            inspectors=[assignment.person],
            summary=note,
            guidance_assignment_id=assignment.id,
            extra={"person": assignment.person, "visited_on": visited_on.isoformat(), "note": note},
            actor=actor,
            now=now,
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return int(record["inspection_id"])


# the register's sortable columns, as shown; ties by id
GUIDANCE_SORTS: dict[str, tuple[sa.ColumnElement[Any], ...]] = {
    "name": (E.c.name,),
    "state": (sa.case({s.value: n for n, s in enumerate(State)}, value=E.c.state, else_=99),),
    "person": (A.c.person,),
    "kind": (sa.case({k: n for n, k in enumerate(KINDS)}, value=A.c.kind, else_=99),),
    "from_date": (A.c.from_date,),
}


def guidance_order(sort: str | None) -> Order | None:
    """`column` or `-column` of GUIDANCE_SORTS; None (nothing asked) keeps the register's order."""
    return parse_order(sort, allowed=list(GUIDANCE_SORTS), default="name") if sort else None


def list_guidance(
    conn: sa.Connection,
    *,
    actor: Actor,
    district: str | None = None,
    enterprise_id: int | None = None,
    order: Order | None = None,
) -> list[AssignmentRead]:
    """The register: a district bureau sees its own firms, the city bureau all (optionally one district or firm),
    by district, firm and date unless `order` names a column."""
    _check_actor(actor)
    where: list[sa.ColumnElement[bool]] = [scope(actor, "guidance")]
    if district:
        where.append(A.c.district_code == district)
    if enterprise_id is not None:
        where.append(A.c.enterprise_id == enterprise_id)
    rows = conn.execute(
        sa.select(A, E.c.name.label("enterprise_name"), E.c.uscc, E.c.state.label("firm_state"))
        .join(E, E.c.id == A.c.enterprise_id)
        .where(*where)
        .order_by(
            *(
                [A.c.district_code, A.c.enterprise_id, A.c.from_date, A.c.id]
                if order is None
                else order_by([*GUIDANCE_SORTS[order.key], A.c.id], descending=order.descending)
            )
        )
    ).all()
    visits: dict[int, list[VisitRead]] = {}
    if rows:
        ids = [r.id for r in rows]
        query = (
            sa.select(V)
            .where(V.c.guidance_assignment_id.in_(ids), V.c.kind == "guidance")
            .order_by(V.c.held_on, V.c.id)
        )
        for v in conn.execute(query):
            visits.setdefault(v.guidance_assignment_id, []).append(
                VisitRead(v.id, v.held_on, v.summary or "", v.recorded_by)
            )
    return [
        AssignmentRead(
            id=r.id,
            enterprise_id=r.enterprise_id,
            enterprise_name=r.enterprise_name,
            uscc=r.uscc,
            district_code=r.district_code,
            person=r.person,
            kind=r.kind,
            from_date=r.from_date,
            assigned_by=r.assigned_by,
            state=r.firm_state,
            visits=visits.get(r.id, []),
        )
        for r in rows
    ]
