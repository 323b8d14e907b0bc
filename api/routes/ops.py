"""Operations: health (database, scheduler leader, outbox backlog) and Prometheus metrics."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import PUBLIC, ContextDep
from api.schemas import HealthRead
from workflow.tables import OUTBOX

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthRead, dependencies=[PUBLIC])
def healthz(context: ContextDep) -> Any:
    """200 when the database answers; the outbox backlog and (when a scheduler runs) its leader."""
    try:
        with context.engine.connect() as conn:
            rows = conn.execute(
                sa.select(OUTBOX.c.status, sa.func.count())
                .where(OUTBOX.c.status.in_(("pending", "failed")))
                .group_by(OUTBOX.c.status)
            ).all()
    except sa.exc.SQLAlchemyError:
        body = HealthRead(
            status="unavailable", database=False, scheduler_leader=None, outbox_pending=None, outbox_failed=None
        )
        return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "5"})
    counts = {r[0]: int(r[1]) for r in rows}
    leader = getattr(context, "scheduler_leader", None)
    return HealthRead(
        status="ok",
        database=True,
        scheduler_leader=leader() if callable(leader) else None,
        outbox_pending=counts.get("pending", 0),
        outbox_failed=counts.get("failed", 0),
    )


@router.get("/metrics", dependencies=[PUBLIC], response_class=Response)
def metrics() -> Response:
    """Prometheus text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
