"""Officials' worklists, applications, the evaluator pool and review teams."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import OFFICIALS, ContextDep, ReadSessionDep, SessionDep, allow
from api.metrics import TRANSITIONS
from api.routes.enterprises import _result
from api.schemas import (
    ApplicationRead,
    ConsultancyCreate,
    DisqualifyCreate,
    DisqualifyRead,
    EmploymentCreate,
    RecusalCreate,
    RedrawCreate,
    ReviewerRead,
    ReviewerReportCreate,
    ReviewerReportDecision,
    ReviewerScoreCreate,
    TaskPage,
    TeamCreate,
    TeamRead,
    TeamResultCreate,
    TransitionResult,
    UndeliverablePage,
    WorklistPage,
)
from deadlines.tasks import MAX_QUERY, TaskFilter, task_list
from states import Role
from workflow.actors import Actor
from workflow.db import read_unit
from workflow.pool import (
    decide_report,
    declare_conflict,
    disqualify,
    form_team,
    list_reports,
    list_reviewers,
    record_reviewer_score,
    record_team_result,
    recuse,
    redraw_team,
    report_misconduct,
    team_result,
    verify_draws,
)
from workflow.queries import application_in_scope, review_assignments_of, undeliverable_notices, worklist

router = APIRouter(prefix="/api", tags=["work"])
Organiser = Annotated[Actor, allow(Role.support_center, Role.district_bureau, scope="application")]
PoolKeeper = Annotated[Actor, allow(Role.support_center, Role.city_bureau, scope="reviewer")]


@router.get("/work", response_model=TaskPage)
def tasks(
    context: ContextDep,
    session: ReadSessionDep,
    actor: Annotated[Actor, allow(*OFFICIALS, Role.reviewer)],
    kind: Annotated[str | None, Query(max_length=20)] = None,
    q: Annotated[str | None, Query(max_length=MAX_QUERY)] = None,
    district: Annotated[str | None, Query(max_length=20)] = None,
    sector: Annotated[str | None, Query(max_length=40)] = None,
    key_field: bool | None = None,
    overdue: bool = False,
    sort: Annotated[str, Query(max_length=20)] = "waiting",
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: int = 50,
) -> Any:
    """Everything waiting on the caller's office (a reviewer: its scoring sheets), longest waiting first:
    search on several words (each in the firm's name or starting its credit code), district, sector, key
    field, kind of task, overdue only; sorted by waiting time or due date; counts per kind; one page."""
    filters = TaskFilter(
        kind=kind or None,
        q=q or None,
        district=district or None,
        sector=sector or None,
        key_field=key_field,
        overdue=overdue,
        sort=sort,
        page=page,
        page_size=page_size,
    )
    with read_unit(session) as conn:
        return task_list(conn, actor=actor, campaign=context.campaign, clock=context.clock, filters=filters)


@router.get("/worklists/verification", response_model=WorklistPage)
def verification_queue(
    context: ContextDep, session: ReadSessionDep, actor: Annotated[Actor, allow(Role.district_bureau, Role.city_bureau)]
) -> Any:
    """Applications waiting for the district bureau's verification (核实), oldest first."""
    with read_unit(session) as conn:
        return worklist(conn, actor=actor, name="verification", clock=context.clock)


@router.get("/worklists/audit", response_model=WorklistPage)
def audit_queue(
    context: ContextDep,
    session: ReadSessionDep,
    actor: Annotated[Actor, allow(Role.support_center, Role.district_bureau)],
) -> Any:
    """Verified applications waiting for the online audit: key-field firms at the support center, the others
    at their district bureau."""
    with read_unit(session) as conn:
        return worklist(conn, actor=actor, name="audit", clock=context.clock)


@router.get("/worklists/review", response_model=WorklistPage)
def review_queue(
    context: ContextDep,
    session: ReadSessionDep,
    actor: Annotated[Actor, allow(Role.support_center, Role.district_bureau)],
) -> Any:
    """Audited applications: team to form, scores coming in, team result to record."""
    with read_unit(session) as conn:
        return worklist(conn, actor=actor, name="review", clock=context.clock)


@router.get("/worklists/undeliverable", response_model=UndeliverablePage)
def undeliverable_queue(
    context: ContextDep, session: ReadSessionDep, actor: Annotated[Actor, allow(Role.district_bureau, Role.city_bureau)]
) -> Any:
    """Firms the mobilization notice cannot reach (无法送达: no e-mail address for the principal), oldest first:
    fix the address, or notify otherwise (`notify` with `{"channel": "phone"}` and the like)."""
    with read_unit(session) as conn:
        return undeliverable_notices(conn, actor=actor, clock=context.clock)


@router.get("/worklists/certification", response_model=WorklistPage)
def certification_queue(
    context: ContextDep, session: ReadSessionDep, actor: Annotated[Actor, allow(Role.city_bureau)]
) -> Any:
    """Reviewed applications waiting for the city bureau's decision."""
    with read_unit(session) as conn:
        return worklist(conn, actor=actor, name="certification", clock=context.clock)


@router.get("/worklists/assignments", response_model=WorklistPage)
def my_assignments(context: ContextDep, session: ReadSessionDep, actor: Annotated[Actor, allow(Role.reviewer)]) -> Any:
    """The reviewer's open review assignments, oldest first."""
    with read_unit(session) as conn:
        return review_assignments_of(conn, actor=actor, clock=context.clock)


@router.get("/applications/{application_id}", response_model=ApplicationRead)
def application(
    application_id: int,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, allow(*OFFICIALS, Role.enterprise, Role.reviewer, scope="application")],
) -> Any:
    """An application with its materials and, for officials and its reviewers, the team's progress."""
    with read_unit(session) as conn:
        app = application_in_scope(conn, actor=actor, application_id=application_id)
        body = {k: v for k, v in app._asdict().items()}
        if actor.role is not Role.enterprise:
            body["team"] = team_result(conn, application_id=application_id, campaign=context.campaign)
    return body


@router.post("/applications/{application_id}/team", response_model=TeamRead, status_code=201)
def new_team(application_id: int, body: TeamCreate, context: ContextDep, session: SessionDep, actor: Organiser) -> Any:
    """The server draws the review team at random with a seed of its own from `secrets`, recorded with the
    candidate list so anyone can redo the draw. A seed in the body is refused."""
    return form_team(
        session,
        application_id=application_id,
        actor=actor,
        context=context.service,
        seed=body.seed,
    )


@router.post("/applications/{application_id}/reviews", status_code=201)
def score(
    application_id: int,
    body: ReviewerScoreCreate,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, allow(Role.reviewer, scope="application")],
) -> dict[str, Any]:
    """A team member's scoring sheet: per outline element an online and an on-site score; with findings."""
    totals = record_reviewer_score(
        session,
        application_id=application_id,
        actor=actor,
        sheet=body.sheet,
        findings=body.findings,
        context=context.service,
    )
    return {"status": "recorded", **totals}


@router.post("/applications/{application_id}/team/redraw", response_model=TeamRead)
def redraw(application_id: int, body: RedrawCreate, context: ContextDep, session: SessionDep, actor: Organiser) -> Any:
    """Replace the whole team by a new server draw, with a reason (an audited event)."""
    return redraw_team(
        session,
        application_id=application_id,
        reason=body.reason,
        actor=actor,
        context=context.service,
    )


@router.post("/applications/{application_id}/recusals")
def recusal(
    application_id: int,
    body: RecusalCreate,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, allow(Role.reviewer, Role.support_center, Role.district_bureau, scope="application")],
) -> Any:
    """A drawn reviewer steps aside (申请回避), or the organiser records it for them: a replacement is drawn."""
    return recuse(
        session,
        application_id=application_id,
        reviewer_id=body.reviewer_id,
        reason=body.reason,
        actor=actor,
        clock=context.clock,
    )


@router.get("/applications/{application_id}/draws")
def draws(
    application_id: int,
    session: SessionDep,
    actor: Annotated[Actor, allow(*OFFICIALS, Role.reviewer, scope="application")],
) -> Any:
    """Every draw of the application (seed, candidates, team) redone: whether each gives the recorded team."""
    with read_unit(session) as conn:
        application_in_scope(conn, actor=actor, application_id=application_id)
        return verify_draws(conn, application_id=application_id)


@router.post("/applications/{application_id}/review-result", response_model=TransitionResult)
def review_result(
    application_id: int, body: TeamResultCreate, context: ContextDep, session: SessionDep, actor: Organiser
) -> Any:
    """Record the team's score on the firm (mean of the members by default) once everyone has scored."""
    result = record_team_result(
        session,
        application_id=application_id,
        actor=actor,
        context=context.service,
        expected_version=body.version,
    )
    TRANSITIONS.labels(trigger="record_review").inc()
    return _result(result)


@router.get("/reviewers", response_model=list[ReviewerRead])
def reviewers(session: SessionDep, actor: Annotated[Actor, allow(Role.support_center, Role.city_bureau)]) -> Any:
    """The evaluator pool with training, status and the firms each member consulted for."""
    with read_unit(session) as conn:
        return list_reviewers(conn)


@router.post("/reviewers/{reviewer_id}/consultancies", status_code=201)
def consulted(
    reviewer_id: int, body: ConsultancyCreate, context: ContextDep, session: SessionDep, actor: PoolKeeper
) -> Any:
    """Record a firm the reviewer consulted for: never drawn to review it, and taken off its open teams."""
    return {
        "status": "recorded",
        **declare_conflict(
            session,
            reviewer_id=reviewer_id,
            enterprise_id=body.enterprise_id,
            kind="consultancy",
            actor=actor,
            clock=context.clock,
        ),
    }


@router.post("/reviewers/{reviewer_id}/employer", status_code=201)
def employer(
    reviewer_id: int, body: EmploymentCreate, context: ContextDep, session: SessionDep, actor: PoolKeeper
) -> Any:
    """Record the firm the reviewer works for: never drawn to review it, and taken off its open teams."""
    return {
        "status": "recorded",
        **declare_conflict(
            session,
            reviewer_id=reviewer_id,
            enterprise_id=body.enterprise_id,
            kind="employment",
            actor=actor,
            clock=context.clock,
        ),
    }


@router.post("/reviewers/{reviewer_id}/disqualify", response_model=DisqualifyRead)
def disqualified(
    reviewer_id: int, body: DisqualifyCreate, context: ContextDep, session: SessionDep, actor: PoolKeeper
) -> Any:
    """Disqualify a reviewer (with the reason): out of the pool, open reviews reassigned."""
    return disqualify(
        session,
        reviewer_id=reviewer_id,
        reason=body.reason,
        actor=actor,
        context=context.service,
    )


@router.post("/reviewer-reports", status_code=201)
def new_report(
    body: ReviewerReportCreate,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, allow(Role.district_bureau, Role.support_center, Role.city_bureau)],
) -> Any:
    """A bureau reports a suspected reviewer misconduct at a firm of its scope to the support center."""
    return report_misconduct(
        session,
        reviewer_id=body.reviewer_id,
        enterprise_id=body.enterprise_id,
        application_id=body.application_id,
        description=body.description,
        actor=actor,
        clock=context.clock,
    )


@router.get("/reviewer-reports")
def reports(
    session: ReadSessionDep,
    actor: Annotated[Actor, allow(Role.district_bureau, Role.support_center, Role.city_bureau)],
    status: str | None = None,
) -> Any:
    """Misconduct reports: all for the center and the city, a district's own for its bureau."""
    with read_unit(session) as conn:
        return list_reports(conn, actor=actor, status=status)


@router.post("/reviewer-reports/{report_id}/decision")
def decide(
    report_id: int,
    body: ReviewerReportDecision,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, allow(Role.support_center, Role.city_bureau, scope="reviewer_report")],
) -> Any:
    """The support center dismisses a report with a note, or disqualifies the reviewer."""
    return decide_report(
        session, report_id=report_id, decision=body.decision, note=body.note, actor=actor, clock=context.clock
    )
