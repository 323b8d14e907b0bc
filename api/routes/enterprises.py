"""Firms: lists and one firm in full; transitions with version checks and idempotency; self-assessment,
hazards and evidence."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, File, Form, Header, Query, UploadFile
from fastapi.responses import FileResponse, JSONResponse

from api.deps import FIRM_READERS, OFFICIALS, ContextDep, ReadSessionDep, SessionDep, allow
from api.metrics import TRANSITIONS
from api.schemas import (
    EnterpriseDetail,
    EnterprisePage,
    EvidenceRead,
    HazardCreate,
    HazardDecision,
    HazardRead,
    HazardRectify,
    HazardUpdate,
    SelfAssessmentCreate,
    SelfAssessmentRead,
    TransitionRequest,
    TransitionResult,
)
from states import Role, VersionConflict
from workflow.actors import Actor
from workflow.db import read_unit
from workflow.dossier import KINDS
from workflow.engine import FireResult
from workflow.evidence import Upload, open_evidence, store_upload
from workflow.firing import fire_seen
from workflow.idempotency import keep_answer, kept_answer
from workflow.listing import DEFAULT_PAGE_SIZE, MAX_PAGE, MAX_PAGE_SIZE
from workflow.queries import FirmFilter, firm_detail, hazard_in_scope, hazards_of, list_firms
from workflow.records import (
    FiveImplementations,
    decide_rectification,
    record_self_assessment,
    rectify_hazard,
    report_hazard,
    update_hazard,
)

router = APIRouter(prefix="/api", tags=["enterprises"])
Reader = Annotated[Actor, allow(*FIRM_READERS, scope="enterprise")]
Firm = Annotated[Actor, allow(Role.enterprise, scope="enterprise")]


@router.get("/enterprises", response_model=EnterprisePage)
def enterprises(
    session: ReadSessionDep,
    actor: Annotated[Actor, allow(*FIRM_READERS)],
    district: str | None = None,
    key_field: bool | None = None,
    above_size: bool | None = None,
    state: str | None = None,
    overdue: bool | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    sort: Annotated[str | None, Query(max_length=40)] = None,
    after: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Any:
    """Firms in the caller's scope, filtered, sorted and paged. `q`: words separated by spaces, each found in
    the name or the credit code. `sort`: name, uscc, district, field, state, state_since, overdue or id,
    `-` before it for descending. `page` jumps to a page; `after`/`before` (a page's `last_id`/`first_id`)
    give the next or previous page by a keyset seek, as fast at page 5,000 as at page 1."""
    filters = FirmFilter(
        district, key_field, state, overdue, q, page, page_size, above_size, sort=sort, after=after, before=before
    )
    with read_unit(session) as conn:
        return list_firms(conn, actor=actor, filters=filters)


@router.get("/enterprises/{enterprise_id}", response_model=EnterpriseDetail)
def enterprise(enterprise_id: int, context: ContextDep, session: SessionDep, actor: Reader) -> Any:
    """One firm: state, next deadline, open hazards, history, and what the caller may do next."""
    with read_unit(session) as conn:
        return firm_detail(conn, actor=actor, enterprise_id=enterprise_id, context=context.service)


def _result(r: FireResult) -> dict[str, Any]:
    return TransitionResult(
        enterprise_id=r.enterprise_id,
        trigger=r.trigger,
        from_state=r.from_state.value,
        to_state=r.to_state.value,
        version=r.version,
        event_id=r.event_id,
        at=r.at,
        record=dict(r.record),
        mails=list(r.mails),
    ).model_dump(mode="json")


def _replay(session: Any, *, user_id: int, key: str, request_hash: str) -> JSONResponse | None:
    with read_unit(session) as conn:
        kept = kept_answer(conn, user_id=user_id, key=key, request_hash=request_hash)
    if kept is None:
        return None
    return JSONResponse(kept.response, status_code=kept.status_code, headers={"Idempotent-Replayed": "true"})


@router.post(
    "/enterprises/{enterprise_id}/transitions/{trigger}",
    response_model=TransitionResult,
    responses={409: {"description": "version conflict"}, 422: {"description": "a guard refused"}},
)
def transition(
    enterprise_id: int,
    trigger: str,
    body: TransitionRequest,
    context: ContextDep,
    session: SessionDep,
    actor: Reader,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Any:
    """Fire a trigger on a firm. Send the `version` you saw (409 if it changed) and an `Idempotency-Key`
    header: a retried request gets the first answer back instead of a second transition."""
    request_hash = hashlib.sha256(
        json.dumps([enterprise_id, trigger, body.model_dump(mode="json")], sort_keys=True).encode()
    ).hexdigest()
    key, user_id = idempotency_key, actor.user_id or 0
    if key:
        replay = _replay(session, user_id=user_id, key=key, request_hash=request_hash)
        if replay is not None:
            return replay

    def keep(conn: sa.Connection, result: FireResult) -> None:
        assert key is not None
        keep_answer(conn, user_id=user_id, key=key, request_hash=request_hash, response=_result(result), at=result.at)

    try:
        result = fire_seen(
            session,
            context.service,
            actor,
            enterprise_id,
            trigger,
            body.data,
            body.version,
            confirm_name=body.confirm_name,
            also=keep if key else None,
        )
    except (VersionConflict, sa.exc.IntegrityError):
        # the same request may have won a race against itself: then its answer is the answer
        replay = _replay(session, user_id=user_id, key=key, request_hash=request_hash) if key else None
        if replay is not None:
            return replay
        raise
    TRANSITIONS.labels(trigger=trigger).inc()
    return _result(result)


@router.post("/enterprises/{enterprise_id}/self-assessments", response_model=SelfAssessmentRead, status_code=201)
def self_assessment(
    enterprise_id: int, body: SelfAssessmentCreate, context: ContextDep, session: SessionDep, actor: Firm
) -> Any:
    """Score every item of the campaign's creation outline; the total is computed."""
    assessment_id, total = record_self_assessment(
        session,
        enterprise_id=enterprise_id,
        scores=body.scores,
        notes=body.notes,
        actor=actor,
        context=context.service,
    )
    return {"id": assessment_id, "total_score": total}


@router.get("/enterprises/{enterprise_id}/hazards", response_model=list[HazardRead])
def hazards(enterprise_id: int, session: SessionDep, actor: Reader) -> Any:
    """The firm's hazard register with the five implementations."""
    with read_unit(session) as conn:
        return hazards_of(conn, actor=actor, enterprise_id=enterprise_id)


def _five(body: HazardCreate | HazardUpdate) -> FiveImplementations:
    return FiveImplementations(
        responsible_person=body.responsible_person,
        measures=body.measures,
        funds=body.funds,
        deadline=body.deadline,
        emergency_plan=body.emergency_plan,
    )


def _hazard(session: Any, hazard_id: int, actor: Actor) -> Any:
    with read_unit(session) as conn:
        return hazard_in_scope(conn, actor=actor, hazard_id=hazard_id)


@router.post("/enterprises/{enterprise_id}/hazards", response_model=HazardRead, status_code=201)
def new_hazard(enterprise_id: int, body: HazardCreate, context: ContextDep, session: SessionDep, actor: Firm) -> Any:
    """Report a hazard the firm found, with as much of its five implementations as is known."""
    hazard_id = report_hazard(
        session,
        enterprise_id=enterprise_id,
        description=body.description,
        implementations=_five(body),
        severity=body.severity,
        actor=actor,
        clock=context.clock,
        campaign=context.campaign,
    )
    return _hazard(session, hazard_id, actor)


@router.patch("/hazards/{hazard_id}", response_model=HazardRead)
def change_hazard(
    hazard_id: int,
    body: HazardUpdate,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, allow(Role.enterprise, scope="hazard")],
) -> Any:
    """Fill in or change an open hazard's five implementations (a rectified or accepted hazard is read-only)."""
    update_hazard(
        session,
        hazard_id=hazard_id,
        implementations=_five(body),
        actor=actor,
        clock=context.clock,
        campaign=context.campaign,
    )
    return _hazard(session, hazard_id, actor)


@router.post("/hazards/{hazard_id}/rectify", response_model=HazardRead)
def rectified(
    hazard_id: int,
    body: HazardRectify,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, allow(Role.enterprise, scope="hazard")],
) -> Any:
    """Rectify a hazard with the rectification file uploaded for it (`evidence_id`, or its SHA-256). The firm's
    own hazards are closed at once; findings of an audit or a review await the raising office's acceptance."""
    rectify_hazard(
        session,
        hazard_id=hazard_id,
        evidence_id=body.evidence_id,
        evidence_sha256=body.evidence_sha256,
        note=body.note,
        actor=actor,
        clock=context.clock,
    )
    return _hazard(session, hazard_id, actor)


Office = Annotated[Actor, allow(*OFFICIALS, scope="hazard")]


@router.post("/hazards/{hazard_id}/accept", response_model=HazardRead)
def accept_rectification(
    hazard_id: int, body: HazardDecision, context: ContextDep, session: SessionDep, actor: Office
) -> Any:
    """The office that raised a finding (online audit or review) accepts the firm's rectification."""
    decide_rectification(session, hazard_id=hazard_id, accept=True, note=body.note, actor=actor, clock=context.clock)
    return _hazard(session, hazard_id, actor)


@router.post("/hazards/{hazard_id}/reject", response_model=HazardRead)
def reject_rectification(
    hazard_id: int, body: HazardDecision, context: ContextDep, session: SessionDep, actor: Office
) -> Any:
    """The raising office rejects the firm's rectification with a note; the hazard is open again."""
    decide_rectification(session, hazard_id=hazard_id, accept=False, note=body.note, actor=actor, clock=context.clock)
    return _hazard(session, hazard_id, actor)


@router.post("/enterprises/{enterprise_id}/evidence", response_model=EvidenceRead, status_code=201)
def upload(
    enterprise_id: int,
    context: ContextDep,
    session: SessionDep,
    actor: Firm,
    file: Annotated[UploadFile, File(description="PDF, PNG, JPEG or an office file")],
    kind: Annotated[str, Form(max_length=30, description=" / ".join(KINDS))],
    hazard_id: Annotated[int | None, Form(description="the hazard a rectification file is for")] = None,
) -> Any:
    """Upload an evidence file; it is checked (size, real type, archive bombs) and stored by SHA-256. A
    rectification file names its hazard."""
    upload = Upload(enterprise_id, kind, file.filename or "", file.file, hazard_id)
    return store_upload(session, upload, actor=actor, context=context.service)


@router.get("/evidence/{evidence_id}", response_class=FileResponse)
def download(
    evidence_id: int,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, allow(*OFFICIALS, Role.enterprise, Role.reviewer, scope="evidence")],
) -> Any:
    """An evidence file, to those who may see the firm's record (and reviewers of its application)."""
    with read_unit(session) as conn:
        row, path = open_evidence(conn, evidence_id=evidence_id, actor=actor, data_dir=context.settings.data_dir)
    return FileResponse(path, media_type=row.content_type, filename=row.filename)


@router.get("/campaign/outline")
def outline(context: ContextDep, actor: Annotated[Actor, allow()]) -> list[dict[str, Any]]:
    """The creation outline (创建大纲) to self-assess against: elements, items and their points."""
    return [element.model_dump() for element in context.campaign.outline]
