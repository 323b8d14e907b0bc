"""Supervision pages: what a firm's safety code opens (the public status, or the firm's supervision page for an
officer of its district), the firm's supervision page with the inspection form, and a district's supervision
page (the month's plan as a worklist, firms due more inspections, training sessions and their reach)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import Response

from api.deps import ContextDep, ReadSessionDep, SessionDep
from api.errors import status_of
from api.pages.access import FIRM_READERS, OFFICIALS, PUBLIC_PAGE, UserDep, page
from api.pages.dashboards import _district_in_scope
from api.pages.exports import district_filter, month_filter, page_export, xlsx_response
from api.pages.render import message, redirect, render
from deadlines.inspections import (
    KIND_LABELS,
    RECORDERS,
    REPORT_COLUMNS,
    STATUS_LABELS,
    Finding,
    inspections_of,
    more_inspections_due,
    plan_report,
    plan_worklist,
    record_inspection,
)
from deadlines.supervision import firm_grade, parse_month
from states import InvalidInput, NotAllowed, NotFound, OutOfScope, Role, WorkflowError
from workflow.accounts import actor_of
from workflow.actors import Actor
from workflow.clock import today
from workflow.db import read_unit
from workflow.engine import load_firm
from workflow.evidence import store_evidence
from workflow.guidance import list_guidance
from workflow.safety_code import (
    code_key,
    code_url,
    district_sheet,
    firm_code,
    public_status,
    qr_png,
    scan,
)
from workflow.trainings import KIND_LABELS as TRAINING_LABELS
from workflow.trainings import attendees_from_lines, list_trainings, record_training, training_reach, trainings_of

router = APIRouter(include_in_schema=False)
WORKLIST_SHOWN = 200


@router.get("/code/{token}", dependencies=[PUBLIC_PAGE])
def code_page(token: str, request: Request, context: ContextDep, session: SessionDep, user: UserDep) -> Response:
    """A scanned safety code: an officer who supervises the firm lands on its supervision page; an officer of
    another district gets nothing; anyone else sees the firm's name and campaign status only."""
    with read_unit(session) as conn:
        key = code_key(conn)
        status = public_status(conn, key=key, token=token, clock=context.clock)  # a forged code: not found
        if user is not None and Role(user.role) in OFFICIALS:
            firm_id = scan(conn, key=key, token=token, actor=actor_of(user))
            return redirect(f"/firms/{firm_id}/supervision")
    return render(request, "code.html", status_view=status)


def _supervision(
    request: Request,
    context: Any,
    session: Any,
    actor: Actor,
    enterprise_id: int,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    campaign, clock = context.campaign, context.clock
    with read_unit(session) as conn:
        records = inspections_of(conn, enterprise_id=enterprise_id, actor=actor)
        firm = load_firm(conn, enterprise_id=enterprise_id)
        attended = trainings_of(conn, enterprise_id=enterprise_id, actor=actor)
        token = firm_code(conn, enterprise_id=enterprise_id, actor=actor)
        grade = (
            None
            if actor.role is Role.enterprise
            else firm_grade(conn, campaign=campaign, enterprise_id=enterprise_id, as_of=today(clock))
        )
        assignments = list_guidance(conn, actor=actor, enterprise_id=enterprise_id) if actor.role in RECORDERS else []
    return render(
        request,
        "supervision.html",
        assignments=assignments,
        status=status,
        error=error,
        firm=firm,
        records=records,
        attended=attended,
        grade=grade,
        code_link=code_url(context.settings.public_url, token),
        can_record=actor.role in RECORDERS,
        kinds=KIND_LABELS,
        training_labels=TRAINING_LABELS,
        outline=campaign.outline,
    )


@router.get("/firms/{enterprise_id}/supervision")
def supervision(
    enterprise_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(*FIRM_READERS, scope="enterprise")],
) -> Response:
    """The firm's supervision record: its code, inspections with findings, training attended, the form."""
    return _supervision(request, context, session, actor, enterprise_id)


@router.get("/firms/{enterprise_id}/safety-code.png")
def safety_code_png(
    enterprise_id: int,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(*FIRM_READERS, scope="enterprise")],
) -> Response:
    """The QR image of the firm's safety code."""
    with read_unit(session) as conn:
        token = firm_code(conn, enterprise_id=enterprise_id, actor=actor)
    return Response(qr_png(code_url(context.settings.public_url, token)), media_type="image/png")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


@router.post("/firms/{enterprise_id}/inspections")
def inspection_form(
    enterprise_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(*RECORDERS, scope="enterprise")],
    kind: Annotated[str, Form(max_length=12)] = "",
    held_on: Annotated[str, Form(max_length=10)] = "",
    inspector: Annotated[list[str] | None, Form()] = None,
    item: Annotated[list[str] | None, Form()] = None,
    findings: Annotated[str, Form(max_length=20000)] = "",
    major_findings: Annotated[str, Form(max_length=20000)] = "",
    summary: Annotated[str, Form(max_length=4000)] = "",
    penalty_decision: Annotated[str, Form(max_length=4000)] = "",
    legal_basis: Annotated[str, Form(max_length=4000)] = "",
    guidance_assignment_id: Annotated[str, Form(max_length=12)] = "",
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Record an inspection, patrol or guidance visit (the firm's district bureau), with a photo or document."""
    try:
        try:
            day = dt.date.fromisoformat(held_on)
        except ValueError:
            raise InvalidInput(f"请填写检查日期（YYYY-MM-DD） / give the date (YYYY-MM-DD): {held_on!r}") from None
        evidence: list[int] = []
        if file is not None and file.filename:
            stored = store_evidence(
                session,
                enterprise_id=enterprise_id,
                kind="inspection",
                filename=file.filename,
                stream=file.file,
                actor=actor,
                data_dir=context.settings.data_dir,
                max_bytes=context.settings.upload_max_bytes,
                clock=context.clock,
            )
            evidence.append(int(stored["id"]))
        record_inspection(
            session,
            enterprise_id=enterprise_id,
            kind=kind,
            held_on=day,
            inspectors=inspector or [],
            items_checked=item or [],
            findings=[Finding(t) for t in _lines(findings)] + [Finding(t, "major") for t in _lines(major_findings)],
            summary=summary,
            penalty_decision=penalty_decision,
            legal_basis=legal_basis,
            evidence_ids=evidence,
            guidance_assignment_id=int(guidance_assignment_id)
            if kind == "guidance" and guidance_assignment_id.isdigit()
            else None,
            actor=actor,
            campaign=context.campaign,
            clock=context.clock,
        )
    except WorkflowError as exc:
        if isinstance(exc, NotFound | NotAllowed):
            raise
        return _supervision(
            request, context, session, actor, enterprise_id, error=message(request, str(exc)), status=status_of(exc)
        )
    return redirect(f"/firms/{enterprise_id}/supervision#records", notice="inspection")


# ---- a district's supervision ----------------------------------------------------------------------------


def _month(text: str | None, clock: Any) -> dt.date:
    return parse_month(text) if text else today(clock).replace(day=1)


def _district_page(
    request: Request,
    context: Any,
    session: Any,
    actor: Actor,
    code: str,
    month_text: str | None,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    campaign, clock = context.campaign, context.clock
    month = _month(month_text, clock)
    with read_unit(session) as conn:
        items = list(plan_worklist(conn, campaign=campaign, district=code, month=month, actor=actor, clock=clock))
        due = more_inspections_due(conn, campaign=campaign, district=code, actor=actor, clock=clock)
        sessions = list_trainings(conn, actor=actor, district=code)
        reach = training_reach(conn, actor=actor, district=code)
    counts = {s: sum(i.status == s for i in items) for s in STATUS_LABELS}
    district = campaign.district(code)
    return render(
        request,
        "district_supervision.html",
        status=status,
        error=error,
        district=code,
        district_name=(district.name, district.name_en),
        month=month,
        previous=(month - dt.timedelta(days=1)).replace(day=1),
        items=items[:WORKLIST_SHOWN],
        more=len(items) > WORKLIST_SHOWN,
        counts=counts,
        total=len(items),
        status_labels=STATUS_LABELS,
        due=due,
        sessions=sessions,
        reach=reach,
        kinds=KIND_LABELS,
        training_labels=TRAINING_LABELS,
        can_record=actor.role in RECORDERS,
    )


@router.get("/districts/{district_code}/supervision")
def district_supervision(
    district_code: str,
    request: Request,
    context: ContextDep,
    session: ReadSessionDep,
    actor: Annotated[Actor, page(*OFFICIALS, scope="district")],
    month: Annotated[str | None, Query(max_length=7)] = None,
) -> Response:
    """The district's supervision: this month's plan worked through, firms due more inspections, training."""
    code = _district_in_scope(actor, district_code, context)
    return _district_page(request, context, session, actor, code, month)


@router.post("/districts/{district_code}/trainings")
def training_form(
    district_code: str,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(Role.district_bureau, scope="district")],
    kind: Annotated[str, Form(max_length=12)] = "",
    held_on: Annotated[str, Form(max_length=10)] = "",
    topic: Annotated[str, Form(max_length=200)] = "",
    firms: Annotated[str, Form(max_length=100_000)] = "",
) -> Response:
    """Record a training session or briefing: one firm a line (credit code, optionally `:people`)."""
    code = _district_in_scope(actor, district_code, context)
    try:
        try:
            day = dt.date.fromisoformat(held_on)
        except ValueError:
            raise InvalidInput(f"请填写日期（YYYY-MM-DD） / give the date (YYYY-MM-DD): {held_on!r}") from None
        with read_unit(session) as conn:
            attendees = attendees_from_lines(conn, lines=_lines(firms), actor=actor)
        record_training(
            session,
            kind=kind,
            held_on=day,
            topic=topic,
            attendees=attendees,
            actor=actor,
            campaign=context.campaign,
            clock=context.clock,
        )
    except WorkflowError as exc:
        if isinstance(exc, NotAllowed):
            raise
        return _district_page(
            request, context, session, actor, code, None, error=message(request, str(exc)), status=status_of(exc)
        )
    return redirect(f"/districts/{code}/supervision#trainings", notice="training")


@router.get("/districts/{district_code}/safety-codes.pdf")
def safety_code_sheet(
    district_code: str,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(Role.city_bureau, Role.district_bureau, scope="district")],
) -> Response:
    """The district's sheet of safety codes for printing (PDF)."""
    code = _district_in_scope(actor, district_code, context)
    district = context.campaign.district(code)
    if district is None:  # `_district_in_scope` has refused an unknown district already
        raise OutOfScope(f"找不到该辖区 / no such district: {code}")
    with read_unit(session) as conn:
        sheet = district_sheet(
            conn,
            district_code=code,
            district_name=district.name,
            actor=actor,
            base_url=context.settings.public_url,
            clock=context.clock,
        )
    headers = {"Content-Disposition": f'attachment; filename="{sheet.filename}"'}
    return Response(sheet.pdf, media_type="application/pdf", headers=headers)


@router.get("/inspections/report.xlsx")
def report_export(
    request: Request,
    context: ContextDep,
    session: ReadSessionDep,
    actor: Annotated[Actor, page(*OFFICIALS)],
    month: Annotated[str | None, Query(max_length=7)] = None,
) -> Response:
    """Planned against done for a month, per district and grade (a district bureau: its own), as XLSX."""
    first = _month(month, context.clock)
    with read_unit(session) as conn:
        report = plan_report(conn, campaign=context.campaign, month=first, actor=actor, clock=context.clock)
    filters = [month_filter(first)]
    if actor.district_code:
        filters.insert(0, district_filter(context.campaign, actor.district_code))
    export = page_export(
        request, context, what_zh="检查计划完成情况", what_en="Inspections planned and done", slug="inspections",
        filters=filters,
    )  # fmt: skip
    return xlsx_response(export, columns=REPORT_COLUMNS, rows=report.sheet_rows(context.campaign, export.lang))
