"""Certificate pages: the firm's certificate panel (标杆 decision, earlier certificate, eligibility), the
printable certificate, and the city's published lists (达标企业名单 / 标杆企业名单) with their XLSX."""

from __future__ import annotations

import itertools
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from api.deps import ContextDep, ReadSessionDep, SessionDep
from api.errors import status_of
from api.pages.access import FIRM_READERS, page
from api.pages.exports import LIST_TITLES, made_on_page, published_list_response
from api.pages.exports import list_export as list_export_of
from api.pages.firms import refused
from api.pages.i18n import N_
from api.pages.render import message, redirect, render
from states import InvalidTransition, Role, WorkflowError
from workflow.actors import Actor
from workflow.certificates import (
    PRIOR_RECORDERS,
    certificate_of,
    list_counts,
    name_benchmark,
    published_list,
    record_prior_certificate,
    withdraw_benchmark,
)
from workflow.db import read_unit

router = APIRouter(include_in_schema=False)
LIST_LABELS = {"certified": N_("达标企业名单"), "benchmark": N_("标杆企业名单")}
SHOWN = 50


@router.get("/firms/{enterprise_id}/certificate")
def certificate(
    enterprise_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(*FIRM_READERS, scope="enterprise")],
) -> Response:
    """The printable certificate (达标证书) of a certified firm."""
    try:
        with read_unit(session) as conn:
            cert = certificate_of(conn, enterprise_id=enterprise_id, actor=actor, campaign=context.campaign)
    except InvalidTransition as exc:
        return render(request, "certificate.html", status=status_of(exc), cert=None, error=message(request, str(exc)))
    return render(request, "certificate.html", cert=cert)


@router.post("/firms/{enterprise_id}/benchmark")
def benchmark(
    enterprise_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(Role.city_bureau, scope="enterprise")],
    decision: Annotated[str, Form(max_length=10)] = "name",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Name the firm 标杆 or take it off the list (the city bureau), with a reason."""
    try:
        if decision == "withdraw":
            withdraw_benchmark(session, enterprise_id=enterprise_id, reason=reason, actor=actor, clock=context.clock)
        else:
            name_benchmark(
                session,
                enterprise_id=enterprise_id,
                reason=reason,
                actor=actor,
                context=context.service,
            )
    except WorkflowError as exc:
        return refused(request, context, session, actor, enterprise_id, exc)
    return redirect(f"/firms/{enterprise_id}#certificate", notice="benchmark")


@router.post("/firms/{enterprise_id}/prior-certificate")
def prior_certificate(
    enterprise_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(*PRIOR_RECORDERS, scope="enterprise")],
    level: Annotated[str, Form(max_length=10)] = "",
    number: Annotated[str, Form(max_length=60)] = "",
    issued_on: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Record the firm's earlier level-1/2 standardization certificate, or that it holds none."""
    try:
        record_prior_certificate(
            session,
            enterprise_id=enterprise_id,
            level=level,
            number=number,
            issued_on=issued_on,
            actor=actor,
            context=context.service,
        )
    except WorkflowError as exc:
        return refused(request, context, session, actor, enterprise_id, exc)
    return redirect(f"/firms/{enterprise_id}#certificate", notice="prior_certificate")


@router.get("/lists")
def lists(
    request: Request,
    context: ContextDep,
    session: ReadSessionDep,
    actor: Annotated[Actor, page(Role.city_bureau)],
    kind: Annotated[str, Query(max_length=20)] = "certified",
) -> Response:
    """The lists the city publishes: the first rows on screen, the whole list as XLSX."""
    kind = kind if kind in LIST_LABELS else "certified"
    with read_unit(session) as conn:
        rows = list(itertools.islice(published_list(conn, kind=kind, clock=context.clock), SHOWN + 1))
        counts = list_counts(conn)
    return render(
        request, "lists.html", kind=kind, rows=rows[:SHOWN], more=len(rows) > SHOWN, counts=counts, labels=LIST_LABELS
    )


@router.get("/lists.xlsx")
def list_export(
    request: Request,
    context: ContextDep,
    session: ReadSessionDep,
    actor: Annotated[Actor, page(Role.city_bureau)],
    kind: Annotated[str, Query(max_length=20)] = "certified",
) -> Response:
    """The 达标企业名单 or 标杆企业名单 as the city publishes it (title row, frozen header, filters, dates)."""
    kind = kind if kind in LIST_TITLES else "certified"
    with read_unit(session) as conn:
        rows = published_list(conn, kind=kind, clock=context.clock)
        export = list_export_of(kind=kind, campaign=context.campaign, **made_on_page(request, context))
        return published_list_response(export=export, rows=rows, campaign=context.campaign)
