"""Records a firm keeps between transitions: its self-assessment over the outline and its hazards, each
change an event in the firm's hash chain.

A hazard is `open` until rectified. The firm closes the hazards it found itself (`rectified`, with an uploaded
rectification file for that hazard); findings raised by an online audit or a review (or a revocation) are closed
by the office that raised them: the firm submits its rectification (`submitted`, with its file) and that office
accepts it (`accepted`) or rejects it with a note (back to `open`). A rectified or accepted hazard is
read-only."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from states import InvalidInput, InvalidTransition, NotAllowed, NotFound, OutOfScope, Role
from workflow.actors import Actor, in_scope
from workflow.campaign import Campaign, DossierRules
from workflow.clock import Clock
from workflow.context import Context
from workflow.db import write_unit
from workflow.engine import load_firm, record_event
from workflow.limits import check_funds, check_text
from workflow.models import HazardStatus
from workflow.tables import EVIDENCE_FILES, HAZARDS, SELF_ASSESSMENT_ITEMS, SELF_ASSESSMENTS

# Hazard statuses: still to be done, and done.
OPEN_STATUSES = (HazardStatus.open, HazardStatus.submitted)
CLOSED_STATUSES = (HazardStatus.rectified, HazardStatus.accepted)
# Findings of an online audit or a review (and of a revocation) are closed by the office that raised them.
OFFICE_SOURCES = ("audit", "review", "revocation", "inspection")


def raising_office(source: str, *, key_field: bool) -> Role | None:
    """The office that closes a finding: the online audit's and the review's office (重点监管领域的企业…由市应急
    保障中心负责进行线上审核; 非重点监管领域企业由辖市(区)应急管理部门…组织评审组进行审核), the city bureau
    for a revocation's, the district bureau for its inspection's (线上巡查、线下检查…督促企业整改); None for a
    hazard the firm found itself."""
    if source in ("audit", "review"):
        return Role.support_center if key_field else Role.district_bureau
    if source == "revocation":
        return Role.city_bureau
    if source == "inspection":
        return Role.district_bureau
    return None


def hazard_label(hazard: Any) -> str:
    """A hazard as people name it: its number and (the start of) its description."""
    text = str(hazard.description or "")
    return f" #{hazard.id}“{text[:40]}{'…' if len(text) > 40 else ''}”"


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
    context: Context,
    notes: Mapping[str, str] | None = None,
) -> tuple[int, float]:
    """Store a self-assessment over the whole creation outline; returns (id, total score)."""
    campaign, clock = context.campaign, context.clock
    with write_unit(session) as conn:
        firm = _firm_in_scope(conn, enterprise_id=enterprise_id, actor=actor)
        total = _scored_total(scores, campaign)
        for code, note in (notes or {}).items():
            if not isinstance(note, str):
                raise InvalidInput(f"条目 {code} 的说明须为文字 / item {code}: the note must be text")
            check_text("self_assessment_note", note, where=(f"条目 {code} 的", f"item {code}: "))
        unknown_notes = sorted(set(notes or {}) - set(scores))
        if unknown_notes:
            raise InvalidInput(
                f"大纲中没有这些条目：{', '.join(unknown_notes)} / not in the outline: {', '.join(unknown_notes)}"
            )
        _require_editable(firm)
        now = clock.now()
        result = conn.execute(
            sa.insert(SELF_ASSESSMENTS).values(
                enterprise_id=enterprise_id,
                total_score=total,
                recorded_at=now,
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
        record_event(
            conn,
            enterprise_id=enterprise_id,
            kind="self_assessment_recorded",
            actor=actor,
            at=now,
            payload={"self_assessment_id": assessment_id, "total_score": total, "scores": dict(scores)},
        )
    return assessment_id, total


@dataclass(frozen=True)
class FiveImplementations:
    """五落实: who is responsible, what is done, the money, by when, and the emergency plan."""

    responsible_person: str | None = None
    measures: str | None = None
    funds: Decimal | float | str | None = None
    deadline: dt.date | None = None
    emergency_plan: str | None = None

    def values(self, *, reported_on: dt.date | None = None, rules: DossierRules | None = None) -> dict[str, Any]:
        """The columns to store, each checked against the shared limits (and the deadline against the
        campaign's calendar when the report day is known)."""
        funds = check_funds(self.funds)
        for name in ("responsible_person", "measures", "emergency_plan"):
            check_text(name, getattr(self, name))
        if self.deadline is not None and reported_on is not None:
            latest = reported_on + dt.timedelta(days=(rules or DossierRules()).hazard_deadline_max_days)
            if not reported_on <= self.deadline <= latest:
                raise InvalidInput(
                    f"整改时限须在上报之日（{reported_on}）至 {latest} 之间 / the deadline must lie between the "
                    f"report day ({reported_on}) and {latest}"
                )
        return {
            "responsible_person": self.responsible_person,
            "measures": self.measures,
            "funds": None if funds is None else float(funds),
            "deadline": self.deadline,
            "emergency_plan": self.emergency_plan,
        }

    @property
    def complete(self) -> bool:
        texts = (self.responsible_person, self.measures, self.emergency_plan)
        return all(t is not None and t.strip() for t in texts) and self.funds is not None and self.deadline is not None


def _as_event(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values as the event's JSON keeps them (dates as ISO text)."""
    return {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in values.items()}


def _local_day(at: dt.datetime, clock: Clock) -> dt.date:
    return at.astimezone(clock.tz).date()


def report_hazard(
    session: Session,
    *,
    enterprise_id: int,
    description: str,
    implementations: FiveImplementations,
    actor: Actor,
    clock: Clock,
    severity: str = "general",
    campaign: Campaign | None = None,
) -> int:
    """Record a hazard the firm found; returns its id. Its deadline lies between today and the campaign's
    latest (`[dossier] hazard_deadline_max_days`)."""
    with write_unit(session) as conn:
        firm = _firm_in_scope(conn, enterprise_id=enterprise_id, actor=actor)
        if not description.strip():
            raise InvalidInput("请填写隐患描述 / the hazard needs a description")
        check_text("description", description.strip())
        if severity not in ("general", "major"):
            raise InvalidInput("隐患等级须为一般（general）或重大（major） / severity must be general or major")
        now = clock.now()
        rules = campaign.dossier if campaign is not None else None
        values = implementations.values(reported_on=_local_day(now, clock), rules=rules)
        _require_editable(firm)
        result = conn.execute(
            sa.insert(HAZARDS).values(
                enterprise_id=enterprise_id,
                source="self",
                description=description.strip(),
                severity=severity,
                status=HazardStatus.open,
                reported_at=now,
                **values,
            )
        )
        assert result.inserted_primary_key is not None
        hazard_id = int(result.inserted_primary_key[0])
        record_event(
            conn,
            enterprise_id=enterprise_id,
            kind="hazard_reported",
            actor=actor,
            at=now,
            payload={"hazard_id": hazard_id, "description": description.strip(), "severity": severity}
            | _as_event(values),
        )
    return hazard_id


def _hazard(conn: sa.Connection, *, hazard_id: int, actor: Actor) -> tuple[sa.Row[Any], sa.Row[Any]]:
    """The hazard and its firm, if the actor may see the firm (else not found) and its record may change."""
    hazard = conn.execute(sa.select(HAZARDS).where(HAZARDS.c.id == hazard_id)).first()
    if hazard is None:
        raise NotFound(f"找不到该隐患 / no such hazard: {hazard_id}")
    firm = _editable_firm(conn, enterprise_id=hazard.enterprise_id, actor=actor)
    return hazard, firm


def _require_open(hazard: sa.Row[Any]) -> None:
    if hazard.status in CLOSED_STATUSES:
        raise InvalidInput(
            f"隐患{hazard_label(hazard)}已整改，不能再修改 / hazard{hazard_label(hazard)} is rectified and read-only"
        )
    if hazard.status == HazardStatus.submitted:
        raise InvalidInput(
            f"隐患{hazard_label(hazard)}的整改已提交，等待审核部门验收，不能修改 / hazard{hazard_label(hazard)}: "
            "the rectification awaits the office's acceptance and cannot change"
        )


def update_hazard(
    session: Session,
    *,
    hazard_id: int,
    implementations: FiveImplementations,
    actor: Actor,
    clock: Clock,
    campaign: Campaign | None = None,
) -> None:
    """Fill in or change an open hazard's five implementations (fields left None keep their value)."""
    with write_unit(session) as conn:
        hazard, _ = _hazard(conn, hazard_id=hazard_id, actor=actor)
        _require_open(hazard)
        rules = campaign.dossier if campaign is not None else None
        checked = implementations.values(reported_on=_local_day(hazard.reported_at, clock), rules=rules)
        values = {k: v for k, v in checked.items() if v is not None}
        if values:
            conn.execute(sa.update(HAZARDS).where(HAZARDS.c.id == hazard_id).values(**values))
            record_event(
                conn,
                enterprise_id=hazard.enterprise_id,
                kind="hazard_updated",
                actor=actor,
                at=clock.now(),
                payload={"hazard_id": hazard_id} | _as_event(values),
            )


def _rectification_file(
    conn: sa.Connection, hazard: sa.Row[Any], *, evidence_id: int | None, evidence_sha256: str | None
) -> sa.Row[Any]:
    """The firm's uploaded rectification file for this hazard that the caller names (by id or SHA-256)."""
    query = sa.select(EVIDENCE_FILES).where(
        EVIDENCE_FILES.c.enterprise_id == hazard.enterprise_id,
        EVIDENCE_FILES.c.hazard_id == hazard.id,
        EVIDENCE_FILES.c.kind == "rectification",
    )
    row = None
    if evidence_id is not None:
        row = conn.execute(query.where(EVIDENCE_FILES.c.id == evidence_id)).first()
    elif evidence_sha256 is not None:
        row = conn.execute(
            query.where(EVIDENCE_FILES.c.sha256 == evidence_sha256).order_by(EVIDENCE_FILES.c.id.desc())
        ).first()
    if row is None:
        raise InvalidInput(
            f"隐患{hazard_label(hazard)}须附本企业为该隐患上传的整改佐证文件 / hazard{hazard_label(hazard)} needs a "
            "rectification file this firm uploaded for this hazard"
        )
    return row


def rectify_hazard(
    session: Session,
    *,
    hazard_id: int,
    actor: Actor,
    clock: Clock,
    evidence_id: int | None = None,
    evidence_sha256: str | None = None,
    note: str | None = None,
) -> str:
    """The firm rectifies a hazard with an uploaded rectification file for it: its own hazards become
    `rectified`; a finding of an audit, review or revocation becomes `submitted` for the raising office to
    accept. Refused while any of the five implementations is missing. Returns the new status."""
    with write_unit(session) as conn:
        hazard, firm = _hazard(conn, hazard_id=hazard_id, actor=actor)
        if actor.role is not Role.enterprise:
            raise NotAllowed("只有企业本身可以提交整改 / only the firm itself rectifies its hazards")
        _require_open(hazard)
        five = FiveImplementations(
            hazard.responsible_person, hazard.measures, hazard.funds, hazard.deadline, hazard.emergency_plan
        )
        if not five.complete:
            raise InvalidInput(
                f"隐患{hazard_label(hazard)}的“五落实”未填写完整，不能标记为已整改 / hazard{hazard_label(hazard)}: "
                "fill in all five implementations first"
            )
        check_text("note", note)
        evidence = _rectification_file(conn, hazard, evidence_id=evidence_id, evidence_sha256=evidence_sha256)
        office = raising_office(hazard.source, key_field=bool(firm.key_field))
        status = HazardStatus.rectified if office is None else HazardStatus.submitted
        now = clock.now()
        conn.execute(
            sa.update(HAZARDS)
            .where(HAZARDS.c.id == hazard_id)
            .values(
                status=status,
                rectified_at=now,
                rectification_evidence=evidence.sha256,
                rectification_evidence_id=evidence.id,
            )
        )
        record_event(
            conn,
            enterprise_id=hazard.enterprise_id,
            kind="hazard_rectified" if office is None else "hazard_rectification_submitted",
            actor=actor,
            at=now,
            payload={
                "hazard_id": hazard_id,
                "evidence_id": int(evidence.id),
                "sha256": evidence.sha256,
                **({"note": note} if note else {}),
            },
        )
    return status


def decide_rectification(
    session: Session, *, hazard_id: int, accept: bool, note: str | None, actor: Actor, clock: Clock
) -> None:
    """The office that raised a finding accepts the firm's submitted rectification (`accepted`) or rejects it
    with a note (the hazard is open again, its file kept on record)."""
    with write_unit(session) as conn:
        hazard = conn.execute(sa.select(HAZARDS).where(HAZARDS.c.id == hazard_id)).first()
        if hazard is None:
            raise NotFound(f"找不到该隐患 / no such hazard: {hazard_id}")
        firm = _firm_in_scope(conn, enterprise_id=hazard.enterprise_id, actor=actor)
        office = raising_office(hazard.source, key_field=bool(firm.key_field))
        if office is None:
            raise InvalidInput(
                f"隐患{hazard_label(hazard)}是企业自查发现的，由企业自行整改销号 / hazard{hazard_label(hazard)} was "
                "found by the firm itself, which closes it"
            )
        if actor.role is not office:
            raise NotAllowed(
                f"隐患{hazard_label(hazard)}的整改由提出该问题的部门（{office.value}）验收 / hazard"
                f"{hazard_label(hazard)}: its rectification is accepted by the office that raised it ({office.value})"
            )
        text = (note or "").strip()
        check_text("note", text)
        if not accept and not text:
            raise InvalidInput("退回整改须填写说明 / rejecting a rectification needs a note")
        _require_editable(firm)
        if hazard.status != HazardStatus.submitted:
            raise InvalidInput(
                f"隐患{hazard_label(hazard)}没有待验收的整改 / hazard{hazard_label(hazard)} has no rectification "
                "awaiting acceptance"
            )
        now = clock.now()
        values: dict[str, Any] = {"decided_at": now, "decided_by": actor.name, "decision_note": text or None}
        if accept:
            values["status"] = HazardStatus.accepted
        else:
            values.update(
                status=HazardStatus.open, rectified_at=None, rectification_evidence=None, rectification_evidence_id=None
            )
        conn.execute(sa.update(HAZARDS).where(HAZARDS.c.id == hazard_id).values(**values))
        record_event(
            conn,
            enterprise_id=hazard.enterprise_id,
            kind="rectification_accepted" if accept else "rectification_rejected",
            actor=actor,
            at=now,
            payload={
                "hazard_id": hazard_id,
                "evidence_id": hazard.rectification_evidence_id,
                "sha256": hazard.rectification_evidence,
                **({"note": text} if text else {}),
            },
        )
