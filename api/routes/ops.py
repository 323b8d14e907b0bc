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
from api.schemas import HealthRead, UpRead
from deadlines.scheduler import LEADER_LOCK
from states import Role
from workflow.actors import Actor
from workflow.db import database_answers
from workflow.models import OutboxStatus
from workflow.tables import OUTBOX

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
            rows = conn.execute(
                sa.select(OUTBOX.c.status, sa.func.count())
                .where(OUTBOX.c.status.in_((OutboxStatus.pending, OutboxStatus.failed)))
                .group_by(OUTBOX.c.status)
            ).all()
    except sa.exc.SQLAlchemyError:
        body = HealthRead(
            status="unavailable", database=False, scheduler_leader=None, outbox_pending=None, outbox_failed=None
        )
        return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "5"})
    counts = {r[0]: int(r[1]) for r in rows}
    return HealthRead(
        status="ok",
        database=True,
        scheduler_leader=scheduler_leader(context),
        outbox_pending=counts.get("pending", 0),
        outbox_failed=counts.get("failed", 0),
    )


# Is the scheduler's advisory lock held by some session? (PostgreSQL keeps a 64-bit key as classid/objid.)
_LEADER_HELD = sa.text(
    "WITH k AS (SELECT hashtext(:name || current_schema())::bigint AS v) "
    "SELECT EXISTS (SELECT 1 FROM pg_locks, k WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
    "AND classid::bigint = ((k.v >> 32) & 4294967295) AND objid::bigint = (k.v & 4294967295))"
)


def scheduler_leader(context: ContextDep) -> bool | None:
    """Whether a scheduler leads: on PostgreSQL whoever holds the leader lock, in any process; on SQLite
    the scheduler running inside this server (None when there is none to ask about)."""
    if context.engine.dialect.name == "postgresql":
        with context.engine.connect() as conn:
            return bool(conn.execute(_LEADER_HELD, {"name": f"dabiao:{LEADER_LOCK}:"}).scalar())
    return context.scheduler_running() if context.scheduler_running is not None else None


@router.get("/metrics", dependencies=[PUBLIC], response_class=Response)
def metrics(context: ContextDep, authorization: Annotated[str | None, Header()] = None) -> Response:
    """Prometheus text format; with DABIAO_METRICS_TOKEN set, only for `Authorization: Bearer <token>`."""
    expected = context.settings.metrics_token
    if expected and not token_matches(f"Bearer {expected}", authorization):
        return Response("metrics need the metrics token\n", status_code=401, headers={"WWW-Authenticate": "Bearer"})
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
