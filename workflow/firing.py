"""One trigger fired from a front door (the API's transition route and the firm page's form): the firm
at the version its caller saw, with the materials it named by evidence id."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from workflow.actors import Actor
from workflow.context import Context
from workflow.db import read_unit
from workflow.engine import FireResult, fire
from workflow.queries import evidence_named


def fire_seen(
    session: Session,
    context: Context,
    actor: Actor,
    enterprise_id: int,
    trigger: str,
    payload: Mapping[str, Any] | None,
    version: int | None,
    *,
    material: list[int] | None = None,
    also: Callable[[sa.Connection, FireResult], None] | None = None,
) -> FireResult:
    """Fire `trigger` on the firm as `fire` does, refused if its version is no longer `version`; `material`
    (ids of the firm's evidence) becomes the payload's `materials`. Raises as `fire` and `evidence_named`."""
    data = payload
    if material:
        data = dict(payload or {})
        with read_unit(session) as conn:
            data["materials"] = evidence_named(conn, enterprise_id=enterprise_id, ids=material)
    return fire(
        session,
        enterprise_id=enterprise_id,
        trigger=trigger,
        actor=actor,
        context=context,
        payload=data,
        expected_version=version,
        also=also,
    )
