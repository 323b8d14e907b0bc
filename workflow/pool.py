"""The evaluator pool (评定人员库): review teams drawn by the server at random from trained, active reviewers
without a conflict, every draw recorded (seed from `secrets`, candidates, team) so anyone can redo it; each
member's scoring sheet per outline element; the team's combined result, the only source of a review score;
recusal (回避), removal for a conflict declared after the draw, disqualification; misconduct reports.

Every draw, redraw, recusal, removal and score is an event in the firm's hash chain."""

from __future__ import annotations

import math
import random
import re
import secrets
import statistics
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from states import InvalidInput, InvalidTransition, NotAllowed, NotFound, OutOfScope, Role
from workflow.actors import Actor, in_scope, scope
from workflow.campaign import Campaign
from workflow.clock import Clock
from workflow.context import Context
from workflow.db import read_unit, write_unit
from workflow.driver import insert_ignore
from workflow.effects import clean_findings
from workflow.engine import FireResult, fire, load_firm, record_event
from workflow.models import (
    ApplicationStatus,
    OutboxStatus,
    ReviewAssignmentStatus,
    ReviewDrawKind,
    ReviewerReportStatus,
)
from workflow.tables import (
    API_TOKENS,
    APPLICATIONS,
    ENTERPRISES,
    OUTBOX,
    REVIEW_ASSIGNMENTS,
    REVIEW_DRAWS,
    REVIEWER_CONSULTANCIES,
    REVIEWER_PROFILES,
    REVIEWER_REPORTS,
    REVIEWS,
    USERS,
)

OPEN_ASSIGNMENTS = (
    ReviewAssignmentStatus.active,
    ReviewAssignmentStatus.done,
)  # members of the team (a replaced, recused or removed member is not)
PARTS = ("online", "on_site")  # 线上评审, 线下现场评审
SEED_LIMIT = 2**31
MAX_REASON = 2000


def _application(conn: sa.Connection, application_id: int) -> Any:
    app = conn.execute(sa.select(APPLICATIONS).where(APPLICATIONS.c.id == application_id)).first()
    if app is None:
        raise NotFound(f"找不到该申请 / no such application: {application_id}")
    return app


def _new_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _organiser_of(firm: Any) -> Role:
    return Role.support_center if firm.key_field else Role.district_bureau


def _check_organiser(actor: Actor, firm: Any) -> None:
    """Review teams are the support center's for key-field firms and the district bureau's for the rest."""
    if not in_scope(actor, firm) and actor.role is not Role.reviewer:
        raise OutOfScope(f"找不到该申请 / no such application for firm {firm.id}")
    organiser = _organiser_of(firm)
    if actor.role is not organiser:
        raise NotAllowed(
            f"该企业的评审由{'市应急保障中心' if firm.key_field else '辖区应急管理局'}组织 / "
            f"reviews of this firm are organised by the {organiser.value}"
        )


def _check_pool_keeper(actor: Actor) -> None:
    if actor.role not in (Role.support_center, Role.city_bureau):
        raise NotAllowed("评定人员库由市应急保障中心管理 / the support center keeps the evaluator pool")


def _reason(reason: str | None, what: tuple[str, str]) -> str:
    text = (reason or "").strip()
    if not text:
        raise InvalidInput(f"请填写{what[0]} / {what[1]} is required")
    if len(text) > MAX_REASON:
        raise InvalidInput(f"{what[0]}超过 {MAX_REASON} 字 / {what[1]} is longer than {MAX_REASON} characters")
    return text


def _under_review(app: Any) -> None:
    if app.status != ApplicationStatus.verified or app.audit_passed_at is None:
        raise InvalidTransition(
            f"申请 {app.id} 不在评审阶段（线上审核通过后、评审结果形成前） / application {app.id} is not under "
            "review (after the online audit passed, before the team's result)"
        )


def eligible_reviewers(conn: sa.Connection, *, application_id: int) -> list[int]:
    """Trained, active pool members with no conflict for this application's firm and never on its team."""
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


def server_seed() -> int:
    """The seed of every draw: from the operating system's secure source, never from a caller."""
    return secrets.randbelow(SEED_LIMIT)


def _draw_into(
    conn: sa.Connection,
    *,
    app: Any,
    firm: Any,
    size: int,
    kind: str,
    actor: Actor,
    clock: Clock,
    reason: str | None = None,
    replaces: int | None = None,
) -> dict[str, Any]:
    """Draw `size` reviewers by the server's seed, record the draw and the assignments, mail the drawn,
    and append the draw to the firm's chain. `kind`: team / redraw / replacement."""
    candidates = eligible_reviewers(conn, application_id=app.id)
    if len(candidates) < size:
        raise InvalidInput(
            f"符合条件的评定人员只有 {len(candidates)} 名，需要 {size} 名 / only {len(candidates)} eligible "
            f"reviewer(s), {size} needed"
        )
    seed = server_seed()
    team = draw(candidates, size=size, seed=seed)
    now = clock.now()
    draw_id = _new_id(
        conn.execute(
            sa.insert(REVIEW_DRAWS).values(
                application_id=app.id,
                kind=kind,
                seed=seed,
                size=size,
                candidates=candidates,
                team=team,
                reason=reason,
                replaces_reviewer_id=replaces,
                drawn_at=now,
                drawn_by=actor.name,
            )
        )
    )
    conn.execute(
        sa.insert(REVIEW_ASSIGNMENTS),
        [
            {
                "application_id": app.id,
                "reviewer_id": reviewer,
                "status": ReviewAssignmentStatus.active,
                "draw_seed": seed,
                "draw_pool": candidates,
                "assigned_at": now,
                "assigned_by": actor.name,
                "draw_id": draw_id,
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
                "dedupe_key": f"assignment:{app.id}:{r.id}:{draw_id}",
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
                    "application_id": app.id,
                },
                "status": OutboxStatus.pending,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for r in reviewers
        ],
        key="dedupe_key",
    )
    record = {
        "application_id": app.id,
        "draw_id": draw_id,
        "kind": kind,
        "seed": seed,
        "candidates": candidates,
        "team": team,
        "reason": reason,
        "replaces_reviewer_id": replaces,
    }
    record_event(
        conn,
        enterprise_id=firm.id,
        kind=f"review_draw_{kind}",
        actor=actor,
        at=now,
        payload=record,
    )
    return record


def _open_team(conn: sa.Connection, application_id: int) -> list[Any]:
    return list(
        conn.execute(
            sa.select(REVIEW_ASSIGNMENTS)
            .where(
                REVIEW_ASSIGNMENTS.c.application_id == application_id,
                REVIEW_ASSIGNMENTS.c.status.in_(OPEN_ASSIGNMENTS),
            )
            .order_by(REVIEW_ASSIGNMENTS.c.id)
        ).all()
    )


def form_team(
    session: Session,
    *,
    application_id: int,
    actor: Actor,
    context: Context,
    seed: Any = None,
) -> dict[str, Any]:
    """Draw the review team for an application whose online audit has passed. The server draws: a seed
    given by the caller is refused (`seed` is only there to say so, at every door)."""
    campaign, clock = context.campaign, context.clock
    if seed is not None and seed != "":
        raise InvalidInput(
            "评审组由服务器随机抽取，不接受指定的随机种子 / the server draws the review team; a seed cannot be given"
        )
    with write_unit(session) as conn:
        app = _application(conn, application_id)
        firm = load_firm(conn, enterprise_id=app.enterprise_id)
        _check_organiser(actor, firm)
        if app.status != ApplicationStatus.verified or app.audit_passed_at is None:
            raise InvalidTransition("线上审核通过后才能组建评审组 / a team is formed after the online audit passed")
        if _open_team(conn, application_id):
            raise InvalidTransition("该申请已有评审组 / this application already has a review team")
        done = _draw_into(
            conn, app=app, firm=firm, size=campaign.review.team_size, kind=ReviewDrawKind.team, actor=actor, clock=clock
        )
    return {"application_id": application_id, "seed": done["seed"], "reviewer_ids": done["team"]}


def redraw_team(
    session: Session, *, application_id: int, reason: str, actor: Actor, context: Context
) -> dict[str, Any]:
    """Replace the whole open team by a new draw (with a reason, audited); the old members' scores no
    longer count and none of them is drawn again for this application."""
    campaign, clock = context.campaign, context.clock
    with write_unit(session) as conn:
        app = _application(conn, application_id)
        firm = load_firm(conn, enterprise_id=app.enterprise_id)
        _check_organiser(actor, firm)
        why = _reason(reason, ("重新抽取的理由", "a reason for the redraw"))
        _under_review(app)
        team = _open_team(conn, application_id)
        if not team:
            raise InvalidTransition("尚未组建评审组 / no review team has been formed")
        conn.execute(
            sa.update(REVIEW_ASSIGNMENTS)
            .where(REVIEW_ASSIGNMENTS.c.id.in_([a.id for a in team]))
            .values(status=ReviewAssignmentStatus.replaced, replaced_at=clock.now(), replaced_reason=f"redraw: {why}")
        )
        done = _draw_into(
            conn,
            app=app,
            firm=firm,
            size=campaign.review.team_size,
            kind=ReviewDrawKind.redraw,
            actor=actor,
            clock=clock,
            reason=why,
        )
    return {"application_id": application_id, "seed": done["seed"], "reviewer_ids": done["team"], "reason": why}


def _leave_and_replace(
    conn: sa.Connection,
    *,
    assignment: Any,
    status: str,
    kind: str,
    reason: str,
    actor: Actor,
    clock: Clock,
) -> dict[str, Any]:
    """Take one member off a team (status recused / conflict / replaced), record it in the firm's chain,
    and draw a replacement the same audited way."""
    app = _application(conn, assignment.application_id)
    firm = load_firm(conn, enterprise_id=app.enterprise_id)
    now = clock.now()
    conn.execute(
        sa.update(REVIEW_ASSIGNMENTS)
        .where(REVIEW_ASSIGNMENTS.c.id == assignment.id)
        .values(status=status, replaced_at=now, replaced_reason=reason)
    )
    record_event(
        conn,
        enterprise_id=firm.id,
        kind=kind,
        actor=actor,
        at=now,
        payload={"application_id": app.id, "reviewer_id": int(assignment.reviewer_id), "reason": reason},
    )
    done = _draw_into(
        conn,
        app=app,
        firm=firm,
        size=1,
        kind=ReviewDrawKind.replacement,
        actor=actor,
        clock=clock,
        reason=reason,
        replaces=int(assignment.reviewer_id),
    )
    return {"application_id": app.id, "replacement": done["team"][0], "seed": done["seed"]}


def recuse(
    session: Session,
    *,
    application_id: int,
    reason: str,
    actor: Actor,
    clock: Clock,
    reviewer_id: int | None = None,
) -> dict[str, Any]:
    """A drawn reviewer declares a conflict (申请回避), themselves or through the organiser: they leave this
    team, a replacement is drawn, and nothing else happens to them (they stay in the pool)."""
    if actor.role is Role.reviewer:
        if reviewer_id not in (None, actor.user_id):
            raise NotAllowed("评定人员只能为自己申请回避 / a reviewer declares only their own conflict")
        reviewer_id = actor.user_id
    with write_unit(session) as conn:
        app = _application(conn, application_id)
        firm = load_firm(conn, enterprise_id=app.enterprise_id)
        member = next((a for a in _open_team(conn, application_id) if a.reviewer_id == reviewer_id), None)
        if actor.role is Role.reviewer:
            if member is None:
                raise OutOfScope(f"找不到该申请 / no such application: {application_id}")
        else:
            _check_organiser(actor, firm)
            if reviewer_id is None:
                raise InvalidInput("请指明申请回避的评定人员 / name the reviewer who steps aside")
            if member is None:
                raise NotFound(
                    f"评定人员 {reviewer_id} 不在申请 {application_id} 的评审组中 / reviewer {reviewer_id} is not "
                    f"on the team of application {application_id}"
                )
        why = _reason(reason, ("回避理由", "a reason for the recusal"))
        _under_review(app)
        return _leave_and_replace(
            conn,
            assignment=member,
            status=ReviewAssignmentStatus.recused,
            kind="reviewer_recused",
            reason=why,
            actor=actor,
            clock=clock,
        )


def _open_work(conn: sa.Connection, reviewer_id: int, *, enterprise_id: int | None = None) -> list[Any]:
    """The reviewer's places on teams still under review (of one firm, or of all)."""
    query = (
        sa.select(REVIEW_ASSIGNMENTS)
        .join(APPLICATIONS, APPLICATIONS.c.id == REVIEW_ASSIGNMENTS.c.application_id)
        .where(
            REVIEW_ASSIGNMENTS.c.reviewer_id == reviewer_id,
            REVIEW_ASSIGNMENTS.c.status.in_(OPEN_ASSIGNMENTS),
            APPLICATIONS.c.status == ApplicationStatus.verified,
        )
        .order_by(REVIEW_ASSIGNMENTS.c.id)
    )
    if enterprise_id is not None:
        query = query.where(APPLICATIONS.c.enterprise_id == enterprise_id)
    return list(conn.execute(query).all())


# ---- scoring -------------------------------------------------------------------------------------

_DECIMAL_TEXT = re.compile(r"^\d{1,3}(\.\d+)?$")


def score_from_text(text: str, name: str) -> float:
    """A score typed in a form or on the command line: plain decimal digits only ("1e2", "inf", "0x10" and
    the like are refused, as a JSON string would be)."""
    value = text.strip()
    if not _DECIMAL_TEXT.match(value):
        raise InvalidInput(f"“{name}”须为十进制数字，如 8 或 8.5 / {name} must be a decimal number such as 8 or 8.5")
    try:
        return float(Decimal(value))
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise InvalidInput(f"“{name}”须为数字 / {name} must be a number") from None


def element_points(campaign: Campaign) -> dict[str, float]:
    """Each outline element's full points (the sum of its items): the scale of its line on the sheet."""
    return {e.code: float(sum(i.points for i in e.items)) for e in campaign.outline}


def clean_sheet(sheet: Any, campaign: Campaign) -> dict[str, dict[str, float]]:
    """A member's scoring sheet: for every element of the creation outline (创建大纲), an online and an
    on-site score from 0 to the element's points, as JSON numbers with at most the campaign's decimals.
    Returns {part: {element code: score}}."""
    if not isinstance(sheet, Mapping):
        raise InvalidInput(
            "评分表须为键值对：每个大纲要素一行，含线上与现场得分 / the scoring sheet must be a JSON object: one "
            "line per outline element with its online and on-site scores"
        )
    points = element_points(campaign)
    names = {e.code: (e.name, e.name_en) for e in campaign.outline}
    unknown = sorted(set(map(str, sheet)) - set(points))
    if unknown:
        raise InvalidInput(
            f"评分表中没有这些大纲要素：{', '.join(unknown)} / not elements of the outline: {', '.join(unknown)}"
        )
    missing = [code for code in points if code not in sheet]
    if missing:
        listed = "、".join(f"{c} {names[c][0]}" for c in missing)
        listed_en = ", ".join(f"{c} {names[c][1]}" for c in missing)
        raise InvalidInput(f"评分表缺少大纲要素：{listed} / the sheet lacks outline elements: {listed_en}")
    decimals = campaign.review.score_decimals
    out: dict[str, dict[str, float]] = {part: {} for part in PARTS}
    for code, full in points.items():
        line = sheet[code]
        zh, en = names[code]
        if not isinstance(line, Mapping) or set(line) != set(PARTS):
            raise InvalidInput(
                f"要素 {code} {zh} 须给出 online 与 on_site 两项得分 / element {code} {en} needs an online and an "
                "on_site score"
            )
        for part in PARTS:
            value = line[part]
            label = f"要素 {code} {zh} 的{'线上' if part == 'online' else '现场'}得分"
            label_en = f"{part} score of {code} {en}"
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise InvalidInput(f"{label}须为数字（不接受文字） / the {label_en} must be a JSON number, not text")
            if not 0 <= value <= full:
                raise InvalidInput(f"{label}须在 0 至 {full:g} 之间 / the {label_en} must be from 0 to {full:g}")
            scaled = value * 10**decimals
            if abs(scaled - round(scaled)) > 1e-6:
                raise InvalidInput(
                    f"{label}最多保留 {decimals} 位小数 / the {label_en} may carry at most {decimals} decimal(s)"
                )
            out[part][code] = round(float(value), decimals)
    return out


def clean_member_findings(findings: Any, campaign: Campaign) -> list[dict[str, str]]:
    """A member's findings, within the campaign's limits (so the team's combined findings fit its result)."""
    clean = clean_findings(findings or [])
    rules = campaign.review
    if len(clean) > rules.findings_per_member:
        raise InvalidInput(
            f"每名评定人员最多提出 {rules.findings_per_member} 项问题（本地设置），此处 {len(clean)} 项 / at most "
            f"{rules.findings_per_member} findings per reviewer (a local setting), {len(clean)} given"
        )
    for n, item in enumerate(clean, start=1):
        if len(item["description"]) > rules.finding_length:
            raise InvalidInput(
                f"第{n}项问题超过 {rules.finding_length} 字（本地设置）：“{item['description'][:30]}…” / finding {n} "
                f"is longer than {rules.finding_length} characters (a local setting)"
            )
    return clean


def record_reviewer_score(
    session: Session,
    *,
    application_id: int,
    actor: Actor,
    sheet: Any,
    findings: list[dict[str, Any]] | None,
    context: Context,
) -> dict[str, Any]:
    """A team member's scoring sheet (online and on-site, per outline element) and findings, once; refused
    to anyone not on the team. Returns the member's totals."""
    campaign, clock = context.campaign, context.clock
    parts = clean_sheet(sheet, campaign)
    clean = clean_member_findings(findings, campaign)
    totals = {part: round(sum(parts[part].values()), 2) for part in PARTS}
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
        if assignment.status == ReviewAssignmentStatus.done:
            raise InvalidInput("您已提交过该申请的评分 / you have already scored this application")
        app = _application(conn, application_id)
        if app.status != ApplicationStatus.verified:
            raise InvalidTransition("该申请已不在评审阶段 / the application is no longer under review")
        now = clock.now()
        conn.execute(
            sa.insert(REVIEWS),
            [
                {
                    "application_id": application_id,
                    "reviewer_id": actor.user_id,
                    "part": part,
                    "score": totals[part],
                    "findings": clean if part == "on_site" else [],
                    "sheet": parts[part],
                    "recorded_at": now,
                }
                for part in PARTS
            ],
        )
        conn.execute(
            sa.update(REVIEW_ASSIGNMENTS)
            .where(REVIEW_ASSIGNMENTS.c.id == assignment.id)
            .values(status=ReviewAssignmentStatus.done)
        )
        record_event(
            conn,
            enterprise_id=app.enterprise_id,
            kind="review_scored",
            actor=actor,
            at=now,
            payload={
                "application_id": application_id,
                "reviewer_id": actor.user_id,
                "online_score": totals["online"],
                "onsite_score": totals["on_site"],
                "sheet": parts,
                "findings": len(clean),
            },
        )
    return {"application_id": application_id, "online_score": totals["online"], "onsite_score": totals["on_site"]}


def team_result(conn: sa.Connection, *, application_id: int, campaign: Campaign) -> dict[str, Any]:
    """The team's score by the campaign's rule, from the members still on the team, with how it was combined."""
    members = [int(a.reviewer_id) for a in _open_team(conn, application_id)]
    reviews = conn.execute(
        sa.select(REVIEWS).where(REVIEWS.c.application_id == application_id, REVIEWS.c.reviewer_id.in_(members or [-1]))
    ).all()
    parts: dict[int, dict[str, float]] = {}
    sheets: dict[int, dict[str, Any]] = {}
    findings: list[dict[str, Any]] = []
    for r in reviews:
        parts.setdefault(int(r.reviewer_id), {})[r.part] = float(r.score)
        sheets.setdefault(int(r.reviewer_id), {})[r.part] = r.sheet
        findings += r.findings or []
    missing = [m for m in members if set(parts.get(m, {})) != set(PARTS)]
    rules = campaign.review
    weight = rules.online_weight
    combine = statistics.mean if rules.team_score == "mean" else statistics.median
    scored = [parts[m] for m in members if m not in missing]
    result: dict[str, Any] = {"members": members, "missing": missing, "findings": findings}
    if members and not missing:
        result["online_score"] = round(combine(p["online"] for p in scored), 2)
        result["onsite_score"] = round(combine(p["on_site"] for p in scored), 2)
        result["score"] = round(combine(weight * p["online"] + (1 - weight) * p["on_site"] for p in scored), 2)
        result["combination"] = {
            "rule": rules.team_score,  # 本地设置 (local setting)
            "online_weight": weight,  # 本地设置 (local setting)
            "team_size": rules.team_size,
            "members": {
                str(m): {
                    "online": parts[m]["online"],
                    "on_site": parts[m]["on_site"],
                    "weighted": round(weight * parts[m]["online"] + (1 - weight) * parts[m]["on_site"], 2),
                    "sheet": sheets[m],
                }
                for m in members
            },
            "online_score": result["online_score"],
            "onsite_score": result["onsite_score"],
            "score": result["score"],
        }
    return result


def record_team_result(
    session: Session,
    *,
    application_id: int,
    actor: Actor,
    context: Context,
    expected_version: int | None = None,
) -> FireResult:
    """Record the team's score on the firm (the team-only `record_review` transition) once every member has
    scored: the only way a review score reaches a firm."""
    campaign = context.campaign
    with read_unit(session) as conn:  # the fire below is its own transaction
        app = _application(conn, application_id)
        firm = load_firm(conn, enterprise_id=app.enterprise_id)
        _check_organiser(actor, firm)
        result = team_result(conn, application_id=application_id, campaign=campaign)
        names = {
            int(r.id): r.display_name
            for r in conn.execute(sa.select(USERS.c.id, USERS.c.display_name).where(USERS.c.id.in_(result["missing"])))
        }
    if not result["members"]:
        raise InvalidTransition("尚未组建评审组 / no review team has been formed")
    if result["missing"]:
        who = "、".join(names.get(m, str(m)) for m in result["missing"])
        raise InvalidTransition(
            f"还有 {len(result['missing'])} 名评定人员未评分：{who} / {len(result['missing'])} reviewer(s) have not "
            f"scored: {who}"
        )
    return fire(
        session,
        enterprise_id=firm.id,
        trigger="record_review",
        actor=actor,
        context=context,
        payload={
            "score": result["score"],
            "online_score": result["online_score"],
            "onsite_score": result["onsite_score"],
            "findings": result["findings"],
            "combination": result["combination"],
        },
        expected_version=expected_version,
        team=True,
    )


# ---- the draw, redone ----------------------------------------------------------------------------


def member_names(conn: sa.Connection, *, user_ids: Sequence[int]) -> dict[int, str]:
    """Display names of a review team's members, by user id."""
    rows = conn.execute(sa.select(USERS.c.id, USERS.c.display_name).where(USERS.c.id.in_(list(user_ids))))
    return {int(r.id): r.display_name for r in rows}


def assignment_status(conn: sa.Connection, *, application_id: int, reviewer_id: int | None) -> str | None:
    """The status of a reviewer's assignment to an application (None when not on its team)."""
    value = conn.execute(
        sa.select(REVIEW_ASSIGNMENTS.c.status).where(
            REVIEW_ASSIGNMENTS.c.application_id == application_id,
            REVIEW_ASSIGNMENTS.c.reviewer_id == (reviewer_id or -1),
        )
    ).scalar()
    return None if value is None else str(value)


def verify_draws(conn: sa.Connection, *, application_id: int) -> dict[str, Any]:
    """Every recorded draw of an application redone from its candidates and seed: whether it gives the
    recorded team, and whether the assignments it made are exactly that team."""
    _application(conn, application_id)
    rows = conn.execute(
        sa.select(REVIEW_DRAWS).where(REVIEW_DRAWS.c.application_id == application_id).order_by(REVIEW_DRAWS.c.id)
    ).all()
    assigned: dict[int, list[int]] = {}
    legacy: dict[int, Any] = {}  # assignments drawn before draws were recorded on their own: one per seed
    for a in conn.execute(
        sa.select(REVIEW_ASSIGNMENTS)
        .where(REVIEW_ASSIGNMENTS.c.application_id == application_id)
        .order_by(REVIEW_ASSIGNMENTS.c.id)
    ):
        if a.draw_id is not None:
            assigned.setdefault(int(a.draw_id), []).append(int(a.reviewer_id))
        else:
            found = legacy.setdefault(int(a.draw_seed), {"pool": a.draw_pool, "team": [], "a": a})
            found["team"].append(int(a.reviewer_id))
    draws = []
    for seed, old in legacy.items():
        candidates, recorded = [int(c) for c in old["pool"]], sorted(old["team"])
        try:
            redone = draw(candidates, size=len(recorded), seed=seed)
        except ValueError:
            redone = []
        draws.append(
            {
                "draw_id": None,
                "kind": "recorded_on_assignments",
                "seed": seed,
                "size": len(recorded),
                "candidates": candidates,
                "team": recorded,
                "redone": redone,
                "assigned": recorded,
                "reason": None,
                "replaces_reviewer_id": None,
                "drawn_at": old["a"].assigned_at.isoformat(),
                "drawn_by": old["a"].assigned_by,
                "matches": redone == recorded,
            }
        )
    for d in rows:
        candidates = [int(c) for c in d.candidates]
        recorded = sorted(int(t) for t in d.team)
        try:
            redone = draw(candidates, size=int(d.size), seed=int(d.seed))
        except ValueError:  # more drawn than candidates: the record is not a draw this code makes
            redone = []
        draws.append(
            {
                "draw_id": int(d.id),
                "kind": d.kind,
                "seed": int(d.seed),
                "size": int(d.size),
                "candidates": candidates,
                "team": recorded,
                "redone": redone,
                "assigned": sorted(assigned.get(int(d.id), [])),
                "reason": d.reason,
                "replaces_reviewer_id": d.replaces_reviewer_id,
                "drawn_at": d.drawn_at.isoformat(),
                "drawn_by": d.drawn_by,
                "matches": redone == recorded and sorted(assigned.get(int(d.id), [])) == recorded,
            }
        )
    return {
        "application_id": application_id,
        "draws": draws,
        "matches": bool(draws) and all(d["matches"] for d in draws),
    }


# ---- the pool ------------------------------------------------------------------------------------


def declare_conflict(
    session: Session,
    *,
    reviewer_id: int,
    enterprise_id: int,
    kind: str,
    actor: Actor,
    clock: Clock,
) -> dict[str, Any]:
    """Record that a reviewer consulted for a firm (`consultancy`) or works for it (`employment`): they are
    never drawn to review it, and a conflict declared after a draw takes them off every open team of that
    firm, each with a replacement drawn. The pool keeper records it, or the reviewer for themselves."""
    if kind not in ("consultancy", "employment"):
        raise InvalidInput("冲突类型须为 consultancy 或 employment / the conflict is a consultancy or an employment")
    if not (actor.role is Role.reviewer and actor.user_id == reviewer_id):
        _check_pool_keeper(actor)
    with write_unit(session) as conn:
        _reviewer(conn, reviewer_id)
        firm = load_firm(conn, enterprise_id=enterprise_id)
        if kind == "employment":
            conn.execute(
                sa.update(REVIEWER_PROFILES)
                .where(REVIEWER_PROFILES.c.user_id == reviewer_id)
                .values(employer_enterprise_id=enterprise_id)
            )
        elif not conn.execute(
            sa.select(REVIEWER_CONSULTANCIES.c.reviewer_id).where(
                REVIEWER_CONSULTANCIES.c.reviewer_id == reviewer_id,
                REVIEWER_CONSULTANCIES.c.enterprise_id == enterprise_id,
            )
        ).first():
            conn.execute(sa.insert(REVIEWER_CONSULTANCIES).values(reviewer_id=reviewer_id, enterprise_id=enterprise_id))
        reason = f"{'咨询' if kind == 'consultancy' else '受雇于'} {firm.name} / {kind} with the firm"
        removed = [
            _leave_and_replace(
                conn,
                assignment=work,
                status=ReviewAssignmentStatus.conflict,
                kind="reviewer_removed_conflict",
                reason=reason,
                actor=actor,
                clock=clock,
            )
            for work in _open_work(conn, reviewer_id, enterprise_id=enterprise_id)
        ]
    return {"reviewer_id": reviewer_id, "enterprise_id": enterprise_id, "kind": kind, "reassigned": removed}


def add_consultancy(session: Session, *, reviewer_id: int, enterprise_id: int, actor: Actor, clock: Clock) -> None:
    """Record that a reviewer consulted for a firm (so it is never drawn to review it, and leaves open teams)."""
    declare_conflict(
        session, reviewer_id=reviewer_id, enterprise_id=enterprise_id, kind="consultancy", actor=actor, clock=clock
    )


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


def _disqualify(conn: sa.Connection, *, reviewer_id: int, reason: str, actor: Actor, clock: Clock) -> dict[str, Any]:
    now = clock.now()
    reviewer = _reviewer(conn, reviewer_id)
    if reviewer.disqualified_at is not None:
        raise InvalidInput("该人员已被取消资格 / this reviewer is already disqualified")
    conn.execute(
        sa.update(REVIEWER_PROFILES)
        .where(REVIEWER_PROFILES.c.user_id == reviewer_id)
        .values(active=False, disqualified_at=now, disqualified_reason=reason)
    )
    # Their access ends at once: the account is closed and every token (API and page session) revoked.
    conn.execute(sa.update(USERS).where(USERS.c.id == reviewer_id).values(active=False))
    conn.execute(
        sa.update(API_TOKENS)
        .where(API_TOKENS.c.user_id == reviewer_id, API_TOKENS.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    reassigned = [
        _leave_and_replace(
            conn,
            assignment=work,
            status=ReviewAssignmentStatus.replaced,
            kind="reviewer_disqualified",
            reason=f"disqualified: {reason}",
            actor=actor,
            clock=clock,
        )
        for work in _open_work(conn, reviewer_id)
    ]
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
                "context": {"reviewer_name": reviewer.display_name, "reason": reason},
                "status": OutboxStatus.pending,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
        ],
        key="dedupe_key",
    )
    return {"reviewer_id": reviewer_id, "reassigned": reassigned}


def disqualify(session: Session, *, reviewer_id: int, reason: str, actor: Actor, context: Context) -> dict[str, Any]:
    """Disqualify a reviewer found cheating (弄虚作假): out of the pool for good, every team of theirs still
    under review gets a newly drawn member, and their access to every application ends at once."""
    clock = context.clock
    _check_pool_keeper(actor)
    why = _reason(reason, ("取消资格的理由", "a reason"))
    with write_unit(session) as conn:
        return _disqualify(conn, reviewer_id=reviewer_id, reason=why, actor=actor, clock=clock)


# ---- misconduct reports (各地…加强对评审专家的监督管理) ----------------------------------------------------


def report_misconduct(
    session: Session,
    *,
    reviewer_id: int,
    enterprise_id: int,
    description: str,
    actor: Actor,
    clock: Clock,
    application_id: int | None = None,
) -> dict[str, Any]:
    """A district bureau (or the center, the city) reports a suspected reviewer misconduct at a firm of its
    scope to the support center."""
    if actor.role not in (Role.district_bureau, Role.support_center, Role.city_bureau):
        raise NotAllowed("评定人员违规问题由各地应急管理局报告 / reviewer misconduct is reported by the bureaus")
    what = _reason(description, ("违规情况", "what happened"))
    with write_unit(session) as conn:
        firm = load_firm(conn, enterprise_id=enterprise_id)
        if not in_scope(actor, firm):
            raise OutOfScope(f"找不到该企业 / no such enterprise: {enterprise_id}")
        _reviewer(conn, reviewer_id)
        if application_id is not None and _application(conn, application_id).enterprise_id != firm.id:
            raise InvalidInput(
                f"申请 {application_id} 不是{firm.name}的申请 / application {application_id} is not this firm's"
            )
        report_id = _new_id(
            conn.execute(
                sa.insert(REVIEWER_REPORTS).values(
                    reviewer_id=reviewer_id,
                    enterprise_id=firm.id,
                    application_id=application_id,
                    district_code=firm.district_code,
                    description=what,
                    status=ReviewerReportStatus.open,
                    reported_by=actor.name,
                    reported_at=clock.now(),
                )
            )
        )
    return {"id": report_id, "status": ReviewerReportStatus.open}


def list_reports(conn: sa.Connection, *, actor: Actor, status: str | None = None) -> list[dict[str, Any]]:
    """Misconduct reports: all of them for the center and the city, a district's own for its bureau."""
    if actor.role not in (Role.district_bureau, Role.support_center, Role.city_bureau):
        raise NotAllowed("无权查看评定人员违规报告 / this role may not see misconduct reports")
    query = (
        sa.select(REVIEWER_REPORTS, USERS.c.display_name.label("reviewer_name"), ENTERPRISES.c.name.label("firm_name"))
        .join(USERS, USERS.c.id == REVIEWER_REPORTS.c.reviewer_id)
        .join(ENTERPRISES, ENTERPRISES.c.id == REVIEWER_REPORTS.c.enterprise_id)
        .order_by(REVIEWER_REPORTS.c.id)
    )
    query = query.where(scope(actor, "reviewer_report"))
    if status:
        query = query.where(REVIEWER_REPORTS.c.status == status)
    return [
        {
            "id": r.id,
            "reviewer_id": r.reviewer_id,
            "reviewer_name": r.reviewer_name,
            "enterprise_id": r.enterprise_id,
            "firm_name": r.firm_name,
            "application_id": r.application_id,
            "district_code": r.district_code,
            "description": r.description,
            "status": r.status,
            "reported_by": r.reported_by,
            "reported_at": r.reported_at.isoformat(),
            "decided_by": r.decided_by,
            "decided_at": r.decided_at.isoformat() if r.decided_at else None,
            "decision_note": r.decision_note,
        }
        for r in conn.execute(query)
    ]


def decide_report(
    session: Session, *, report_id: int, decision: str, note: str, actor: Actor, clock: Clock
) -> dict[str, Any]:
    """The support center reviews a report: `dismiss` it with a note, or `disqualify` the reviewer (out of the
    pool, open teams redrawn, access ended)."""
    _check_pool_keeper(actor)
    if decision not in ("dismiss", "disqualify"):
        raise InvalidInput("处理结果须为 dismiss 或 disqualify / the decision is dismiss or disqualify")
    why = _reason(note, ("处理意见", "a note"))
    with write_unit(session) as conn:
        report = conn.execute(sa.select(REVIEWER_REPORTS).where(REVIEWER_REPORTS.c.id == report_id)).first()
        if report is None:
            raise NotFound(f"找不到该报告 / no such report: {report_id}")
        if report.status != ReviewerReportStatus.open:
            raise InvalidInput(f"报告 {report_id} 已处理（{report.status}） / report {report_id} is already decided")
        outcome: dict[str, Any] = {"id": report_id}
        if decision == "disqualify":
            outcome |= _disqualify(
                conn, reviewer_id=int(report.reviewer_id), reason=f"{why}（报告 {report_id}）", actor=actor, clock=clock
            )
        status = ReviewerReportStatus.dismissed if decision == "dismiss" else ReviewerReportStatus.disqualified
        conn.execute(
            sa.update(REVIEWER_REPORTS)
            .where(REVIEWER_REPORTS.c.id == report_id)
            .values(status=status, decided_by=actor.name, decided_at=clock.now(), decision_note=why)
        )
    return outcome | {"status": status}
