"""Officials' oversight pages: escalations, referrals to the local governments (with
the city's decisions, the local government's acknowledgement and an XLSX export) and the outbox."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from api.deps import ContextDep, ReadSessionDep, SessionDep
from api.pages.access import CITY, OFFICIALS, REFERRAL_READERS, page
from api.pages.exports import referral_export as referral_xlsx
from api.pages.firms import refused
from api.pages.render import message, redirect, refusal, render
from deadlines.escalations import (
    ACTS_ON,
    RULE_LABELS,
    STEP_LABELS,
    CaseOutcome,
    CasePage,
    acknowledge_cases,
    acknowledge_escalation,
    list_cases,
)
from deadlines.escalations import STATUSES as ESCALATION_STATUSES
from deadlines.referrals import (
    DELIVERED,
    GROUNDS_LABELS,
    STATUS_LABELS,
    count_referrals,
    list_referrals,
    list_suggestions,
    propose_referral,
    referral_order,
    take_referral_step,
)
from notifications.outbox import WATCHED as OUTBOX_STATUSES
from notifications.outbox import OutboxError, outbox_lines, retry_messages, watched_counts
from states import InvalidInput, Role, WorkflowError
from workflow.actors import Actor
from workflow.clock import today
from workflow.db import read_unit
from workflow.guidance import KINDS as GUIDE_KINDS
from workflow.guidance import assign_guide, guidance_order, list_guidance, record_visit
from workflow.labels import AUDIENCES, MAIL_ERRORS, MAIL_KINDS, MAIL_STATUSES, zh
from workflow.listing import DEFAULT_PAGE_SIZE, MAX_PAGE, MAX_PAGE_SIZE, check_paging, page_count
from workflow.listing import PAGE_SIZES as LIST_PAGE_SIZES

router = APIRouter(include_in_schema=False)
Text = Annotated[str | None, Query(max_length=40)]
LIST_LIMIT = 500
MAIL_KINDS_ZH, MAIL_STATUSES_ZH, MAIL_ERRORS_ZH, AUDIENCES_ZH = (
    zh(MAIL_KINDS),
    zh(MAIL_STATUSES),
    zh(MAIL_ERRORS),
    zh(AUDIENCES),
)


def _district_filter(actor: Actor, district: str | None) -> str | None:
    """A district bureau (and a local government) looks at its own district whatever it asks for."""
    if actor.role in (Role.district_bureau, Role.local_government):
        return actor.district_code
    return district or None


PAGE_SIZES = (50, 100, 200, 500)


def escalation_page(
    request: Request,
    context: Any,
    session: Any,
    actor: Actor,
    params: dict[str, Any],
    *,
    error: str | None = None,
    code: int = 200,
    results: list[CaseOutcome] | None = None,
) -> Response:
    """The escalations as cases (one firm × rule at its highest step), the steps this office acts on."""
    cases = CasePage(0, [])
    size = params["size"]
    try:
        with read_unit(session) as conn:
            cases = list_cases(
                conn,
                actor=actor,
                as_of=today(context.clock),
                district=_district_filter(actor, params["district"]),
                status=params["status"],
                level=params["level"],
                rule=params["rule"],
                sort=params["sort"],
                descending=params["desc"],
                limit=size,
                offset=(params["page"] - 1) * size,
            )
    except InvalidInput as exc:
        error, code = message(request, str(exc)), 422
    return render(
        request,
        "escalations.html",
        status=code,
        error=error,
        cases=cases.items,
        total=cases.total,
        pages=max(1, -(-cases.total // size)),
        page_sizes=PAGE_SIZES,
        params=params,
        statuses=ESCALATION_STATUSES,
        levels=ACTS_ON.get(actor.role, ()),
        step_labels=STEP_LABELS,
        rule_labels=RULE_LABELS,
        can_acknowledge=bool(ACTS_ON.get(actor.role)),
        results=None if results is None else [r.as_json() | {"text": message(request, r.message)} for r in results],
    )


def _escalation_params(
    district: str | None,
    status: str | None,
    level: str | None,
    rule: str | None,
    sort: str | None,
    desc: bool,
    page: int,
    size: int,
) -> dict[str, Any]:
    return {
        "district": district or None,
        "status": status or None,
        "level": level or None,
        "rule": rule or None,
        "sort": sort or "days",
        "desc": desc,
        "page": page,
        "size": size if size in PAGE_SIZES else PAGE_SIZES[1],
    }


@router.get("/escalations")
def escalations(
    request: Request,
    context: ContextDep,
    session: ReadSessionDep,
    actor: Annotated[Actor, page(*REFERRAL_READERS)],
    district: Text = None,
    status: Text = "open",
    level: Text = None,
    rule: Text = None,
    sort: Text = None,
    desc: bool = False,
    page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
    size: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    """Escalations of the caller's scope as cases (open ones by default), at the steps the office acts on,
    sortable by days overdue, firm, district and rule."""
    params = _escalation_params(district, status, level, rule, sort, desc, page_no, size)
    return escalation_page(request, context, session, actor, params)


@router.post("/escalations/acknowledge")
def acknowledge_batch(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(Role.city_bureau, Role.support_center, Role.district_bureau)],
    ticked: Annotated[list[str] | None, Form(alias="case", max_length=60)] = None,
) -> Response:
    """Batch 签收 of the ticked cases ("firm id:rule"); the page answers with each case's result."""
    picked = []
    for value in ticked or []:
        eid, _, rule = str(value).partition(":")
        if eid.isdigit() and rule:
            picked.append((int(eid), rule[:40]))
    params = _escalation_params(None, "open", None, None, None, False, 1, PAGE_SIZES[1])
    try:
        results = acknowledge_cases(session, cases=picked, actor=actor, clock=context.clock)
    except WorkflowError as exc:
        error, code = refusal(request, exc)
        return escalation_page(request, context, session, actor, params, error=error, code=code)
    return escalation_page(request, context, session, actor, params, results=results)


@router.post("/escalations/{escalation_id}/acknowledge")
def acknowledge(
    escalation_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(Role.city_bureau, Role.support_center, Role.district_bureau, scope="escalation")],
) -> Response:
    """The office an escalation reached takes note of one step (it resolves when the firm moves on)."""
    try:
        acknowledge_escalation(session, escalation_id=escalation_id, actor=actor, clock=context.clock)
    except WorkflowError as exc:
        error, code = refusal(request, exc)
        params = _escalation_params(None, "open", None, None, None, False, 1, PAGE_SIZES[1])
        return escalation_page(request, context, session, actor, params, error=error, code=code)
    return redirect("/escalations", notice="acknowledged")


def _referrals(
    conn: Any,
    actor: Actor,
    campaign: Any,
    district: str | None,
    status: str | None,
    sort: str | None = None,
    **page: int,
) -> list[Any]:
    if status and status not in STATUS_LABELS:
        raise InvalidInput(f"未知状态 {status} / unknown status: {status}")
    order = referral_order(sort)
    return list_referrals(
        conn,
        actor=actor,
        campaign=campaign,
        district=_district_filter(actor, district),
        status=status or None,
        order=order,
        **page,
    )


def referral_page(
    request: Request,
    context: Any,
    session: Any,
    actor: Actor,
    district: str | None,
    status: str | None,
    *,
    sort: str | None = None,
    page_no: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    error: str | None = None,
    code: int = 200,
) -> Response:
    rows: list[Any] = []
    suggestions: list[Any] = []
    total = 0
    try:
        check_paging(page_no, page_size)
        with read_unit(session) as conn:
            rows = _referrals(
                conn,
                actor,
                context.campaign,
                district,
                status,
                sort,
                limit=page_size,
                offset=(page_no - 1) * page_size,
            )
            total = count_referrals(conn, actor=actor, district=_district_filter(actor, district), status=status)
            if actor.role in OFFICIALS:
                suggestions = list_suggestions(conn, actor=actor, district=_district_filter(actor, district))
    except InvalidInput as exc:
        error, code = message(request, str(exc)), 422
    statuses = STATUS_LABELS
    if actor.role is Role.local_government:  # only what the city confirmed exists for the local government
        statuses = {k: v for k, v in STATUS_LABELS.items() if k in DELIVERED}
    return render(
        request,
        "referrals.html",
        status=code,
        error=error,
        rows=rows,
        total=total,
        page_no=page_no,
        pages=page_count(total, page_size),
        page_size=page_size,
        page_sizes=LIST_PAGE_SIZES,
        sort=sort or "district",
        params={"district": district or None, "status": status or None},
        grounds=GROUNDS_LABELS,
        statuses=statuses,
        suggestions=suggestions[:LIST_LIMIT],
        can_propose=actor.role is Role.district_bureau,
        can_decide=actor.role is Role.city_bureau,
        can_acknowledge=actor.role is Role.local_government,
    )


@router.get("/referrals")
def referrals(
    request: Request,
    context: ContextDep,
    session: ReadSessionDep,
    actor: Annotated[Actor, page(*REFERRAL_READERS)],
    district: Text = None,
    status: Text = None,
    sort: Text = None,
    page_no: Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> Response:
    """Key-field firms referred to their local government: the city and the district see theirs, the local
    government the referrals of its area. Sorted by any column shown, a chosen number a page."""
    return referral_page(
        request, context, session, actor, district, status, sort=sort, page_no=page_no, page_size=page_size
    )


@router.post("/firms/{enterprise_id}/referral")
def propose(
    enterprise_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(Role.district_bureau, scope="enterprise")],
    grounds: Annotated[str, Form(max_length=40)],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """A district bureau proposes one of its key-field firms for referral; the grounds must hold today."""
    try:
        propose_referral(
            session,
            enterprise_id=enterprise_id,
            grounds=grounds,
            actor=actor,
            context=context.service,
            note=note or None,
        )
    except WorkflowError as exc:
        return refused(request, context, session, actor, enterprise_id, exc)
    return redirect("/referrals", notice="referral")


@router.get("/referrals.xlsx")
def referral_export(
    request: Request,
    context: ContextDep,
    session: ReadSessionDep,
    actor: Annotated[Actor, page(*REFERRAL_READERS)],
    district: Text = None,
    status: Text = None,
    sort: Text = None,
) -> Response:
    """The referral list as XLSX in the page's language, in the order the page shows, its title and file name
    saying the filter."""
    with read_unit(session) as conn:
        rows = _referrals(conn, actor, context.campaign, district, status, sort)
    return referral_xlsx(request, context, district=_district_filter(actor, district), status=status, rows=rows)


def _decided(request: Request, context: Any, session: Any, actor: Actor, exc: WorkflowError) -> Response:
    error, code = refusal(request, exc)
    return referral_page(request, context, session, actor, None, None, error=error, code=code)


@router.post("/referrals/{referral_id}/{decision}")
def decide(
    referral_id: int,
    decision: str,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(Role.city_bureau, Role.local_government, scope="referral")],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """The city bureau confirms or declines a proposed referral; the local government acknowledges a
    confirmed one of its area."""
    try:
        take_referral_step(session, referral_id, decision, actor=actor, context=context.service, note=note)
    except WorkflowError as exc:
        return _decided(request, context, session, actor, exc)
    return redirect("/referrals", notice="referral")


def guidance_page(
    request: Request,
    session: Any,
    actor: Actor,
    district: str | None,
    *,
    sort: str | None = None,
    error: str | None = None,
    code: int = 200,
) -> Response:
    rows: list[Any] = []
    try:
        order = guidance_order(sort)
        with read_unit(session) as conn:
            rows = list_guidance(conn, actor=actor, district=_district_filter(actor, district), order=order)
    except InvalidInput as exc:
        error, code = message(request, str(exc)), 422
    return render(
        request,
        "guidance.html",
        status=code,
        error=error,
        rows=rows,
        kinds=GUIDE_KINDS,
        sort=sort or "",
        params={"district": district or None},
    )


@router.get("/guidance")
def guidance(
    request: Request,
    session: SessionDep,
    actor: Annotated[Actor, page(Role.city_bureau, Role.district_bureau)],
    district: Text = None,
    sort: Text = None,
) -> Response:
    """Experts and officers sent to benchmark candidates (派驻专家重点指导、监管人员重点督导) and their visits:
    a district bureau sees its own firms, the city bureau all; sorted by any column but the visits."""
    return guidance_page(request, session, actor, district, sort=sort)


@router.post("/firms/{enterprise_id}/guidance")
def assign(
    enterprise_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(Role.city_bureau, Role.district_bureau, scope="enterprise")],
    person: Annotated[str, Form(max_length=80)],
    kind: Annotated[str, Form(max_length=12)],
    from_date: Annotated[str, Form(max_length=10)],
) -> Response:
    """Send an expert or an officer to a benchmark candidate (from the firm page)."""
    try:
        assign_guide(
            session,
            enterprise_id=enterprise_id,
            person=person,
            kind=kind,
            from_date=_day(from_date),
            actor=actor,
            clock=context.clock,
        )
    except WorkflowError as exc:
        return refused(request, context, session, actor, enterprise_id, exc)
    return redirect(f"/firms/{enterprise_id}#guidance", notice="guidance")


@router.post("/guidance/{assignment_id}/visits")
def visit(
    assignment_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(Role.city_bureau, Role.district_bureau, scope="guidance")],
    visited_on: Annotated[str, Form(max_length=10)],
    note: Annotated[str, Form(max_length=2000)],
) -> Response:
    """Record a visit of an assigned expert or officer."""
    try:
        record_visit(
            session,
            assignment_id=assignment_id,
            visited_on=_day(visited_on),
            note=note,
            actor=actor,
            clock=context.clock,
        )
    except WorkflowError as exc:
        error, code = refusal(request, exc)
        return guidance_page(request, session, actor, None, error=error, code=code)
    return redirect("/guidance", notice="guidance")


def _day(text: str) -> Any:
    import datetime as dt

    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"日期格式应为 YYYY-MM-DD：{text} / a date is written YYYY-MM-DD: {text}") from None


def outbox_page(
    request: Request,
    context: Any,
    session: Any,
    actor: Actor,
    status: str | None,
    district: str | None,
    *,
    error: str | None = None,
    code: int = 200,
) -> Response:
    if status and status not in OUTBOX_STATUSES:
        status = None
    scope = _district_filter(actor, district)
    with read_unit(session) as conn:
        rows = outbox_lines(conn, campaign=context.campaign, status=status, district=scope, limit=LIST_LIMIT)
        counts = watched_counts(conn, district=scope)
    districts = {d.code: d for d in context.campaign.districts}
    return render(
        request,
        "outbox.html",
        status=code,
        error=error,
        rows=rows,
        counts=counts,
        params={"status": status, "district": district or None},
        statuses=OUTBOX_STATUSES,
        kinds=MAIL_KINDS_ZH,
        status_names=MAIL_STATUSES_ZH,
        reasons=MAIL_ERRORS_ZH,
        audiences=AUDIENCES_ZH,
        districts=districts,
        city=actor.role in CITY,
        can_retry=actor.role is Role.city_bureau,
    )


@router.get("/outbox")
def outbox(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(*OFFICIALS)],
    status: Text = None,
    district: Text = None,
) -> Response:
    """Mail waiting to go out, failed or undeliverable, oldest first, in words: what kind, to whom, why it
    did not go out (a district bureau sees its district's)."""
    return outbox_page(request, context, session, actor, status, district)


@router.post("/outbox/{outbox_id}/retry")
def outbox_retry(
    outbox_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(Role.city_bureau)],
) -> Response:
    """重新发送: the city bureau puts a failed or undeliverable message back in the queue (recorded with its
    name; the same service as `dabiao outbox retry`)."""
    try:
        retry_messages(session, ids=[outbox_id], by=actor.name, now=context.clock.now())
    except OutboxError as exc:
        return outbox_page(request, context, session, actor, None, None, error=message(request, str(exc)), code=409)
    return redirect("/outbox", notice="mail_retried")
