"""What the firm pages read besides `queries.firm_detail`: the latest self-assessment with its item scores,
the uploaded files, the triggers still blocked and why, who acted in the history (office and person), the
way on from the firm's state and what a returned application still lacks, and a whole firm list streamed for
export."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from states import MACHINE, Role, State
from workflow.actors import Actor
from workflow.campaign import Campaign
from workflow.clock import today
from workflow.context import Context
from workflow.dossier import DOSSIER_ITEMS
from workflow.facts import DbFacts
from workflow.labels import AUDIENCES, Label
from workflow.queries import FirmFilter, firm_where, overdue_clause
from workflow.tables import (
    DISTRICTS,
    ENTERPRISES,
    EVENTS,
    EVIDENCE_FILES,
    SELF_ASSESSMENT_ITEMS,
    SELF_ASSESSMENTS,
    USERS,
)

E = ENTERPRISES


# ---- a whole firm list, for export ----------------------------------------------------------------


def firm_export_rows(conn: sa.Connection, *, actor: Actor, filters: FirmFilter) -> Iterator[sa.Row[Any]]:
    """Every firm of a list — the same scope and filters as `queries.list_firms`, without paging — streamed."""
    filters.check()
    query = (
        sa.select(
            E.c.id,
            E.c.uscc,
            E.c.name,
            DISTRICTS.c.name.label("district_name"),
            E.c.sector,
            E.c.key_field,
            E.c.above_size,
            E.c.state,
            E.c.state_since,
            overdue_clause().label("overdue"),
            E.c.principal,
            E.c.phone,
        )
        .join(DISTRICTS, DISTRICTS.c.code == E.c.district_code)
        .where(*firm_where(actor, filters))
        .order_by(E.c.id)
    )
    yield from conn.execution_options(yield_per=2000).execute(query)


# ---- what the firm page shows besides `queries.firm_detail` ---------------------------------------


@dataclass(frozen=True)
class SelfAssessmentRead:
    id: int
    total_score: float
    recorded_at: dt.datetime
    recorded_by: str
    items: dict[str, tuple[float, str | None]]  # outline item code → (score, note)


def latest_self_assessment(conn: sa.Connection, *, enterprise_id: int) -> SelfAssessmentRead | None:
    """The firm's latest self-assessment with its item scores (the caller has checked the scope)."""
    head = conn.execute(
        sa.select(SELF_ASSESSMENTS)
        .where(SELF_ASSESSMENTS.c.enterprise_id == enterprise_id)
        .order_by(SELF_ASSESSMENTS.c.id.desc())
        .limit(1)
    ).first()
    if head is None:
        return None
    items = conn.execute(
        sa.select(SELF_ASSESSMENT_ITEMS.c.item_code, SELF_ASSESSMENT_ITEMS.c.score, SELF_ASSESSMENT_ITEMS.c.note).where(
            SELF_ASSESSMENT_ITEMS.c.assessment_id == head.id
        )
    )
    return SelfAssessmentRead(
        id=int(head.id),
        total_score=float(head.total_score),
        recorded_at=head.recorded_at,
        recorded_by=str(head.recorded_by),
        items={str(r.item_code): (float(r.score), r.note) for r in items},
    )


def evidence_of(conn: sa.Connection, *, enterprise_id: int) -> list[sa.Row[Any]]:
    """The firm's uploaded files, oldest first (the caller has checked the scope)."""
    return list(
        conn.execute(
            sa.select(EVIDENCE_FILES)
            .where(EVIDENCE_FILES.c.enterprise_id == enterprise_id)
            .order_by(EVIDENCE_FILES.c.id)
        )
    )


def blocked_triggers(conn: sa.Connection, *, firm: sa.Row[Any], role: Role, context: Context) -> dict[str, list[str]]:
    """The triggers this role could fire from the firm's state but for guards on the firm's record, with
    each failing guard's reason ("中文 / English") — what is still to be done."""
    campaign, clock = context.campaign, context.clock
    facts = DbFacts(conn, firm=firm, campaign=campaign, today=today(clock), payload={})
    return MACHINE.blocked(state=State(firm.state), role=role, facts=facts)


# ---- who acted, and who acts next -----------------------------------------------------------------


def office_of(role: Role | str, *, campaign: Campaign, district_code: str | None, firm_name: str) -> Label:
    """The office a role acts for on this firm: the firm itself, its district's bureau or local government,
    the city's bureau or support centre; a reviewer acts for the evaluator pool."""
    info = campaign.campaign
    district = campaign.district(district_code) if district_code else None
    match Role(role):
        case Role.enterprise:
            return Label(firm_name, firm_name)
        case Role.city_bureau:
            return Label(f"{info.city}应急管理局", f"{info.city_en} emergency management bureau")
        case Role.support_center:
            return Label(f"{info.city}应急保障中心", f"{info.city_en} emergency support center")
        case Role.district_bureau if district is not None:
            return Label(f"{district.name}应急管理局", f"{district.name_en} emergency management bureau")
        case Role.local_government if district is not None:
            return Label(district.local_government, f"{district.name_en} local government")
    return AUDIENCES[Role(role).value]


def person_of(name: str, *, display_name: str | None, office: Label) -> str | None:
    """The person beside an office in the history: the account's shown name, unless it only repeats the office
    or the login; an actor without an account (the sweep, the command line) by its Chinese name; a firm's
    principal written "姓名（企业名称）" by the name alone."""
    if display_name is not None:
        return None if display_name in (office.zh, office.en, name) else display_name
    person = name.partition(" / ")[0].strip()
    person = person.removesuffix(f"（{office.zh}）")
    return None if not person or person in (office.zh, office.en) else person


def name_actors(
    conn: sa.Connection,
    *,
    history: list[dict[str, Any]],
    firm_name: str,
    district_code: str,
    campaign: Campaign,
    reveal_reviewers: bool = True,
) -> None:
    """Put on each entry of a firm's history who acted (`who`: Label "office · person"), from the accounts
    of the logins it names; one query for the whole history. Without `reveal_reviewers` (the firm's own
    view: who reviews it is not the firm's to know) a reviewer is only "评定人员"."""
    logins = {str(h["actor"]) for h in history if h.get("actor")}
    users = {}
    if logins:
        rows = conn.execute(
            sa.select(USERS.c.username, USERS.c.display_name, USERS.c.district_code, USERS.c.organisation).where(
                USERS.c.username.in_(sorted(logins))
            )
        )
        users = {str(r.username): r for r in rows}
    for h in history:
        login = str(h.get("actor") or "")
        user = users.get(login)
        role = h.get("role") or (Role.enterprise.value if h.get("kind") == "evidence" else None)
        if role is None or role not in Role.__members__:
            h["who"] = Label(login, login)
            continue
        office = office_of(
            role,
            campaign=campaign,
            district_code=(user.district_code if user is not None else None) or district_code,
            firm_name=firm_name,
        )
        if Role(role) is Role.reviewer:
            if not reveal_reviewers:
                h["who"] = office
                continue
            if user is not None and user.organisation:
                office = Label(user.organisation, user.organisation)
        person = person_of(login, display_name=user.display_name if user is not None else None, office=office)
        h["who"] = Label(*(f"{o} · {person}" if person else o for o in office))


@dataclass(frozen=True)
class NextStep:
    trigger: str
    task: Label  # the step as a task (线上审核)
    offices: tuple[Label, ...]  # who takes it (市应急保障中心)
    roles: frozenset[Role]


def next_steps(conn: sa.Connection, *, firm: sa.Row[Any], context: Context) -> list[NextStep]:
    """The way on from the firm's state, from the machine (`CampaignMachine.next_steps`), with the offices
    that take each step for this firm."""
    campaign, clock = context.campaign, context.clock
    facts = DbFacts(conn, firm=firm, campaign=campaign, today=today(clock), payload={})
    out = []
    for spec, roles in MACHINE.next_steps(state=State(firm.state), facts=facts):
        order = [r for r in Role if r in roles]
        offices = tuple(
            office_of(r, campaign=campaign, district_code=firm.district_code, firm_name=firm.name) for r in order
        )
        out.append(NextStep(spec.name, Label(spec.task("zh"), spec.task("en")), offices, frozenset(roles)))
    return out


# ---- a returned application -----------------------------------------------------------------------


@dataclass(frozen=True)
class MissingItem:
    code: str
    label: Label
    supplied_at: dt.datetime | None  # when the firm supplied it after the return (None: not yet)


@dataclass(frozen=True)
class ReturnedApplication:
    """The firm's latest application, returned: when, by whom (the event's login and role), why and what
    it lacked, each item with whether the firm has supplied it since."""

    application_id: int
    returned_at: dt.datetime
    actor: str | None
    role: str | None
    reason: str
    missing: tuple[MissingItem, ...]

    @property
    def outstanding(self) -> tuple[MissingItem, ...]:
        return tuple(m for m in self.missing if m.supplied_at is None)


def returned_application(
    conn: sa.Connection, *, enterprise_id: int, application: dict[str, Any] | None
) -> ReturnedApplication | None:
    """The return a firm still has to answer: its latest application was returned (the caller has checked
    the scope). Each dossier item the district named is supplied by a self-assessment (对照创建大纲的自评) or
    an upload of that kind later in the firm's chain than the return."""
    if application is None or application["status"] != "returned":
        return None
    event = conn.execute(
        sa.select(EVENTS.c.seq, EVENTS.c.at, EVENTS.c.actor, EVENTS.c.role)
        .where(EVENTS.c.enterprise_id == enterprise_id, EVENTS.c.trigger == "return_application")
        .order_by(EVENTS.c.seq.desc())
        .limit(1)
    ).first()
    if event is None:
        return None
    # what the firm did since, in its chain: self-assessments and uploads (with their kind)
    since = conn.execute(
        sa.select(EVENTS.c.trigger, EVENTS.c.at, EVENTS.c.payload)
        .where(
            EVENTS.c.enterprise_id == enterprise_id,
            EVENTS.c.seq > event.seq,
            EVENTS.c.trigger.in_(("self_assessment_recorded", "evidence_uploaded")),
        )
        .order_by(EVENTS.c.seq)
    )
    first: dict[str, dt.datetime] = {}
    for e in since:
        payload = e.payload if isinstance(e.payload, dict) else {}
        code = "self_assessment" if e.trigger == "self_assessment_recorded" else str(payload.get("kind"))
        first.setdefault(code, e.at)
    items = []
    for code in application["missing"]:
        zh, en = DOSSIER_ITEMS.get(code, (code, code))
        items.append(MissingItem(code, Label(zh, en), first.get(code)))
    return ReturnedApplication(
        application_id=int(application["id"]),
        returned_at=event.at,
        actor=event.actor,
        role=event.role,
        reason=application["outcome_reason"] or "",
        missing=tuple(items),
    )
