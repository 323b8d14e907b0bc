"""The reviewer's page (assigned applications) and an application's page: materials, the review team's
progress, the scoring form for its reviewers, and for its organiser drawing the team and recording the
team's result — through the evaluator pool's service functions, as the API does."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlmodel import Session

from api.deps import ContextDep, SessionDep
from api.errors import status_of
from api.pages.access import OFFICIALS, page
from api.pages.firms import APPLICATION_STATUSES, EVIDENCE_KINDS, findings_from
from api.pages.render import message, redirect, render
from states import NotAllowed, NotFound, Role, WorkflowError
from workflow.dashboard import evidence_of
from workflow.db import read_unit
from workflow.engine import Actor, load_firm
from workflow.pool import form_team, record_reviewer_score, record_team_result, team_result
from workflow.queries import application_in_scope, review_assignments_of
from workflow.tables import REVIEW_ASSIGNMENTS, USERS

router = APIRouter(include_in_schema=False)
Organiser = Annotated[Actor, page(Role.support_center, Role.district_bureau, scope="application")]


@router.get("/reviews")
def my_reviews(
    request: Request, context: ContextDep, session: SessionDep, actor: Annotated[Actor, page(Role.reviewer)]
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
        people = {
            int(r.id): r.display_name
            for r in conn.execute(sa.select(USERS.c.id, USERS.c.display_name).where(USERS.c.id.in_(team["members"])))
        }
        mine = conn.execute(
            sa.select(REVIEW_ASSIGNMENTS.c.status).where(
                REVIEW_ASSIGNMENTS.c.application_id == application_id,
                REVIEW_ASSIGNMENTS.c.reviewer_id == (actor.user_id or -1),
            )
        ).scalar()
    organiser = Role.support_center if firm.key_field else Role.district_bureau
    is_organiser = actor.role is organiser
    under_review = app.status == "verified" and app.audit_passed_at is not None
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
        can_score=actor.role is Role.reviewer and mine == "active" and app.status == "verified",
        scored=mine == "done",
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
    if isinstance(exc, NotFound | NotAllowed):
        raise exc
    return application_page(
        request, context, session, actor, application_id, error=message(request, str(exc)), status=status_of(exc)
    )


@router.post("/applications/{application_id}/scores")
def score(
    application_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(Role.reviewer, scope="application")],
    online_score: Annotated[float, Form(ge=0, le=100)],
    onsite_score: Annotated[float, Form(ge=0, le=100)],
    findings_general: Annotated[str, Form(max_length=20000)] = "",
    findings_major: Annotated[str, Form(max_length=20000)] = "",
) -> Response:
    """A team member's online and on-site scores, with findings (one a line)."""
    try:
        record_reviewer_score(
            session,
            application_id=application_id,
            actor=actor,
            online_score=online_score,
            onsite_score=onsite_score,
            findings=findings_from(findings_general, findings_major),
            clock=context.clock,
        )
    except WorkflowError as exc:
        return _refused(request, context, session, actor, application_id, exc)
    return redirect("/reviews", notice="scored")


@router.post("/applications/{application_id}/team")
def new_team(
    application_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Organiser,
    seed: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    """Draw the review team at random from the eligible pool (the seed is recorded, so the draw can be redone)."""
    try:
        form_team(
            session,
            application_id=application_id,
            actor=actor,
            campaign=context.campaign,
            clock=context.clock,
            seed=int(seed) if seed.strip().isdigit() else None,
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
            campaign=context.campaign,
            clock=context.clock,
            expected_version=version,
        )
    except WorkflowError as exc:
        return _refused(request, context, session, actor, application_id, exc)
    return redirect(f"/applications/{application_id}", notice="review_recorded")
