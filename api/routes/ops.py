"""Operations: health (database, scheduler leader, outbox backlog) and Prometheus metrics."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import PUBLIC, ContextDep
from api.schemas import HealthRead
from deadlines.scheduler import leader_held
from notifications.outbox import counts_of

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthRead, dependencies=[PUBLIC])
def healthz(context: ContextDep) -> Any:
    """200 when the database answers; the outbox backlog and (when a scheduler runs) its leader."""
    try:
        with context.engine.connect() as conn:
            counts = counts_of(conn, ("pending", "failed"))
    except sa.exc.SQLAlchemyError:
        body = HealthRead(
            status="unavailable", database=False, scheduler_leader=None, outbox_pending=None, outbox_failed=None
        )
        return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "5"})
    return HealthRead(
        status="ok",
        database=True,
        scheduler_leader=scheduler_leader(context),
        outbox_pending=counts.get("pending", 0),
        outbox_failed=counts.get("failed", 0),
    )


def scheduler_leader(context: ContextDep) -> bool | None:
    """Whether a scheduler leads: on PostgreSQL whoever holds the leader lock, in any process; on SQLite
    the scheduler running inside this server (None when there is none to ask about)."""
    held = leader_held(context.engine)
    if held is not None:
        return held
    return context.scheduler_running() if context.scheduler_running is not None else None


@router.get("/metrics", dependencies=[PUBLIC], response_class=Response)
def metrics() -> Response:
    """Prometheus text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
