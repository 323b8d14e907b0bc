"""The evaluator pool (评定人员库): review teams drawn at random from trained, active reviewers without a
conflict, with a recorded seed; per-reviewer scores; the team's score; disqualification and reassignment."""

from __future__ import annotations

import math
import random
import secrets
import statistics
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from states import InvalidInput, InvalidTransition, NotAllowed, NotFound, OutOfScope, Role
from workflow.campaign import Campaign
from workflow.clock import Clock
from workflow.db import insert_ignore, read_unit, write_unit
from workflow.effects import clean_findings
from workflow.engine import Actor, FireResult, fire, in_scope, load_firm
from workflow.tables import (
    APPLICATIONS,
    ENTERPRISES,
    OUTBOX,
    REVIEW_ASSIGNMENTS,
    REVIEWER_CONSULTANCIES,
    REVIEWER_PROFILES,
    REVIEWS,
    USERS,
)

OPEN_ASSIGNMENTS = ("active", "done")  # members of the team (a replaced member is not)


def _application(conn: sa.Connection, application_id: int) -> Any:
    app = conn.execute(sa.select(APPLICATIONS).where(APPLICATIONS.c.id == application_id)).first()
    if app is None:
        raise NotFound(f"找不到该申请 / no such application: {application_id}")
    return app


def _check_organiser(actor: Actor, firm: Any) -> None:
    """Review teams are the support center's for key-field firms and the district bureau's for the rest."""
    if not in_scope(actor, firm) and actor.role is not Role.reviewer:
        raise OutOfScope(f"找不到该申请 / no such application for firm {firm.id}")
    organiser = Role.support_center if firm.key_field else Role.district_bureau
    if actor.role is not organiser:
        raise NotAllowed(
            f"该企业的评审由{'市应急保障中心' if firm.key_field else '辖区应急管理局'}组织 / "
            f"reviews of this firm are organised by the {organiser.value}"
        )


def eligible_reviewers(conn: sa.Connection, *, application_id: int) -> list[int]:
    """Trained, active pool members with no conflict for this application's firm and not yet on its team."""
    app = _application(conn, application_id)
    firm_id = app.enterprise_id
    consulted = sa.select(REVIEWER_CONSULTANCIES.c.reviewer_id).where(REVIEWER_CONSULTANCIES.c.enterprise_id == firm_id)
    already = sa.select(REVIEW_ASSIGNMENTS.c.reviewer_id).where(REVIEW_ASSIGNMENTS.c.application_id == application_id)
    rows = conn.execute(
        sa.select(USERS.c.id)
        .join(REVIEWER_PROFILES, REVIEWER_PROFILES.c.user_id == USERS.c.id)
        .where(
            USERS.c.role == Role.reviewer.value,
            USERS.c.active.is_(True),
            REVIEWER_PROFILES.c.active.is_(True),
            REVIEWER_PROFILES.c.trained_on.is_not(None),
            REVIEWER_PROFILES.c.disqualified_at.is_(None),
            sa.or_(
                REVIEWER_PROFILES.c.employer_enterprise_id.is_(None),
                REVIEWER_PROFILES.c.employer_enterprise_id != firm_id,
            ),
            USERS.c.id.not_in(consulted),
            USERS.c.id.not_in(already),
        )
        .order_by(USERS.c.id)
    )
    return [int(r.id) for r in rows]


def draw(candidates: Sequence[int], *, size: int, seed: int) -> list[int]:
    """The team a seed draws from a candidate list; anyone can redo it to audit the draw."""
    return sorted(random.Random(seed).sample(list(candidates), size))


def _assign(
    conn: sa.Connection,
    *,
    application_id: int,
    firm: Any,
    size: int,
    seed: int,
    actor: Actor,
    clock: Clock,
) -> list[int]:
    candidates = eligible_reviewers(conn, application_id=application_id)
    if len(candidates) < size:
        raise InvalidInput(
            f"符合条件的评定人员只有 {len(candidates)} 名，需要 {size} 名 / only {len(candidates)} eligible "
            f"reviewer(s), {size} needed"
        )
    team = draw(candidates, size=size, seed=seed)
    now = clock.now()
    conn.execute(
        sa.insert(REVIEW_ASSIGNMENTS),
        [
            {
                "application_id": application_id,
                "reviewer_id": reviewer,
                "status": "active",
                "draw_seed": seed,
                "draw_pool": candidates,
                "assigned_at": now,
                "assigned_by": actor.name,
            }
            for reviewer in team
        ],
    )
    reviewers = conn.execute(sa.select(USERS).where(USERS.c.id.in_(team))).all()
    insert_ignore(
        conn,
        OUTBOX,
        [
            {
                "dedupe_key": f"assignment:{application_id}:{r.id}:{seed}",
                "kind": "reviewer_assignment",
                "audience": "reviewer",
                "enterprise_id": firm.id,
                "district_code": firm.district_code,
                "to_address": r.email,
                "lang": r.lang,
                "context": {
                    "reviewer_name": r.display_name,
                    "enterprise_name": firm.name,
                    "uscc": firm.uscc,
                    "application_id": application_id,
                },
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for r in reviewers
        ],
        key="dedupe_key",
    )
    return team


def form_team(
    session: Session,
    *,
    application_id: int,
    actor: Actor,
    campaign: Campaign,
    clock: Clock,
    seed: int | None = None,
) -> dict[str, Any]:
    """Draw the review team for an application whose online audit has passed."""
    if seed is not None and not 0 <= seed < 2**31:
        raise InvalidInput("随机种子须为 0 至 2147483647 / the seed must be from 0 to 2147483647")
    seed = secrets.randbelow(2**31) if seed is None else seed
    with write_unit(session) as conn:
        app = _application(conn, application_id)
        firm = load_firm(conn, enterprise_id=app.enterprise_id)
        _check_organiser(actor, firm)
        if app.status != "verified" or app.audit_passed_at is None:
            raise InvalidTransition("线上审核通过后才能组建评审组 / a team is formed after the online audit passed")
        if conn.execute(
            sa.select(REVIEW_ASSIGNMENTS.c.id).where(
                REVIEW_ASSIGNMENTS.c.application_id == application_id,
                REVIEW_ASSIGNMENTS.c.status.in_(OPEN_ASSIGNMENTS),
            )
        ).first():
            raise InvalidTransition("该申请已有评审组 / this application already has a review team")
        team = _assign(
            conn,
            application_id=application_id,
            firm=firm,
            size=campaign.review.team_size,
            seed=seed,
            actor=actor,
            clock=clock,
        )
    return {"application_id": application_id, "seed": seed, "reviewer_ids": team}


def _score(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{name} 须为数字 / {name} must be a number")
    if not 0 <= value <= 100:
        raise InvalidInput(f"{name} 须在 0 至 100 之间 / {name} must be from 0 to 100")
    return float(value)


def record_reviewer_score(
    session: Session,
    *,
    application_id: int,
    actor: Actor,
    online_score: float,
    onsite_score: float,
    findings: list[dict[str, Any]] | None,
    clock: Clock,
) -> None:
    """A team member's online and on-site scores, once; refused to anyone not on the team."""
    online, onsite = _score(online_score, "online_score"), _score(onsite_score, "onsite_score")
    clean = clean_findings(findings or [])
    with write_unit(session) as conn:
        assignment = conn.execute(
            sa.select(REVIEW_ASSIGNMENTS).where(
                REVIEW_ASSIGNMENTS.c.application_id == application_id,
                REVIEW_ASSIGNMENTS.c.reviewer_id == (actor.user_id or -1),
                REVIEW_ASSIGNMENTS.c.status.in_(OPEN_ASSIGNMENTS),
            )
        ).first()
        if actor.role is not Role.reviewer or assignment is None:
            raise OutOfScope(f"找不到该申请 / no such application: {application_id}")
        if assignment.status == "done":
            raise InvalidInput("您已提交过该申请的评分 / you have already scored this application")
        if _application(conn, application_id).status != "verified":
            raise InvalidTransition("该申请已不在评审阶段 / the application is no longer under review")
        now = clock.now()
        conn.execute(
            sa.insert(REVIEWS),
            [
                {
                    "application_id": application_id,
                    "reviewer_id": actor.user_id,
                    "part": "online",
                    "score": online,
                    "findings": [],
                    "recorded_at": now,
                },
                {
                    "application_id": application_id,
                    "reviewer_id": actor.user_id,
                    "part": "on_site",
                    "score": onsite,
                    "findings": clean,
                    "recorded_at": now,
                },
            ],
        )
        conn.execute(
            sa.update(REVIEW_ASSIGNMENTS).where(REVIEW_ASSIGNMENTS.c.id == assignment.id).values(status="done")
        )


def team_result(conn: sa.Connection, *, application_id: int, campaign: Campaign) -> dict[str, Any]:
    """The team's score by the campaign's rule, from the members still on the team."""
    members = [
        int(r.reviewer_id)
        for r in conn.execute(
            sa.select(REVIEW_ASSIGNMENTS.c.reviewer_id).where(
                REVIEW_ASSIGNMENTS.c.application_id == application_id,
                REVIEW_ASSIGNMENTS.c.status.in_(OPEN_ASSIGNMENTS),
            )
        )
    ]
    reviews = conn.execute(
        sa.select(REVIEWS).where(REVIEWS.c.application_id == application_id, REVIEWS.c.reviewer_id.in_(members or [-1]))
    ).all()
    parts: dict[int, dict[str, float]] = {}
    findings: list[dict[str, Any]] = []
    for r in reviews:
        parts.setdefault(int(r.reviewer_id), {})[r.part] = float(r.score)
        findings += r.findings or []
    missing = [m for m in members if set(parts.get(m, {})) != {"online", "on_site"}]
    weight = campaign.review.online_weight
    combine = statistics.mean if campaign.review.team_score == "mean" else statistics.median
    scored = [parts[m] for m in members if m not in missing]
    result: dict[str, Any] = {"members": members, "missing": missing, "findings": findings}
    if members and not missing:
        result["online_score"] = round(combine(p["online"] for p in scored), 2)
        result["onsite_score"] = round(combine(p["on_site"] for p in scored), 2)
        result["score"] = round(combine(weight * p["online"] + (1 - weight) * p["on_site"] for p in scored), 2)
    return result


def record_team_result(
    session: Session,
    *,
    application_id: int,
    actor: Actor,
    campaign: Campaign,
    clock: Clock,
    expected_version: int | None = None,
) -> FireResult:
    """Record the team's score on the firm (the `record_review` transition) once every member has scored."""
    with read_unit(session) as conn:  # the fire below is its own transaction
        app = _application(conn, application_id)
        firm = load_firm(conn, enterprise_id=app.enterprise_id)
        _check_organiser(actor, firm)
        result = team_result(conn, application_id=application_id, campaign=campaign)
    if not result["members"]:
        raise InvalidTransition("尚未组建评审组 / no review team has been formed")
    if result["missing"]:
        raise InvalidTransition(
            f"还有 {len(result['missing'])} 名评定人员未评分 / {len(result['missing'])} reviewer(s) have not scored"
        )
    return fire(
        session,
        enterprise_id=firm.id,
        trigger="record_review",
        actor=actor,
        campaign=campaign,
        clock=clock,
        payload={
            "score": result["score"],
            "online_score": result["online_score"],
            "onsite_score": result["onsite_score"],
            "findings": result["findings"],
        },
        expected_version=expected_version,
    )


def add_consultancy(session: Session, *, reviewer_id: int, enterprise_id: int, actor: Actor) -> None:
    """Record that a reviewer consulted for a firm (so it is never drawn to review it)."""
    if actor.role not in (Role.support_center, Role.city_bureau):
        raise NotAllowed("评定人员库由市应急保障中心管理 / the support center keeps the evaluator pool")
    with write_unit(session) as conn:
        _reviewer(conn, reviewer_id)
        load_firm(conn, enterprise_id=enterprise_id)
        exists = conn.execute(
            sa.select(REVIEWER_CONSULTANCIES.c.reviewer_id).where(
                REVIEWER_CONSULTANCIES.c.reviewer_id == reviewer_id,
                REVIEWER_CONSULTANCIES.c.enterprise_id == enterprise_id,
            )
        ).first()
        if exists is None:
            conn.execute(sa.insert(REVIEWER_CONSULTANCIES).values(reviewer_id=reviewer_id, enterprise_id=enterprise_id))


def _reviewer(conn: sa.Connection, reviewer_id: int) -> Any:
    row = conn.execute(
        sa.select(USERS, REVIEWER_PROFILES)
        .join(REVIEWER_PROFILES, REVIEWER_PROFILES.c.user_id == USERS.c.id)
        .where(USERS.c.id == reviewer_id)
    ).first()
    if row is None:
        raise NotFound(f"评定人员库中没有该人员 / no such reviewer: {reviewer_id}")
    return row


def list_reviewers(conn: sa.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(USERS.c.id, USERS.c.username, USERS.c.display_name, REVIEWER_PROFILES)
        .join(REVIEWER_PROFILES, REVIEWER_PROFILES.c.user_id == USERS.c.id)
        .order_by(USERS.c.id)
    ).all()
    consulted: dict[int, list[int]] = {}
    for c in conn.execute(sa.select(REVIEWER_CONSULTANCIES)):
        consulted.setdefault(int(c.reviewer_id), []).append(int(c.enterprise_id))
    return [
        {
            "id": r.id,
            "username": r.username,
            "name": r.display_name,
            "organisation": r.organisation,
            "employer_enterprise_id": r.employer_enterprise_id,
            "trained_on": r.trained_on.isoformat() if r.trained_on else None,
            "active": r.active,
            "disqualified_at": r.disqualified_at.isoformat() if r.disqualified_at else None,
            "disqualified_reason": r.disqualified_reason,
            "consulted_for": sorted(consulted.get(int(r.id), [])),
        }
        for r in rows
    ]


def disqualify(
    session: Session, *, reviewer_id: int, reason: str, actor: Actor, campaign: Campaign, clock: Clock
) -> dict[str, Any]:
    """Disqualify a reviewer found cheating: out of the pool for good, and every review of theirs still open
    (application not yet scored) goes to a newly drawn reviewer."""
    if actor.role not in (Role.support_center, Role.city_bureau):
        raise NotAllowed("评定人员库由市应急保障中心管理 / the support center keeps the evaluator pool")
    if not reason.strip():
        raise InvalidInput("请填写取消资格的理由 / a reason is required")
    now = clock.now()
    reassigned: list[dict[str, Any]] = []
    with write_unit(session) as conn:
        reviewer = _reviewer(conn, reviewer_id)
        if reviewer.disqualified_at is not None:
            raise InvalidInput("该人员已被取消资格 / this reviewer is already disqualified")
        conn.execute(
            sa.update(REVIEWER_PROFILES)
            .where(REVIEWER_PROFILES.c.user_id == reviewer_id)
            .values(active=False, disqualified_at=now, disqualified_reason=reason.strip())
        )
        open_work = conn.execute(
            sa.select(REVIEW_ASSIGNMENTS.c.id, REVIEW_ASSIGNMENTS.c.application_id)
            .join(APPLICATIONS, APPLICATIONS.c.id == REVIEW_ASSIGNMENTS.c.application_id)
            .where(
                REVIEW_ASSIGNMENTS.c.reviewer_id == reviewer_id,
                REVIEW_ASSIGNMENTS.c.status.in_(OPEN_ASSIGNMENTS),
                APPLICATIONS.c.status == "verified",
            )
            .order_by(REVIEW_ASSIGNMENTS.c.id)
        ).all()
        for work in open_work:
            conn.execute(
                sa.update(REVIEW_ASSIGNMENTS)
                .where(REVIEW_ASSIGNMENTS.c.id == work.id)
                .values(status="replaced", replaced_at=now, replaced_reason=f"disqualified: {reason.strip()}")
            )
            app = _application(conn, work.application_id)
            firm = conn.execute(sa.select(ENTERPRISES).where(ENTERPRISES.c.id == app.enterprise_id)).one()
            seed = secrets.randbelow(2**31)
            team = _assign(
                conn, application_id=work.application_id, firm=firm, size=1, seed=seed, actor=actor, clock=clock
            )
            reassigned.append({"application_id": work.application_id, "replacement": team[0], "seed": seed})
        insert_ignore(
            conn,
            OUTBOX,
            [
                {
                    "dedupe_key": f"disqualified:{reviewer_id}",
                    "kind": "reviewer_disqualified",
                    "audience": "reviewer",
                    "to_address": reviewer.email,
                    "lang": reviewer.lang,
                    "context": {"reviewer_name": reviewer.display_name, "reason": reason.strip()},
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            ],
            key="dedupe_key",
        )
    return {"reviewer_id": reviewer_id, "reassigned": reassigned}
