"""Bulk actions: one trigger on many firms in one request, each firm its own audited transition."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import OFFICIALS, ContextDep, SessionDep, allow
from api.errors import error_body
from api.metrics import TRANSITIONS
from api.routes.enterprises import _result
from workflow.actors import Actor
from workflow.bulk import MAX_FIRMS, BulkTarget, fire_many

router = APIRouter(prefix="/api", tags=["bulk"])

Official = Annotated[Actor, allow(*OFFICIALS)]


class BulkItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enterprise_id: int = Field(ge=1)
    version: int | None = Field(default=None, ge=1, description="the version the caller saw; another one is 409")


class BulkTransitionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[BulkItem] = Field(min_length=1, max_length=MAX_FIRMS)
    data: dict[str, Any] | None = Field(default=None, description="shared by every firm: reason, score, …")


class BulkItemResult(BaseModel):
    enterprise_id: int
    ok: bool
    status: int = Field(description="what the single-firm request would have answered: 200, 404, 409, 422 …")
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class BulkTransitionResult(BaseModel):
    trigger: str
    fired: int
    failed: int
    items: list[BulkItemResult]


def _status(code: str | None) -> int:
    return {
        None: 200,
        "not_found": 404,
        "not_allowed": 403,
        "version_conflict": 409,
        "invalid_transition": 409,
        "guard_failed": 422,
        "invalid_input": 422,
    }.get(code, 503)


@router.post("/bulk/transitions/{trigger}", response_model=BulkTransitionResult)
def bulk_transition(
    trigger: str, body: BulkTransitionRequest, context: ContextDep, session: SessionDep, actor: Official
) -> Any:
    """Fire one trigger on many firms (a district verifying its applications, the city certifying a list):
    each firm is its own transition, committed whole or not at all; the answer lists every firm with its
    result or its refusal (a firm outside the caller's scope is `not_found`)."""
    outcomes = fire_many(
        session,
        trigger=trigger,
        targets=[BulkTarget(i.enterprise_id, i.version) for i in body.items],
        actor=actor,
        context=context.service,
        payload=body.data,
    )
    items = []
    for outcome in outcomes:
        error = None
        if outcome.error is not None:
            error = error_body(
                outcome.code or "error",
                str(outcome.error)
                if outcome.code != "database_error"
                else "数据库暂时不可用 / the database is unavailable",
            )
        items.append(
            {
                "enterprise_id": outcome.enterprise_id,
                "ok": outcome.ok,
                "status": _status(outcome.code),
                "result": None if outcome.result is None else _result(outcome.result),
                "error": error,
            }
        )
    fired = sum(1 for o in outcomes if o.ok)
    if fired:
        TRANSITIONS.labels(trigger=trigger).inc(fired)
    return {"trigger": trigger, "fired": fired, "failed": len(outcomes) - fired, "items": items}
