"""Operations: a public up/down check, health details for the city (database, scheduler leader, outbox
backlog) and Prometheus metrics."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Header, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import PUBLIC, ContextDep, allow
from api.schemas import HealthRead, ReplicaRead, UpRead
from deadlines.scheduler import leader_held
from notifications.outbox import counts_of
from states import Role
from workflow.actors import Actor
from workflow.db import database_answers
from workflow.models import OutboxStatus

CITY = (Role.city_bureau, Role.support_center)


def token_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=UpRead, dependencies=[PUBLIC])
def healthz(context: ContextDep) -> Any:
    """200 `up` when the database answers, else 503 `down`; nothing more to anyone who asks (the details
    are at /api/ops/health for the city bureau)."""
    if not database_answers(context.engine):
        return JSONResponse({"status": "down"}, status_code=503, headers={"Retry-After": "5"})
    return UpRead(status="up")


@router.get("/api/ops/health", response_model=HealthRead)
def health(context: ContextDep, actor: Annotated[Actor, allow(*CITY)]) -> Any:
    """The database, the scheduler's leader and the outbox backlog (city bureau and support centre)."""
    try:
        with context.engine.connect() as conn:
            counts = counts_of(conn, (OutboxStatus.pending, OutboxStatus.failed))
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
        replica=replica_of(context),
    )


def replica_of(context: ContextDep) -> ReplicaRead | None:
    if context.reads is None:
        return None
    fresh = context.reads.freshness
    return ReplicaRead(read=fresh.usable, as_of=fresh.as_of, lag_seconds=fresh.lag_seconds, reason=fresh.reason)


def scheduler_leader(context: ContextDep) -> bool | None:
    """Whether a scheduler leads: on PostgreSQL whoever holds the leader lock, in any process; on SQLite
    the scheduler running inside this server (None when there is none to ask about)."""
    held = leader_held(context.engine)
    if held is not None:
        return held
    return context.scheduler_running() if context.scheduler_running is not None else None


@router.get("/metrics", dependencies=[PUBLIC], response_class=Response)
def metrics(context: ContextDep, authorization: Annotated[str | None, Header()] = None) -> Response:
    """Prometheus text format; with DABIAO_METRICS_TOKEN set, only for `Authorization: Bearer <token>`."""
    expected = context.settings.metrics_token
    if expected and not token_matches(f"Bearer {expected}", authorization):
        return Response("metrics need the metrics token\n", status_code=401, headers={"WWW-Authenticate": "Bearer"})
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
