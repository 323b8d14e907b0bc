"""What the firm pages read besides `queries.firm_detail`: the latest self-assessment with its item scores,
the uploaded files, the triggers still blocked and why, and a whole firm list streamed for export."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from states import MACHINE, Role, State
from workflow.actors import Actor
from workflow.clock import today
from workflow.context import Context
from workflow.facts import DbFacts
from workflow.queries import FirmFilter, firm_where, overdue_clause
from workflow.tables import DISTRICTS, ENTERPRISES, EVIDENCE_FILES, SELF_ASSESSMENT_ITEMS, SELF_ASSESSMENTS

E = ENTERPRISES


# ---- a whole firm list, for export ----------------------------------------------------------------


def firm_export_rows(conn: sa.Connection, *, actor: Actor, filters: FirmFilter) -> Iterator[sa.Row[Any]]:
    """Every firm of a list — the same scope and filters as `queries.list_firms`, without paging — streamed."""
    filters.check()
    query = (
        sa.select(
            E.c.id,
            E.c.uscc,
            E.c.name,
            DISTRICTS.c.name.label("district_name"),
            E.c.sector,
            E.c.key_field,
            E.c.above_size,
            E.c.state,
            E.c.state_since,
            overdue_clause().label("overdue"),
            E.c.principal,
            E.c.phone,
        )
        .join(DISTRICTS, DISTRICTS.c.code == E.c.district_code)
        .where(*firm_where(actor, filters))
        .order_by(E.c.id)
    )
    yield from conn.execution_options(yield_per=2000).execute(query)


# ---- what the firm page shows besides `queries.firm_detail` ---------------------------------------


@dataclass(frozen=True)
class SelfAssessmentRead:
    id: int
    total_score: float
    recorded_at: dt.datetime
    recorded_by: str
    items: dict[str, tuple[float, str | None]]  # outline item code → (score, note)


def latest_self_assessment(conn: sa.Connection, *, enterprise_id: int) -> SelfAssessmentRead | None:
    """The firm's latest self-assessment with its item scores (the caller has checked the scope)."""
    head = conn.execute(
        sa.select(SELF_ASSESSMENTS)
        .where(SELF_ASSESSMENTS.c.enterprise_id == enterprise_id)
        .order_by(SELF_ASSESSMENTS.c.id.desc())
        .limit(1)
    ).first()
    if head is None:
        return None
    items = conn.execute(
        sa.select(SELF_ASSESSMENT_ITEMS.c.item_code, SELF_ASSESSMENT_ITEMS.c.score, SELF_ASSESSMENT_ITEMS.c.note).where(
            SELF_ASSESSMENT_ITEMS.c.assessment_id == head.id
        )
    )
    return SelfAssessmentRead(
        id=int(head.id),
        total_score=float(head.total_score),
        recorded_at=head.recorded_at,
        recorded_by=str(head.recorded_by),
        items={str(r.item_code): (float(r.score), r.note) for r in items},
    )


def evidence_of(conn: sa.Connection, *, enterprise_id: int) -> list[sa.Row[Any]]:
    """The firm's uploaded files, oldest first (the caller has checked the scope)."""
    return list(
        conn.execute(
            sa.select(EVIDENCE_FILES)
            .where(EVIDENCE_FILES.c.enterprise_id == enterprise_id)
            .order_by(EVIDENCE_FILES.c.id)
        )
    )


def blocked_triggers(conn: sa.Connection, *, firm: sa.Row[Any], role: Role, context: Context) -> dict[str, list[str]]:
    """The triggers this role could fire from the firm's state but for guards on the firm's record, with
    each failing guard's reason ("中文 / English") — what is still to be done."""
    campaign, clock = context.campaign, context.clock
    facts = DbFacts(conn, firm=firm, campaign=campaign, today=today(clock), payload={})
    return MACHINE.blocked(state=State(firm.state), role=role, facts=facts)
