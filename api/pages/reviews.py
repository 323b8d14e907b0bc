"""The reviewer's page (assigned applications) and an application's page: materials, the review team's
progress, the scoring form for its reviewers, and for its organiser drawing the team and recording the
team's result — through the evaluator pool's service functions, as the API does."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlmodel import Session

from api.deps import ContextDep, ReadSessionDep, SessionDep
from api.pages.access import OFFICIALS, page
from api.pages.firms import APPLICATION_STATUSES, EVIDENCE_KINDS, findings_from
from api.pages.render import redirect, refusal, render
from states import InvalidInput, Role, WorkflowError
from workflow import labels
from workflow.actors import Actor
from workflow.db import read_unit
from workflow.engine import load_firm
from workflow.firm_page import evidence_of
from workflow.labels import zh
from workflow.models import ApplicationStatus, ReviewAssignmentStatus
from workflow.pool import (
    PARTS,
    assignment_status,
    decide_report,
    element_points,
    form_team,
    list_reports,
    member_names,
    record_reviewer_score,
    record_team_result,
    recuse,
    redraw_team,
    report_misconduct,
    score_from_text,
    team_result,
    verify_draws,
)
from workflow.queries import application_in_scope, review_assignments_of

router = APIRouter(include_in_schema=False)
DRAW_KINDS = zh(labels.DRAW_KINDS)
REPORT_STATUSES = zh(labels.REPORT_STATUSES)
Organiser = Annotated[Actor, page(Role.support_center, Role.district_bureau, scope="application")]


@router.get("/reviews")
def my_reviews(
    request: Request, context: ContextDep, session: ReadSessionDep, actor: Annotated[Actor, page(Role.reviewer)]
) -> Response:
    """The reviewer's open assignments, oldest first."""
    with read_unit(session) as conn:
        assignments = review_assignments_of(conn, actor=actor, clock=context.clock)["items"]
    names = {d.code: d for d in context.campaign.districts}
    return render(request, "reviews.html", assignments=assignments, districts=names)


def application_page(
    request: Request,
    context: Any,
    session: Session,
    actor: Actor,
    application_id: int,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    campaign = context.campaign
    with read_unit(session) as conn:
        app = application_in_scope(conn, actor=actor, application_id=application_id)
        firm = load_firm(conn, enterprise_id=app.enterprise_id)
        files = {f.sha256: f for f in evidence_of(conn, enterprise_id=firm.id)}
        team = team_result(conn, application_id=application_id, campaign=campaign)
        people = member_names(conn, user_ids=team["members"])
        draws = verify_draws(conn, application_id=application_id)["draws"] if actor.role in OFFICIALS else []
        mine = assignment_status(conn, application_id=application_id, reviewer_id=actor.user_id)
    organiser = Role.support_center if firm.key_field else Role.district_bureau
    is_organiser = actor.role is organiser
    under_review = app.status == ApplicationStatus.verified and app.audit_passed_at is not None
    return render(
        request,
        "application.html",
        status=status,
        error=error,
        app=app,
        firm=firm,
        sector=campaign.sector(firm.sector),
        materials=[(m, files.get(m.get("sha256"))) for m in app.materials or []],
        team=team,
        people=people,
        can_score=actor.role is Role.reviewer
        and mine == ReviewAssignmentStatus.active
        and app.status == ApplicationStatus.verified,
        can_recuse=actor.role is Role.reviewer and mine in ("active", "done") and under_review,
        can_redraw=is_organiser and under_review and bool(team["members"]),
        scored=mine == ReviewAssignmentStatus.done,
        draws=draws,
        draw_kinds=DRAW_KINDS,
        outline=campaign.outline,
        element_points=element_points(campaign),
        review_rules=campaign.review,
        can_form_team=is_organiser and under_review and not team["members"],
        can_record=is_organiser and under_review and bool(team["members"]) and not team["missing"],
        show_team=actor.role is not Role.enterprise,
        is_official=actor.role in OFFICIALS,
        application_statuses=APPLICATION_STATUSES,
        evidence_kinds=EVIDENCE_KINDS,
        organiser=organiser,
    )


@router.get("/applications/{application_id}")
def application(
    application_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(*OFFICIALS, Role.enterprise, Role.reviewer, scope="application")],
) -> Response:
    """An application: to the officials in scope, the firm, and the reviewers on its team."""
    return application_page(request, context, session, actor, application_id)


def _refused(
    request: Request, context: Any, session: Session, actor: Actor, application_id: int, exc: WorkflowError
) -> Response:
    error, status = refusal(request, exc)
    return application_page(request, context, session, actor, application_id, error=error, status=status)


@router.post("/applications/{application_id}/scores")
async def score(
    application_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(Role.reviewer, scope="application")],
) -> Response:
    """A team member's scoring sheet (online_<element>, on_site_<element> for every outline element), with
    findings (one a line)."""
    form = await request.form()
    fields = {key: str(value) for key, value in form.items() if isinstance(value, str)}

    def work() -> Response | None:
        try:
            sheet = {
                element.code: {
                    part: score_from_text(fields.get(f"{part}_{element.code}", ""), f"{part} {element.code}")
                    for part in PARTS
                }
                for element in context.campaign.outline
            }
            if any(len(fields.get(k, "")) > 20000 for k in ("findings_general", "findings_major")):
                raise InvalidInput("问题清单过长 / the findings are too long")
            record_reviewer_score(
                session,
                application_id=application_id,
                actor=actor,
                sheet=sheet,
                findings=findings_from(fields.get("findings_general", ""), fields.get("findings_major", "")),
                context=context.service,
            )
        except WorkflowError as exc:
            return _refused(request, context, session, actor, application_id, exc)
        return None

    answer = await run_in_threadpool(work)
    return answer if answer is not None else redirect("/reviews", notice="scored")


@router.post("/applications/{application_id}/team")
def new_team(
    application_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Organiser,
    seed: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    """The server draws the review team from the eligible pool (its seed is recorded, so the draw can be
    redone); a seed sent with the form is refused as at every door."""
    try:
        form_team(
            session,
            application_id=application_id,
            actor=actor,
            context=context.service,
            seed=seed.strip() or None,
        )
    except WorkflowError as exc:
        return _refused(request, context, session, actor, application_id, exc)
    return redirect(f"/applications/{application_id}", notice="team")


@router.post("/applications/{application_id}/review-result")
def review_result(
    application_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Organiser,
    version: Annotated[int, Form(ge=1)],
) -> Response:
    """Record the team's score on the firm (the `record_review` transition) once every member has scored."""
    try:
        record_team_result(
            session,
            application_id=application_id,
            actor=actor,
            context=context.service,
            expected_version=version,
        )
    except WorkflowError as exc:
        return _refused(request, context, session, actor, application_id, exc)
    return redirect(f"/applications/{application_id}", notice="review_recorded")


@router.post("/applications/{application_id}/redraw")
def redraw(
    application_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Organiser,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Replace the whole team by a new server draw, with a reason."""
    try:
        redraw_team(
            session,
            application_id=application_id,
            reason=reason,
            actor=actor,
            context=context.service,
        )
    except WorkflowError as exc:
        return _refused(request, context, session, actor, application_id, exc)
    return redirect(f"/applications/{application_id}", notice="team")


@router.post("/applications/{application_id}/recusal")
def recusal(
    application_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(Role.reviewer, Role.support_center, Role.district_bureau, scope="application")],
    reason: Annotated[str, Form(max_length=2000)] = "",
    reviewer_id: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    """A drawn reviewer steps aside (申请回避), or the organiser records it for them."""
    try:
        recuse(
            session,
            application_id=application_id,
            reviewer_id=int(reviewer_id) if reviewer_id.strip().isdigit() else None,
            reason=reason,
            actor=actor,
            clock=context.clock,
        )
    except WorkflowError as exc:
        return _refused(request, context, session, actor, application_id, exc)
    if actor.role is Role.reviewer:
        return redirect("/reviews", notice="recused")
    return redirect(f"/applications/{application_id}", notice="recused")


# ---- misconduct reports -------------------------------------------------------------------------

Bureau = Annotated[Actor, page(Role.district_bureau, Role.support_center, Role.city_bureau)]


def reports_page(
    request: Request, session: Session, actor: Actor, *, error: str | None = None, status: int = 200
) -> Response:
    with read_unit(session) as conn:
        reports = list_reports(conn, actor=actor)
    return render(
        request,
        "reviewer_reports.html",
        status=status,
        error=error,
        reports=reports,
        report_statuses=REPORT_STATUSES,
        can_decide=actor.role in (Role.support_center, Role.city_bureau),
    )


@router.get("/reviewer-reports")
def reviewer_reports(request: Request, session: ReadSessionDep, actor: Bureau) -> Response:
    """Reports of suspected reviewer misconduct: filed by the districts, reviewed by the support center."""
    return reports_page(request, session, actor)


@router.post("/reviewer-reports")
def new_reviewer_report(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Bureau,
    reviewer_id: Annotated[int, Form(ge=1)],
    enterprise_id: Annotated[int, Form(ge=1)],
    description: Annotated[str, Form(max_length=2000)] = "",
    application_id: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    try:
        report_misconduct(
            session,
            reviewer_id=reviewer_id,
            enterprise_id=enterprise_id,
            application_id=int(application_id) if application_id.strip().isdigit() else None,
            description=description,
            actor=actor,
            clock=context.clock,
        )
    except WorkflowError as exc:
        error, status = refusal(request, exc)
        return reports_page(request, session, actor, error=error, status=status)
    return redirect("/reviewer-reports", notice="report_filed")


@router.post("/reviewer-reports/{report_id}/decision")
def decide_reviewer_report(
    report_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(Role.support_center, Role.city_bureau, scope="reviewer_report")],
    decision: Annotated[str, Form(max_length=12)],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        decide_report(session, report_id=report_id, decision=decision, note=note, actor=actor, clock=context.clock)
    except WorkflowError as exc:
        error, status = refusal(request, exc)
        return reports_page(request, session, actor, error=error, status=status)
    return redirect("/reviewer-reports", notice="report_decided")
