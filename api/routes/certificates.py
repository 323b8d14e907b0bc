"""Certificates: the city's 标杆 decisions, a firm's earlier standardization certificate, the certificate itself,
the published lists (XLSX) and the certificate audit."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import FIRM_READERS, ContextDep, ReadSessionDep, SessionDep, allow
from api.pages.exports import list_export as list_export_of
from api.pages.exports import published_list_response
from states import Role
from workflow.actors import Actor
from workflow.certificate_audit import audit_certificates
from workflow.certificates import (
    certificate_of,
    name_benchmark,
    published_list,
    record_prior_certificate,
    withdraw_benchmark,
)
from workflow.db import read_unit

router = APIRouter(prefix="/api", tags=["certificates"])
City = Annotated[Actor, allow(Role.city_bureau)]
CityOnFirm = Annotated[Actor, allow(Role.city_bureau, scope="enterprise")]


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000, description="why the city bureau decides so")


class PriorCertificateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: int | str | None = Field(description="1, 2 (一级/二级) or none (无): the earlier certificate held")
    number: str | None = Field(default=None, max_length=60, description="原证书编号")
    date: dt.date | None = Field(default=None, description="原发证日期")


@router.post("/enterprises/{enterprise_id}/benchmark")
def benchmark(enterprise_id: int, body: Reason, context: ContextDep, session: SessionDep, actor: CityOnFirm) -> Any:
    """The city bureau names a certified firm 标杆 (score at least the benchmark floor, 75)."""
    return name_benchmark(
        session,
        enterprise_id=enterprise_id,
        reason=body.reason,
        actor=actor,
        context=context.service,
    )


@router.post("/enterprises/{enterprise_id}/benchmark/withdraw")
def unbenchmark(enterprise_id: int, body: Reason, context: ContextDep, session: SessionDep, actor: CityOnFirm) -> Any:
    """The city bureau takes a firm off the 标杆 list, with a reason (it stays 达标)."""
    return withdraw_benchmark(
        session, enterprise_id=enterprise_id, reason=body.reason, actor=actor, clock=context.clock
    )


@router.put("/enterprises/{enterprise_id}/prior-certificate")
def prior_certificate(
    enterprise_id: int,
    body: PriorCertificateBody,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, allow(Role.city_bureau, Role.district_bureau, scope="enterprise")],
) -> Any:
    """Record the firm's earlier level-1/2 standardization certificate (or that it holds none)."""
    return record_prior_certificate(
        session,
        enterprise_id=enterprise_id,
        level=body.level,
        number=body.number,
        issued_on=body.date,
        actor=actor,
        context=context.service,
    )


@router.get("/enterprises/{enterprise_id}/certificate")
def certificate(
    enterprise_id: int,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, allow(*FIRM_READERS, scope="enterprise")],
) -> Any:
    """The firm's current certificate: number, validity, level, score and what it means for a new application."""
    with read_unit(session) as conn:
        return certificate_of(conn, enterprise_id=enterprise_id, actor=actor, campaign=context.campaign)


@router.get("/lists/export", response_class=FileResponse)
def list_export(
    context: ContextDep,
    session: ReadSessionDep,
    actor: City,
    kind: Annotated[Literal["certified", "benchmark"], Query()] = "certified",
) -> FileResponse:
    """The 达标企业名单 or 标杆企业名单 the city publishes, as XLSX."""
    with read_unit(session) as conn:
        rows = published_list(conn, kind=kind, clock=context.clock)
        export = list_export_of(
            kind=kind, campaign=context.campaign, as_of=context.clock.now().astimezone(context.clock.tz), by=actor.name
        )
        return published_list_response(export=export, rows=rows, campaign=context.campaign)


@router.get("/audit/certificates")
def certificate_audit(
    session: SessionDep,
    actor: City,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=0, le=1000)] = 100,
) -> dict[str, Any]:
    """Every certified firm's certificate checked (team, scores, draw, hazard evidence, dossier): `ok` false
    and each failing firm named with what it lacks; the full record of `limit` firms from `offset`."""
    with read_unit(session) as conn:
        summary = audit_certificates(conn, keep=limit, offset=offset)
    return {"ok": summary.ok, "checked": summary.checked, "failures": summary.failures, "firms": summary.firms}
