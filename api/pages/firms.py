"""Firm lists (with the API's filters) and their XLSX export; the firm page (the viewer's current task and
each action in its own panel, state, contacts, next deadline, self-assessment, hazard register, application
and uploads, history) with its 消息 tab (the notices sent to the firm), and its forms, which go through the
same service functions as the API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from sqlmodel import Session

from api.deps import ContextDep, ReadSessionDep, SessionDep
from api.errors import status_of
from api.pages.access import FIRM_READERS, FLASH_COOKIE, OFFICIALS, page
from api.pages.exports import FIRM_COLUMNS, firm_cells, firm_filters, page_export, xlsx_response
from api.pages.i18n import N_
from api.pages.render import message, redirect, refusal, render
from api.pages.worklink import work_suffix
from deadlines.referrals import GROUNDS_LABELS
from deadlines.supervision import firm_grade
from notifications.outbox import firm_message_count, firm_messages
from notifications.render import Renderer
from states import TRIGGERS, InvalidInput, Role, State, WorkflowError
from states.machine import TEAM_ONLY_MESSAGE
from workflow import labels
from workflow.actors import Actor
from workflow.certificates import certificate_panel
from workflow.clock import today
from workflow.db import read_unit
from workflow.dossier import DOSSIER_KINDS, KINDS
from workflow.effects import ALLOWED_KEYS
from workflow.engine import load_firm
from workflow.evidence import Upload, open_evidence, store_upload
from workflow.firing import fire_seen
from workflow.firm_page import (
    blocked_triggers,
    evidence_of,
    firm_export_rows,
    latest_self_assessment,
    name_actors,
    next_steps,
    returned_application,
)
from workflow.guidance import KINDS as GUIDE_KINDS
from workflow.guidance import list_guidance
from workflow.labels import MAIL_STATUSES, RULES, UPLOAD_KINDS, zh
from workflow.limits import TEXT_LIMITS
from workflow.listing import DEFAULT_PAGE_SIZE, MAX_PAGE, MAX_PAGE_SIZE, PAGE_SIZES
from workflow.models import HazardStatus
from workflow.queries import FirmFilter, firm_detail, hazard_firm_id, hazards_of, list_firms
from workflow.records import (
    FiveImplementations,
    decide_rectification,
    raising_office,
    record_self_assessment,
    rectify_hazard,
    report_hazard,
    update_hazard,
)
from workflow.trainings import trainings_of

router = APIRouter(include_in_schema=False)
# how a district reaches a firm's principal (对企业主要负责人逐个通知); mail needs an address on file
NOTIFY_CHANNEL_LABELS = {
    "mail": N_("电子邮件"),
    "phone": N_("电话通知（已联系）"),
    "in_person": N_("当面送达（已送达）"),
    "letter": N_("书面函件（已送达）"),
}
PAGE_SIZE = DEFAULT_PAGE_SIZE
EVIDENCE_KINDS = zh(UPLOAD_KINDS)
DOSSIER_LABELS = {
    "self_assessment": N_("对照创建大纲的自评"),
    "self_assessment_report": N_("自评报告"),
    "application_form": N_("申请表"),
    "supporting_material": N_("佐证材料"),
    "rectification": N_("整改佐证"),
}
SEVERITIES = zh(labels.SEVERITIES)
HAZARD_SOURCES = zh(labels.HAZARD_SOURCES)
HAZARD_STATUSES = zh(labels.HAZARD_STATUSES)
APPLICATION_STATUSES = zh(labels.APPLICATION_STATUSES)
DEADLINE_RULES = zh(
    {
        r: RULES[r]
        for r in ("key_field_started", "above_size_started", "creation_end", "evaluation_end", "hazard_deadline")
    }
)
CERT_LEVELS = {"compliant": N_("达标"), "benchmark": N_("标杆")}
# Recording the team's review score is done on the application page, from the reviewers' scores.
NOT_ON_FIRM_PAGE = ("record_review",)


def flag(value: str | None) -> bool | None:
    """A yes/no filter from a query string: "true"/"false", anything else (or "") means either."""
    return {"true": True, "false": False, "1": True, "0": False}.get((value or "").lower())


# ---- lists ----------------------------------------------------------------------------------------


def _filters(
    district: str | None,
    key_field: str | None,
    above_size: str | None,
    state: str | None,
    overdue: str | None,
    q: str | None,
    page_no: int,
    page_size: int = PAGE_SIZE,
    sort: str | None = None,
    after: int | None = None,
    before: int | None = None,
) -> FirmFilter:
    return FirmFilter(
        district or None,
        flag(key_field),
        state or None,
        flag(overdue),
        (q or "").strip() or None,
        page_no,
        page_size,
        flag(above_size),
        sort=sort or None,
        after=after,
        before=before,
    )


Text = Annotated[str | None, Query(max_length=100)]
PageNo = Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE)]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Sort = Annotated[str | None, Query(max_length=40)]
Neighbour = Annotated[int | None, Query(ge=1, le=2**31 - 1)]


@router.get("/firms")
def firm_list(
    request: Request,
    session: ReadSessionDep,
    actor: Annotated[Actor, page(*FIRM_READERS)],
    district: Text = None,
    key_field: Text = None,
    above_size: Text = None,
    state: Text = None,
    overdue: Text = None,
    q: Text = None,
    page_no: PageNo = 1,
    page_size: PageSize = PAGE_SIZE,
    sort: Sort = None,
    after: Neighbour = None,
    before: Neighbour = None,
) -> Response:
    """Firms in the caller's scope with the API's filters, sorted by any column, a chosen number a page."""
    filters = _filters(district, key_field, above_size, state, overdue, q, page_no, page_size, sort, after, before)
    error: str | None = None
    result: dict[str, Any] = {"items": [], "total": 0, "pages": 1, "sort": "id", "first_id": None, "last_id": None}
    try:
        with read_unit(session) as conn:
            result = list_firms(conn, actor=actor, filters=filters)
    except InvalidInput as exc:
        error = message(request, str(exc))
    params = {
        "district": filters.district,
        "key_field": filters.key_field,
        "above_size": filters.above_size,
        "state": filters.state,
        "overdue": filters.overdue,
        "q": filters.q,
    }
    return render(
        request,
        "firms.html",
        status=422 if error else 200,
        error=error,
        items=result["items"],
        total=result["total"],
        page_no=filters.page,
        pages=result["pages"],
        params=params,
        sort=result["sort"],
        page_size=filters.page_size,
        page_sizes=PAGE_SIZES,
        first_id=result["first_id"],
        last_id=result["last_id"],
        states=list(State),
        can_export=actor.role in OFFICIALS,
    )


@router.get("/firms.xlsx")
def firm_export(
    request: Request,
    context: ContextDep,
    session: ReadSessionDep,
    actor: Annotated[Actor, page(*OFFICIALS)],
    district: Text = None,
    key_field: Text = None,
    above_size: Text = None,
    state: Text = None,
    overdue: Text = None,
    q: Text = None,
) -> Response:
    """The whole list (every page) as XLSX in the page's language, its title and file name saying the filter."""
    filters = _filters(district, key_field, above_size, state, overdue, q, 1)
    export = page_export(
        request,
        context,
        what_zh="企业名录",
        what_en="Firm directory",
        slug="firms",
        filters=firm_filters(filters, context.campaign, scope=actor.district_code),
    )
    with read_unit(session) as conn:
        rows = firm_export_rows(conn, actor=actor, filters=filters)
        return xlsx_response(
            export, columns=FIRM_COLUMNS, rows=firm_cells(rows, campaign=context.campaign, lang=export.lang)
        )


# ---- the firm page --------------------------------------------------------------------------------


def firm_page(
    request: Request,
    context: Any,
    session: Session,
    actor: Actor,
    enterprise_id: int,
    *,
    error: str | None = None,
    status: int = 200,
    kept: dict[str, str] | None = None,
) -> Response:
    """The firm page; after a refused action form, `kept` holds what was typed into it (its trigger, reason and
    opinion) so the officer does not type it again."""
    campaign, clock = context.campaign, context.clock
    with read_unit(session) as conn:
        detail = firm_detail(conn, actor=actor, enterprise_id=enterprise_id, context=context.service)
        firm = load_firm(conn, enterprise_id=enterprise_id)
        hazards = hazards_of(conn, actor=actor, enterprise_id=enterprise_id)
        assessment = latest_self_assessment(conn, enterprise_id=enterprise_id)
        evidence = evidence_of(conn, enterprise_id=enterprise_id)
        attended = trainings_of(conn, enterprise_id=enterprise_id, actor=actor)
        blocked = blocked_triggers(conn, firm=firm, role=actor.role, context=context.service)
        certs = certificate_panel(firm=firm, actor=actor, campaign=campaign, certification=detail["certification"])
        grade = (
            None
            if actor.role is Role.enterprise
            else firm_grade(conn, campaign=campaign, enterprise_id=enterprise_id, as_of=today(clock))
        )
        guidance = None
        if actor.role in (Role.city_bureau, Role.district_bureau):
            guidance = list_guidance(conn, actor=actor, enterprise_id=enterprise_id)
        name_actors(
            conn,
            history=detail["history"],
            firm_name=firm.name,
            district_code=firm.district_code,
            campaign=campaign,
            reveal_reviewers=actor.role is not Role.enterprise,
        )
        returned = returned_application(conn, enterprise_id=enterprise_id, application=detail["application"])
        ahead = next_steps(conn, firm=firm, context=context.service)
        done = _done(request)
        messages_total = firm_message_count(conn, actor=actor, enterprise_id=enterprise_id)
    evidence_by_sha = {f.sha256: f for f in evidence}
    application = detail["application"]
    materials = []
    if application is not None:
        materials = [(m, evidence_by_sha.get(m.get("sha256"))) for m in application["materials"]]
    editable = actor.role is Role.enterprise and detail["state"] in ("self_assessing", "rectifying")
    # findings awaiting the acceptance of the office that raised them, when that office looks
    decidable = {
        h["id"]
        for h in hazards
        if h["status"] == HazardStatus.submitted
        and detail["state"] in ("self_assessing", "rectifying")
        and raising_office(h["source"], key_field=detail["key_field"]) is actor.role
    }
    actions = [
        {
            "trigger": name,
            "destructive": TRIGGERS[name].destructive,
            "needs_reason": "reason" in ALLOWED_KEYS.get(name, ()),
            "takes_findings": "findings" in ALLOWED_KEYS.get(name, ()),
            "takes_materials": "materials" in ALLOWED_KEYS.get(name, ()),
            "takes_opinion": "opinion" in ALLOWED_KEYS.get(name, ()),
            "takes_missing": "missing" in ALLOWED_KEYS.get(name, ()),
            "takes_channel": "channel" in ALLOWED_KEYS.get(name, ()),
        }
        for name in detail["allowed_triggers"]
        if name not in NOT_ON_FIRM_PAGE
    ]
    return render(
        request,
        "firm.html",
        status=status,
        error=error,
        firm=detail,
        sector=campaign.sector(detail["sector"]),
        hazards=hazards,
        attended=attended,
        assessment=assessment,
        evidence=evidence,
        materials=materials,
        actions=actions,
        blocked={name: [message(request, r) for r in reasons] for name, reasons in blocked.items()},
        can_record_review=detail["state"] == "verified"
        and actor.role in TRIGGERS["record_review"].roles_for(key_field=bool(detail["key_field"]))
        and "record_review" not in blocked,
        can_propose_referral=actor.role is Role.district_bureau
        and detail["key_field"]
        and detail["state"] not in ("closed", "certified"),
        referral_grounds=GROUNDS_LABELS,
        guidance=guidance,
        guide_kinds=GUIDE_KINDS,
        editable=editable,
        decidable=decidable,
        checklist=campaign.dossier.verification_checklist,
        dossier_items=DOSSIER_LABELS,
        dossier_kinds=DOSSIER_KINDS,
        limits=TEXT_LIMITS,
        is_firm=actor.role is Role.enterprise,
        outline=campaign.outline,
        evidence_kinds=EVIDENCE_KINDS,
        kinds=KINDS,
        severities=SEVERITIES,
        hazard_sources=HAZARD_SOURCES,
        hazard_statuses=HAZARD_STATUSES,
        application_statuses=APPLICATION_STATUSES,
        deadline_rules=DEADLINE_RULES,
        cert_levels=CERT_LEVELS,
        triggers=TRIGGERS,
        certs=certs,
        grade=grade,
        channels=NOTIFY_CHANNEL_LABELS,
        returned=returned,
        returned_by=next(
            (h["who"] for h in reversed(detail["history"]) if h.get("trigger") == "return_application"), None
        ),
        ahead=ahead,
        mine={step.trigger for step in ahead if actor.role in step.roles},
        done=done,
        messages_total=messages_total,
        tab="record",
        kept=kept or {},
    )


def _done(request: Request) -> str | None:
    """The trigger a form of this page just fired (the notice "done:<trigger>"), for the success message."""
    flash = request.cookies.get(FLASH_COOKIE) or ""
    trigger = flash.removeprefix("done:")
    return trigger if flash.startswith("done:") and trigger in TRIGGERS else None


_renderers: dict[int, Renderer] = {}


def _renderer(context: Any) -> Renderer:
    """The mail renderer (for the subjects of the firm's messages), one per campaign."""
    key = id(context.campaign)
    renderer = _renderers.get(key)
    if renderer is None or renderer.campaign is not context.campaign:
        settings = context.settings
        renderer = Renderer(tz=settings.tz, public_url=settings.public_url, campaign=context.campaign)
        _renderers[key] = renderer
    return renderer


@router.get("/firms/{enterprise_id}/messages")
def messages(
    enterprise_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(*FIRM_READERS, scope="enterprise")],
) -> Response:
    """The 消息 tab: every notice sent to the firm (subject, date, whether it went out), newest first — for the
    firm itself and the offices whose scope it is in."""
    with read_unit(session) as conn:
        detail = firm_detail(conn, actor=actor, enterprise_id=enterprise_id, context=context.service)
        total, items = firm_messages(conn, actor=actor, enterprise_id=enterprise_id, renderer=_renderer(context))
    return render(
        request,
        "firm_messages.html",
        firm=detail,
        sector=context.campaign.sector(detail["sector"]),
        items=items,
        messages_total=total,
        mail_statuses=zh(MAIL_STATUSES),
        is_firm=actor.role is Role.enterprise,
        tab="messages",
    )


@router.get("/firms/{enterprise_id}")
def firm(
    enterprise_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(*FIRM_READERS, scope="enterprise")],
) -> Response:
    """One firm, for itself and for the officials whose scope it is in."""
    return firm_page(request, context, session, actor, enterprise_id)


def refused(
    request: Request,
    context: Any,
    session: Session,
    actor: Actor,
    enterprise_id: int,
    exc: WorkflowError,
    *,
    kept: dict[str, str] | None = None,
) -> Response:
    """A form the service refused: the firm page again, with the service's own message. Records that do not
    exist (or lie outside the scope) and roles that may not act are the error pages' business; a review
    score typed by hand is refused on the firm page with its reason (it comes only from the team)."""
    if str(exc) == TEAM_ONLY_MESSAGE:
        error, status = message(request, str(exc)), status_of(exc)
    else:
        error, status = refusal(request, exc)
    return firm_page(request, context, session, actor, enterprise_id, error=error, status=status, kept=kept)


def findings_from(general: str, major: str) -> list[dict[str, str]]:
    """Findings typed one a line, general and major apart."""
    out = []
    for text, severity in ((general, "general"), (major, "major")):
        out += [{"description": line.strip(), "severity": severity} for line in text.splitlines() if line.strip()]
    return out


@router.post("/firms/{enterprise_id}/transitions/{trigger}")
def transition(
    enterprise_id: int,
    trigger: str,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(*FIRM_READERS, scope="enterprise")],
    version: Annotated[int, Form(ge=1)],
    reason: Annotated[str, Form(max_length=2000)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
    findings_general: Annotated[str, Form(max_length=20000)] = "",
    findings_major: Annotated[str, Form(max_length=20000)] = "",
    material: Annotated[list[int] | None, Form()] = None,
    opinion: Annotated[str, Form(max_length=TEXT_LIMITS["opinion"])] = "",
    checklist: Annotated[list[str] | None, Form()] = None,
    missing: Annotated[list[str] | None, Form()] = None,
    channel: Annotated[str, Form(max_length=20)] = "",
    confirm_name: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    """Fire a trigger from the firm page, with the version the page was drawn at (a change meanwhile is
    refused, as in the API); a destructive one with the firm's name typed to confirm it."""
    allowed = ALLOWED_KEYS.get(trigger, frozenset())
    payload: dict[str, Any] = {}
    if "reason" in allowed:
        payload["reason"] = reason
    if note.strip():
        payload["note"] = note.strip()
    if "channel" in allowed and channel:
        payload["channel"] = channel
    findings = findings_from(findings_general, findings_major)
    if "findings" in allowed and findings:
        payload["findings"] = findings
    if "opinion" in allowed:
        payload["opinion"] = opinion
    if "checklist" in allowed:
        payload["checklist"] = list(checklist or [])
    if "missing" in allowed:
        payload["missing"] = list(missing or [])
    try:
        materials = material if "materials" in allowed else None
        fire_seen(
            session,
            context.service,
            actor,
            enterprise_id,
            trigger,
            payload,
            version,
            material=materials,
            confirm_name=confirm_name,
        )
    except WorkflowError as exc:
        kept = {"trigger": trigger, "reason": reason, "opinion": opinion}
        return refused(request, context, session, actor, enterprise_id, exc, kept=kept)
    return redirect(f"/firms/{enterprise_id}" + work_suffix(request), notice=f"done:{trigger}")


@router.post("/firms/{enterprise_id}/self-assessment")
async def self_assessment(
    enterprise_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(Role.enterprise, scope="enterprise")],
) -> Response:
    """Scores for every item of the creation outline (score_<item>, note_<item>)."""
    form = await request.form()
    fields = {key: str(value) for key, value in form.items() if isinstance(value, str)}

    def work() -> Response | None:
        scores: dict[str, float] = {}
        notes: dict[str, str] = {}
        try:
            for item in context.campaign.outline_items:
                raw = fields.get(f"score_{item.code}", "").strip()
                if raw:
                    try:
                        scores[item.code] = float(raw)
                    except ValueError:
                        raise InvalidInput(
                            f"条目 {item.code} 的得分须为数字 / item {item.code}: the score must be a number"
                        ) from None
                note = fields.get(f"note_{item.code}", "").strip()
                if note:
                    notes[item.code] = note  # the service bounds it, as for the API
            record_self_assessment(
                session,
                enterprise_id=enterprise_id,
                scores=scores,
                notes=notes,
                actor=actor,
                context=context.service,
            )
        except WorkflowError as exc:
            return refused(request, context, session, actor, enterprise_id, exc)
        return None

    answer = await run_in_threadpool(work)
    if answer is not None:
        return answer
    return redirect(f"/firms/{enterprise_id}#self-assessment", notice="self_assessment")


def _five(
    responsible_person: str, measures: str, funds: str, deadline: str, emergency_plan: str
) -> FiveImplementations:
    def text(value: str) -> str | None:
        return value.strip() or None

    amount = funds.strip() or None  # the service reads it as a decimal, as from the API
    try:
        day = dt.date.fromisoformat(deadline) if deadline.strip() else None
    except ValueError:
        raise InvalidInput("整改时限须为日期 / the deadline must be a date") from None
    return FiveImplementations(text(responsible_person), text(measures), amount, day, text(emergency_plan))


# The service refuses a text over the shared limit (workflow.limits) with its own message; the forms only cap
# the body.
Description = Annotated[str, Form(max_length=2 * TEXT_LIMITS["description"])]
Measures = Annotated[str, Form(max_length=2 * TEXT_LIMITS["measures"])]
Plan = Annotated[str, Form(max_length=2 * TEXT_LIMITS["emergency_plan"])]
Person = Annotated[str, Form(max_length=2 * TEXT_LIMITS["responsible_person"])]


@router.post("/firms/{enterprise_id}/hazards")
def new_hazard(
    enterprise_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(Role.enterprise, scope="enterprise")],
    description: Description = "",
    severity: Annotated[str, Form(max_length=10)] = "general",
    responsible_person: Person = "",
    measures: Measures = "",
    funds: Annotated[str, Form(max_length=40)] = "",
    deadline: Annotated[str, Form(max_length=10)] = "",
    emergency_plan: Plan = "",
) -> Response:
    """Register a hazard with as much of its five implementations as is known."""
    try:
        report_hazard(
            session,
            enterprise_id=enterprise_id,
            description=description,
            implementations=_five(responsible_person, measures, funds, deadline, emergency_plan),
            severity=severity,
            actor=actor,
            clock=context.clock,
            campaign=context.campaign,
        )
    except WorkflowError as exc:
        return refused(request, context, session, actor, enterprise_id, exc)
    return redirect(f"/firms/{enterprise_id}#hazards", notice="hazard_added")


def _hazard_firm(session: Session, hazard_id: int) -> int:
    with read_unit(session) as conn:
        return hazard_firm_id(conn, hazard_id=hazard_id)


@router.post("/hazards/{hazard_id}")
def change_hazard(
    hazard_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(Role.enterprise, scope="hazard")],
    responsible_person: Person = "",
    measures: Measures = "",
    funds: Annotated[str, Form(max_length=40)] = "",
    deadline: Annotated[str, Form(max_length=10)] = "",
    emergency_plan: Plan = "",
) -> Response:
    """Fill in an open hazard's five implementations (blank fields keep their value)."""
    try:
        update_hazard(
            session,
            hazard_id=hazard_id,
            implementations=_five(responsible_person, measures, funds, deadline, emergency_plan),
            actor=actor,
            clock=context.clock,
            campaign=context.campaign,
        )
    except WorkflowError as exc:
        refusal(request, exc)  # an unknown hazard goes to the error page before its firm is looked up
        return refused(request, context, session, actor, _hazard_firm(session, hazard_id), exc)
    return redirect(f"/firms/{_hazard_firm(session, hazard_id)}#hazards", notice="hazard_saved")


@router.post("/hazards/{hazard_id}/rectify")
def rectified(
    hazard_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(Role.enterprise, scope="hazard")],
    evidence: Annotated[str, Form(max_length=20)] = "",
    note: Annotated[str, Form(max_length=2 * TEXT_LIMITS["note"])] = "",
) -> Response:
    """Rectify a hazard with the rectification file uploaded for it (the service checks the file)."""
    try:
        rectify_hazard(
            session,
            hazard_id=hazard_id,
            evidence_id=int(evidence) if evidence.strip().isdigit() else None,
            note=note.strip() or None,
            actor=actor,
            clock=context.clock,
        )
    except WorkflowError as exc:
        refusal(request, exc)  # an unknown hazard goes to the error page before its firm is looked up
        return refused(request, context, session, actor, _hazard_firm(session, hazard_id), exc)
    return redirect(f"/firms/{_hazard_firm(session, hazard_id)}#hazards", notice="hazard_rectified")


def _decide(
    hazard_id: int, request: Request, context: Any, session: Session, actor: Actor, *, accept: bool, note: str
) -> Response:
    try:
        decide_rectification(session, hazard_id=hazard_id, accept=accept, note=note, actor=actor, clock=context.clock)
    except WorkflowError as exc:
        refusal(request, exc)  # an unknown hazard goes to the error page before its firm is looked up
        return refused(request, context, session, actor, _hazard_firm(session, hazard_id), exc)
    return redirect(f"/firms/{_hazard_firm(session, hazard_id)}#hazards", notice="fired")


@router.post("/hazards/{hazard_id}/accept")
def accept_rectification(
    hazard_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(*OFFICIALS, scope="hazard")],
    note: Annotated[str, Form(max_length=2 * TEXT_LIMITS["note"])] = "",
) -> Response:
    """The office that raised a finding accepts the firm's rectification."""
    return _decide(hazard_id, request, context, session, actor, accept=True, note=note)


@router.post("/hazards/{hazard_id}/reject")
def reject_rectification(
    hazard_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(*OFFICIALS, scope="hazard")],
    note: Annotated[str, Form(max_length=2 * TEXT_LIMITS["note"])] = "",
) -> Response:
    """The office that raised a finding rejects the firm's rectification, with a note."""
    return _decide(hazard_id, request, context, session, actor, accept=False, note=note)


@router.post("/firms/{enterprise_id}/evidence")
def upload(
    enterprise_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(Role.enterprise, scope="enterprise")],
    file: Annotated[UploadFile, File()],
    kind: Annotated[str, Form(max_length=30)],
    hazard_id: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Upload a file (checked for size, real type and archive bombs, as through the API)."""
    try:
        hazard = int(hazard_id) if hazard_id.strip().isdigit() else None
        upload = Upload(enterprise_id, kind, file.filename or "", file.file, hazard)
        store_upload(session, upload, actor=actor, context=context.service)
    except WorkflowError as exc:
        return refused(request, context, session, actor, enterprise_id, exc)
    return redirect(f"/firms/{enterprise_id}#application", notice="uploaded")


@router.get("/files/{evidence_id}")
def download(
    evidence_id: int,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(*OFFICIALS, Role.enterprise, Role.reviewer, scope="evidence")],
) -> FileResponse:
    """An uploaded file, to whoever may see the firm's record (and the reviewers of its application);
    always as a download, never shown inline."""
    with read_unit(session) as conn:
        row, path = open_evidence(conn, evidence_id=evidence_id, actor=actor, data_dir=context.settings.data_dir)
    return FileResponse(path, media_type=row.content_type, filename=row.filename, content_disposition_type="attachment")
