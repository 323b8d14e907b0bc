"""The one writer of supervision records (an inspection, an online patrol, a guidance visit): the record, its
findings raised as hazards of the firm closed by the bureau, and the event in the firm's hash chain — inside
the caller's write transaction. The checks belong to the callers (`deadlines.inspections`, `workflow.guidance`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from workflow.actors import Actor
from workflow.engine import record_event
from workflow.tables import HAZARDS, INSPECTION_FINDINGS, INSPECTIONS

HAZARD_SOURCE = "inspection"  # a finding of a district bureau's inspection, closed by that bureau


@dataclass(frozen=True)
class Finding:
    """A finding: it becomes a hazard of the firm with the five implementations for the firm to fill."""

    description: str
    severity: str = "general"


def event_kind(kind: str) -> str:
    """The record's kind in the chain: `inspection_onsite`, `inspection_online`, `guidance_visit`."""
    return "guidance_visit" if kind == "guidance" else f"inspection_{kind}"


def write_record(
    conn: sa.Connection,
    *,
    enterprise_id: int,
    district_code: str,
    kind: str,
    held_on: dt.date,
    inspectors: Sequence[str],
    items_checked: Sequence[str] = (),
    summary: str | None = None,
    grade: str | None = None,
    plan_month: dt.date | None = None,
    penalty: dict[str, Any] | None = None,
    evidence_ids: Sequence[int] = (),
    findings: Sequence[Finding] = (),
    guidance_assignment_id: int | None = None,
    extra: dict[str, Any] | None = None,
    actor: Actor,
    now: dt.datetime,
) -> dict[str, Any]:
    """Insert the record, its findings as hazards (`source = "inspection"`, open, five implementations empty)
    and one event; returns the event's payload with the record's id and the hazards' ids."""
    inserted = conn.execute(
        sa.insert(INSPECTIONS).values(
            enterprise_id=enterprise_id,
            district_code=district_code,
            kind=kind,
            held_on=held_on,
            inspectors=list(inspectors),
            items_checked=list(items_checked),
            summary=summary,
            grade=grade,
            plan_month=plan_month,
            penalty_decision=penalty["decision"] if penalty else None,
            legal_basis=penalty["legal_basis"] if penalty else None,
            penalty_band=penalty["band"] if penalty else None,
            penalty_factor=penalty["factor"] if penalty else None,
            evidence_ids=list(evidence_ids),
            guidance_assignment_id=guidance_assignment_id,
            recorded_by=actor.name,
            recorded_at=now,
        )
    )
    assert inserted.inserted_primary_key is not None
    inspection_id = int(inserted.inserted_primary_key[0])
    hazard_ids: list[int] = []
    for finding in findings:
        row = conn.execute(
            sa.insert(HAZARDS).values(
                enterprise_id=enterprise_id,
                source=HAZARD_SOURCE,
                description=finding.description,
                severity=finding.severity,
                status="open",
                reported_at=now,
            )
        )
        assert row.inserted_primary_key is not None
        hazard_ids.append(int(row.inserted_primary_key[0]))
    if hazard_ids:
        conn.execute(
            sa.insert(INSPECTION_FINDINGS), [{"inspection_id": inspection_id, "hazard_id": h} for h in hazard_ids]
        )
    payload: dict[str, Any] = {
        "inspection_id": inspection_id,
        "kind": kind,
        "held_on": held_on.isoformat(),
        "inspectors": list(inspectors),
        "items_checked": list(items_checked),
        "grade": grade,
        "plan_month": plan_month.isoformat() if plan_month else None,
        "findings": [
            {"hazard_id": h, "description": f.description, "severity": f.severity}
            for h, f in zip(hazard_ids, findings, strict=True)
        ],
        "evidence_ids": list(evidence_ids),
        **(extra or {}),
    }
    if summary:
        payload["summary"] = summary
    if penalty:
        payload["penalty"] = penalty
    if guidance_assignment_id is not None:
        payload["assignment_id"] = guidance_assignment_id
    record_event(conn, enterprise_id=enterprise_id, kind=event_kind(kind), actor=actor, at=now, payload=payload)
    return {**payload, "enterprise_id": enterprise_id, "hazard_ids": hazard_ids}
