"""Supervision carried out: inspections, patrols and guidance visits of a firm, the month's plan as a worklist,
planned against done, firms due more inspections, training sessions and briefings, and the firm's safety code."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import FIRM_READERS, OFFICIALS, PUBLIC, ContextDep, ReadSessionDep, SessionDep, allow
from deadlines.inspections import (
    KINDS,
    RECORDERS,
    Finding,
    inspections_of,
    more_inspections_due,
    plan_report,
    plan_worklist,
    record_inspection,
)
from deadlines.supervision import parse_month
from states import InvalidInput, Role
from workflow.actors import Actor
from workflow.db import read_unit
from workflow.evidence import store_evidence
from workflow.safety_code import (
    code_key,
    code_url,
    district_sheet,
    firm_code,
    public_status,
    qr_png,
)
from workflow.trainings import list_trainings, record_training, trainings_of

router = APIRouter(prefix="/api", tags=["supervision"])
Reader = Annotated[Actor, allow(*FIRM_READERS, scope="enterprise")]
Recorder = Annotated[Actor, allow(*RECORDERS, scope="enterprise")]
Bureau = Annotated[Actor, allow(*OFFICIALS)]
Month = Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")]


class FindingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(min_length=1, max_length=2000)
    severity: str = Field(default="general", description="general / major (重大隐患)")


class InspectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description=f"{' / '.join(KINDS)}: 线下检查 / 线上巡查 / 重点指导")
    held_on: dt.date
    inspectors: list[str] = Field(max_length=20, description="at least two for an on-site inspection")
    items_checked: list[str] = Field(default_factory=list, max_length=500, description="creation-outline codes")
    findings: list[FindingCreate] = Field(default_factory=list, max_length=200)
    summary: str | None = Field(default=None, max_length=4000)
    penalty_decision: str | None = Field(default=None, max_length=4000)
    legal_basis: str | None = Field(default=None, max_length=4000, description="free text, required with a penalty")
    evidence_ids: list[int] = Field(default_factory=list, max_length=100, description="files uploaded before")


class TrainingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="training (专项培训) / briefing (企业宣讲)")
    held_on: dt.date
    topic: str = Field(min_length=1, max_length=200)
    attendees: dict[int, int] = Field(description="firm id → people who attended")


def _district_of(actor: Actor, district: str | None) -> str:
    """The district asked for (a district bureau's own by default); the services refuse another's."""
    code = district or actor.district_code
    if not code:
        raise InvalidInput("请指定辖区 / name the district")
    return code


@router.post("/enterprises/{enterprise_id}/inspections", status_code=201)
def create_inspection(
    enterprise_id: int, body: InspectionCreate, context: ContextDep, session: SessionDep, actor: Recorder
) -> dict[str, Any]:
    """The firm's district bureau records an inspection, patrol or guidance visit; findings become hazards the
    bureau closes."""
    return record_inspection(
        session,
        enterprise_id=enterprise_id,
        kind=body.kind,
        held_on=body.held_on,
        inspectors=body.inspectors,
        items_checked=body.items_checked,
        findings=[Finding(f.description, f.severity) for f in body.findings],
        summary=body.summary,
        penalty_decision=body.penalty_decision,
        legal_basis=body.legal_basis,
        evidence_ids=body.evidence_ids,
        actor=actor,
        campaign=context.campaign,
        clock=context.clock,
    )


@router.post("/enterprises/{enterprise_id}/inspections/evidence", status_code=201)
def upload_inspection_file(
    enterprise_id: int,
    context: ContextDep,
    session: SessionDep,
    actor: Recorder,
    file: Annotated[UploadFile, File(description="a photo or document of the inspection: PDF, PNG, JPEG, office")],
) -> Any:
    """A photo or document of an inspection, kept in the firm's evidence store (then named in the record)."""
    return store_evidence(
        session,
        enterprise_id=enterprise_id,
        kind="inspection",
        filename=file.filename or "",
        stream=file.file,
        actor=actor,
        data_dir=context.settings.data_dir,
        max_bytes=context.settings.upload_max_bytes,
        clock=context.clock,
    )


@router.get("/enterprises/{enterprise_id}/inspections")
def firm_inspections(enterprise_id: int, session: SessionDep, actor: Reader) -> list[dict[str, Any]]:
    """The inspections, patrols and guidance visits of a firm with their findings, newest first."""
    with read_unit(session) as conn:
        return inspections_of(conn, enterprise_id=enterprise_id, actor=actor)


@router.get("/enterprises/{enterprise_id}/trainings")
def firm_trainings(enterprise_id: int, session: SessionDep, actor: Reader) -> list[dict[str, Any]]:
    """The training sessions and briefings the firm attended."""
    with read_unit(session) as conn:
        return trainings_of(conn, enterprise_id=enterprise_id, actor=actor)


@router.get("/enterprises/{enterprise_id}/safety-code")
def safety_code(enterprise_id: int, context: ContextDep, session: SessionDep, actor: Reader) -> dict[str, str]:
    """The firm's safety code (常安码) and the address its QR image opens."""
    with read_unit(session) as conn:
        token = firm_code(conn, enterprise_id=enterprise_id, actor=actor)
    return {"code": token, "url": code_url(context.settings.public_url, token)}


@router.get("/enterprises/{enterprise_id}/safety-code.png", response_class=Response)
def safety_code_png(enterprise_id: int, context: ContextDep, session: SessionDep, actor: Reader) -> Response:
    """The QR image of the firm's safety code (PNG)."""
    with read_unit(session) as conn:
        token = firm_code(conn, enterprise_id=enterprise_id, actor=actor)
    return Response(qr_png(code_url(context.settings.public_url, token)), media_type="image/png")


@router.get("/safety-code", dependencies=[PUBLIC])
def safety_code_status(
    context: ContextDep,
    session: SessionDep,
    code: Annotated[str, Query(max_length=80, description="the token a firm's QR image carries")],
) -> dict[str, Any]:
    """What anyone may read from a firm's code: its name and campaign status, nothing else."""
    with read_unit(session) as conn:
        status = public_status(conn, key=code_key(conn), token=code, clock=context.clock)
    return dict(status.__dict__)


@router.get("/safety-codes/sheet.pdf", response_class=Response)
def safety_code_sheet(
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, allow(Role.city_bureau, Role.district_bureau)],
    district: str | None = None,
) -> Response:
    """A district's printable sheet of codes (PDF, twelve firms a page)."""
    found = context.campaign.district(_district_of(actor, district))
    if found is None:
        raise InvalidInput(f"没有这个辖区：{district} / no such district: {district}")
    with read_unit(session) as conn:
        sheet = district_sheet(
            conn,
            district_code=found.code,
            district_name=found.name,
            actor=actor,
            base_url=context.settings.public_url,
            clock=context.clock,
        )
    headers = {"Content-Disposition": f'attachment; filename="{sheet.filename}"'}
    return Response(sheet.pdf, media_type="application/pdf", headers=headers)


@router.get("/inspections/worklist")
def worklist(
    context: ContextDep, session: ReadSessionDep, actor: Bureau, month: Month, district: str | None = None
) -> dict[str, Any]:
    """The month's plan as a worklist: done (when, how, by whom), planned, or overdue after the month."""
    code = _district_of(actor, district)
    with read_unit(session) as conn:
        items = [
            i.as_json()
            for i in plan_worklist(
                conn,
                campaign=context.campaign,
                district=code,
                month=parse_month(month),
                actor=actor,
                clock=context.clock,
            )
        ]
    return {"district": code, "month": month, "items": items}


@router.get("/inspections/report")
def report(
    context: ContextDep, session: ReadSessionDep, actor: Bureau, month: Month, district: str | None = None
) -> dict[str, Any]:
    """Planned against done for a month, per district and grade (a district bureau: its own)."""
    with read_unit(session) as conn:
        return plan_report(
            conn,
            campaign=context.campaign,
            month=parse_month(month),
            actor=actor,
            clock=context.clock,
            district=district,
        ).as_json()


@router.get("/inspections/due")
def due(
    context: ContextDep, session: ReadSessionDep, actor: Bureau, district: str | None = None
) -> list[dict[str, Any]]:
    """Firms graded for more inspections that were not inspected within their period (the task list)."""
    code = _district_of(actor, district)
    with read_unit(session) as conn:
        return more_inspections_due(conn, campaign=context.campaign, district=code, actor=actor, clock=context.clock)


@router.post("/trainings", status_code=201)
def create_training(
    body: TrainingCreate,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, allow(Role.district_bureau)],
) -> dict[str, Any]:
    """A district bureau records a training session or briefing with the firms that attended."""
    return record_training(
        session,
        kind=body.kind,
        held_on=body.held_on,
        topic=body.topic,
        attendees=body.attendees,
        actor=actor,
        campaign=context.campaign,
        clock=context.clock,
    )


@router.get("/trainings")
def trainings(session: ReadSessionDep, actor: Bureau, district: str | None = None) -> list[dict[str, Any]]:
    """Training sessions and briefings (a district bureau: its own; the city: all or one district)."""
    with read_unit(session) as conn:
        return list_trainings(conn, actor=actor, district=district)
