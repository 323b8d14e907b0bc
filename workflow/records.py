"""Records a firm keeps between transitions: its self-assessment over the outline and its hazards."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from states import InvalidInput, InvalidTransition, NotFound, OutOfScope
from workflow.campaign import Campaign
from workflow.clock import Clock
from workflow.db import write_unit
from workflow.engine import Actor, in_scope, load_firm
from workflow.models import HazardStatus
from workflow.tables import HAZARDS, SELF_ASSESSMENT_ITEMS, SELF_ASSESSMENTS

# A firm writes its self-assessment and hazards while it is working on compliance.
EDITABLE_STATES = ("self_assessing", "rectifying")


def _firm_in_scope(conn: sa.Connection, *, enterprise_id: int, actor: Actor) -> sa.Row[Any]:
    firm = load_firm(conn, enterprise_id=enterprise_id)
    if not in_scope(actor, firm):
        raise OutOfScope(f"找不到该企业 / no such enterprise: {enterprise_id}")
    return firm


def _require_editable(firm: sa.Row[Any]) -> None:
    if firm.state not in EDITABLE_STATES:
        raise InvalidTransition(
            f"企业处于“{firm.state}”状态，不能修改自评或隐患 / "
            f"self-assessment and hazards can only change while self-assessing or rectifying (now {firm.state})"
        )


def _editable_firm(conn: sa.Connection, *, enterprise_id: int, actor: Actor) -> sa.Row[Any]:
    """The firm, if the actor may see it (else not found) and it is at a stage where its record changes."""
    firm = _firm_in_scope(conn, enterprise_id=enterprise_id, actor=actor)
    _require_editable(firm)
    return firm


def _scored_total(scores: Mapping[str, float], campaign: Campaign) -> float:
    """The total of a complete, in-range set of item scores."""
    items = {item.code: item for item in campaign.outline_items}
    unknown = sorted(set(scores) - set(items))
    if unknown:
        raise InvalidInput(f"大纲中没有这些条目：{', '.join(unknown)} / not in the outline: {', '.join(unknown)}")
    missing = [code for code in items if code not in scores]
    if missing:
        raise InvalidInput(f"以下条目尚未评分：{', '.join(missing)} / items not scored: {', '.join(missing)}")
    for code, score in scores.items():
        if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
            raise InvalidInput(f"条目 {code} 的得分须为数字 / item {code}: the score must be a number")
        if not 0 <= score <= items[code].points:
            raise InvalidInput(
                f"条目 {code} 得分须在 0 至 {items[code].points:g} 之间 / "
                f"item {code}: the score must be between 0 and {items[code].points:g}"
            )
    return round(sum(float(s) for s in scores.values()), 2)


def record_self_assessment(
    session: Session,
    *,
    enterprise_id: int,
    scores: Mapping[str, float],
    actor: Actor,
    campaign: Campaign,
    clock: Clock,
    notes: Mapping[str, str] | None = None,
) -> tuple[int, float]:
    """Store a self-assessment over the whole creation outline; returns (id, total score)."""
    with write_unit(session) as conn:
        firm = _firm_in_scope(conn, enterprise_id=enterprise_id, actor=actor)
        total = _scored_total(scores, campaign)
        _require_editable(firm)
        result = conn.execute(
            sa.insert(SELF_ASSESSMENTS).values(
                enterprise_id=enterprise_id,
                total_score=total,
                recorded_at=clock.now(),
                recorded_by=actor.name,
            )
        )
        assert result.inserted_primary_key is not None
        assessment_id = int(result.inserted_primary_key[0])
        conn.execute(
            sa.insert(SELF_ASSESSMENT_ITEMS),
            [
                {
                    "assessment_id": assessment_id,
                    "item_code": code,
                    "score": float(score),
                    "note": (notes or {}).get(code),
                }
                for code, score in scores.items()
            ],
        )
    return assessment_id, total


@dataclass(frozen=True)
class FiveImplementations:
    """五落实: who is responsible, what is done, the money, by when, and the emergency plan."""

    responsible_person: str | None = None
    measures: str | None = None
    funds: float | None = None
    deadline: dt.date | None = None
    emergency_plan: str | None = None

    def values(self) -> dict[str, Any]:
        if self.funds is not None and (not math.isfinite(self.funds) or self.funds < 0):
            raise InvalidInput("整改资金须为不小于0的数字 / funds must be a number of at least 0")
        for name in ("responsible_person", "measures", "emergency_plan"):
            value = getattr(self, name)
            if value is not None and len(value) > 2000:
                raise InvalidInput(f"{name} 超过2000字 / {name} is longer than 2000 characters")
        return {
            "responsible_person": self.responsible_person,
            "measures": self.measures,
            "funds": self.funds,
            "deadline": self.deadline,
            "emergency_plan": self.emergency_plan,
        }

    @property
    def complete(self) -> bool:
        texts = (self.responsible_person, self.measures, self.emergency_plan)
        return all(t is not None and t.strip() for t in texts) and self.funds is not None and self.deadline is not None


def report_hazard(
    session: Session,
    *,
    enterprise_id: int,
    description: str,
    implementations: FiveImplementations,
    actor: Actor,
    clock: Clock,
    severity: str = "general",
) -> int:
    """Record a hazard the firm found; returns its id."""
    with write_unit(session) as conn:
        firm = _firm_in_scope(conn, enterprise_id=enterprise_id, actor=actor)
        if not description.strip():
            raise InvalidInput("请填写隐患描述 / the hazard needs a description")
        if severity not in ("general", "major"):
            raise InvalidInput("隐患等级须为一般（general）或重大（major） / severity must be general or major")
        values = implementations.values()
        _require_editable(firm)
        result = conn.execute(
            sa.insert(HAZARDS).values(
                enterprise_id=enterprise_id,
                source="self",
                description=description.strip(),
                severity=severity,
                status=HazardStatus.open,
                reported_at=clock.now(),
                **values,
            )
        )
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def _hazard(conn: sa.Connection, *, hazard_id: int, actor: Actor) -> sa.Row[Any]:
    hazard = conn.execute(sa.select(HAZARDS).where(HAZARDS.c.id == hazard_id)).first()
    if hazard is None:
        raise NotFound(f"找不到该隐患 / no such hazard: {hazard_id}")
    _editable_firm(conn, enterprise_id=hazard.enterprise_id, actor=actor)
    return hazard


def update_hazard(session: Session, *, hazard_id: int, implementations: FiveImplementations, actor: Actor) -> None:
    """Fill in or change a hazard's five implementations (fields left None keep their value)."""
    with write_unit(session) as conn:
        _hazard(conn, hazard_id=hazard_id, actor=actor)
        values = {k: v for k, v in implementations.values().items() if v is not None}
        if values:
            conn.execute(sa.update(HAZARDS).where(HAZARDS.c.id == hazard_id).values(**values))


def rectify_hazard(session: Session, *, hazard_id: int, evidence: str | None, actor: Actor, clock: Clock) -> None:
    """Mark a hazard rectified; refused while any of its five implementations is missing."""
    with write_unit(session) as conn:
        hazard = _hazard(conn, hazard_id=hazard_id, actor=actor)
        five = FiveImplementations(
            hazard.responsible_person, hazard.measures, hazard.funds, hazard.deadline, hazard.emergency_plan
        )
        if not five.complete:
            raise InvalidInput("“五落实”未填写完整，不能标记为已整改 / fill in all five implementations first")
        if hazard.status != HazardStatus.open:
            raise InvalidInput("该隐患已整改 / the hazard is already rectified")
        conn.execute(
            sa.update(HAZARDS)
            .where(HAZARDS.c.id == hazard_id)
            .values(status=HazardStatus.rectified, rectified_at=clock.now(), rectification_evidence=evidence)
        )
