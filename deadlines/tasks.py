"""Officials' task lists: everything waiting on an office (an application to verify, audit, review or certify,
a notice that cannot be delivered, a reviewer's scoring sheet), each with the date it is due by the campaign's
time limits — searched, filtered, sorted, counted and paged in SQL, so a list of a million firms costs one page.

The page `/work`, the API's `GET /api/work` and the tests read the same function, `task_list`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from deadlines.sql import Expr, date_value, local_date_plus
from states import InvalidInput, Role
from workflow.actors import Actor, auditable_by, firm_scope
from workflow.campaign import Campaign
from workflow.clock import Clock, today
from workflow.models import ApplicationStatus, ReviewAssignmentStatus, unreached_clause
from workflow.tables import APPLICATIONS, ENTERPRISES, EVENTS, REVIEW_ASSIGNMENTS, REVIEWS

E, A = ENTERPRISES, APPLICATIONS

# verification 待核实 · audit 待线上审核 · review 待组织评审、录入结果 · certification 待认定 ·
# undeliverable 无法送达的动员通知 · assignment 评定人员的评分任务
KINDS = ("verification", "audit", "review", "certification", "undeliverable", "assignment")
KINDS_OF: dict[Role, tuple[str, ...]] = {
    Role.district_bureau: ("verification", "audit", "review", "undeliverable"),
    Role.support_center: ("audit", "review"),
    Role.city_bureau: ("certification", "undeliverable"),
    Role.reviewer: ("assignment",),
}
# The triggers an office fires on a whole selection of one kind (the bulk service decides firm by firm).
BATCH_TRIGGERS: dict[str, tuple[str, ...]] = {
    "verification": ("verify", "return_application"),
    "audit": ("pass_audit", "fail_audit"),
    "review": (),  # the team's result is recorded one application at a time, after every member scored
    "certification": ("certify", "fail_review"),
    "undeliverable": ("notify",),
    "assignment": (),
}
SORTS = ("waiting", "recent", "due", "due_late")  # longest waiting first (the default), newest, earliest due, latest
PAGE_SIZES = (20, 50, 100, 200)
MAX_WORDS = 5
MAX_QUERY = 100


@dataclass(frozen=True)
class TimeLimit:
    """How a kind of task gets its due date: `days` after it arrived (a service level of the campaign file),
    or a fixed date of the plan; `words` is the plan's phrase when the plan gives the limit."""

    kind: str
    days: int | None
    fixed: dt.date | None
    source: str  # "local" (本地设置) or "plan"
    words: str
    rule: str | None = None  # the campaign file's rule


@dataclass(frozen=True)
class TaskFilter:
    kind: str | None = None  # one tab; None: every kind the office has
    q: str | None = None  # words, each must be in the firm's name or start its credit code
    district: str | None = None
    sector: str | None = None
    key_field: bool | None = None
    overdue: bool = False
    sort: str = "waiting"
    page: int = 1
    page_size: int = 50

    def words(self) -> list[str]:
        return (self.q or "").split()


EVALUATION_WORDS = "考评验收阶段(2022年6月至2023年12月)"
NOTIFY_WORDS = "动员部署阶段(2022年2月底前)…要对照工业企业名录清单对企业主要负责人逐个通知"


def time_limits(campaign: Campaign) -> dict[str, TimeLimit]:
    """Each kind's time limit. The plan sets no days for the officials' steps: those are the campaign file's
    service levels, local settings (本地设置). It does end the evaluation phase (考评验收阶段(2022年6月至
    2023年12月)): an application still open is due then at the latest. The mobilization notice is due when
    mobilization ends (动员部署阶段(2022年2月底前)), the plan's own date."""
    rules = campaign.deadlines.rules
    sla = {
        "verification": ("sla_verification", rules.sla_verification.days, "核实"),
        "audit": ("sla_online_audit", rules.sla_online_audit.days, "线上审核"),
        "review": ("sla_review", rules.sla_review.days, "组织评审、录入结果"),
        "certification": ("sla_certification", rules.sla_certification.days, "认定"),
        "assignment": ("sla_review", rules.sla_review.days, "评审评分"),
    }
    limits = {
        kind: TimeLimit(kind, days, None, "local", f"{step}：{days} 天", rule)
        for kind, (rule, days, step) in sla.items()
    }
    limits["undeliverable"] = TimeLimit(
        "undeliverable", None, campaign.phases.mobilization.end, "plan", NOTIFY_WORDS, "mobilization"
    )
    return limits


def check(filters: TaskFilter, *, kinds: tuple[str, ...], campaign: Campaign) -> None:
    if filters.kind is not None and filters.kind not in kinds:
        raise InvalidInput(
            f"未知任务类别 {filters.kind} / unknown kind of task: {filters.kind}; one of {', '.join(kinds)}"
        )
    if filters.sort not in SORTS:
        raise InvalidInput(f"未知排序 {filters.sort} / unknown sort: {filters.sort}; one of {', '.join(SORTS)}")
    if filters.page < 1 or filters.page_size not in PAGE_SIZES:
        sizes = "、".join(str(s) for s in PAGE_SIZES)
        raise InvalidInput(f"页码从1开始，每页 {sizes} 条 / page from 1, page_size one of {sizes.replace('、', ', ')}")
    if filters.district and campaign.district(filters.district) is None:
        raise InvalidInput(f"未知辖区 {filters.district} / unknown district: {filters.district}")
    if filters.sector and filters.sector not in {s.code for s in campaign.sectors}:
        raise InvalidInput(f"未知行业 {filters.sector} / unknown sector: {filters.sector}")
    if len(filters.q or "") > MAX_QUERY or len(filters.words()) > MAX_WORDS:
        raise InvalidInput(
            f"搜索词最多{MAX_QUERY}字、{MAX_WORDS}个词 / the search is limited to {MAX_QUERY} characters and "
            f"{MAX_WORDS} words"
        )


def _like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _firm_filters(filters: TaskFilter) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if filters.district:
        where.append(E.c.district_code == filters.district)
    if filters.sector:
        where.append(E.c.sector == filters.sector)
    if filters.key_field is not None:
        where.append(E.c.key_field.is_(filters.key_field))
    for word in filters.words():  # every word must match: in the name, or the start of the credit code
        where.append(
            sa.or_(
                E.c.name.like(f"%{_like(word)}%", escape="\\"),
                E.c.uscc.like(f"{_like(word.upper())}%", escape="\\"),
            )
        )
    return where


def _branch(
    kind: str, actor: Actor, limit: TimeLimit, dialect: str, clock: Clock, end: dt.date, *, slim: bool
) -> sa.Select[Any]:
    """One kind's tasks as rows of the same shape: kind, application, firm, since (an instant), due (a date);
    `slim`: kind and due only (for counting). An open application's status is its firm's state (the engine
    moves both in one transition); saying so lets a district's list start from its firms in that state
    (district, state index) instead of every open application of the city."""
    application_id: Any = A.c.id
    source: Any = A.join(E, E.c.id == A.c.enterprise_id)
    match kind:
        case "verification":
            since, where = A.c.submitted_at, [A.c.status == ApplicationStatus.applied, E.c.state == "applied"]
            where.append(firm_scope(actor))
        case "audit":
            since = A.c.verified_at
            where = [A.c.status == ApplicationStatus.verified, E.c.state == "verified", A.c.audit_passed_at.is_(None)]
            where.append(auditable_by(actor))
        case "review":
            since = A.c.audit_passed_at
            where = [
                A.c.status == ApplicationStatus.verified,
                E.c.state == "verified",
                A.c.audit_passed_at.is_not(None),
            ]
            where.append(auditable_by(actor))
        case "certification":
            since, where = A.c.reviewed_at, [A.c.status == ApplicationStatus.reviewed, E.c.state == "reviewed"]
            where.append(firm_scope(actor))
        case "assignment":
            R = REVIEW_ASSIGNMENTS
            source = R.join(A, A.c.id == R.c.application_id).join(E, E.c.id == A.c.enterprise_id)
            scored = sa.select(REVIEWS.c.id).where(
                REVIEWS.c.application_id == R.c.application_id, REVIEWS.c.reviewer_id == R.c.reviewer_id
            )
            since = R.c.assigned_at
            where = [
                R.c.reviewer_id == (actor.user_id or -1),
                R.c.status == ReviewAssignmentStatus.active,
                A.c.status == ApplicationStatus.verified,
                ~scored.exists(),
            ]
        case "undeliverable":
            application_id, source, since = sa.null(), E, E.c.created_at
            where = [unreached_clause(E), firm_scope(actor)]
    if limit.fixed is not None:
        due: Expr = date_value(dialect, limit.fixed)
    else:
        assert limit.days is not None
        after = local_date_plus(dialect, since, limit.days, clock.tz, today(clock))
        last = date_value(dialect, end)  # 考评验收阶段 ends: due then at the latest
        due = sa.case((after > last, last), else_=after)
    label = sa.literal(kind, sa.String).label("kind")
    if slim:
        columns: list[Any] = [label, due.label("due")]
        return sa.select(*columns).select_from(source).where(*where)
    return (
        sa.select(
            label,
            sa.cast(application_id, sa.Integer).label("application_id"),
            E.c.id.label("enterprise_id"),
            E.c.uscc,
            E.c.name,
            E.c.district_code,
            E.c.sector,
            E.c.key_field,
            E.c.version,
            since.label("since"),
            due.label("due"),
        )
        .select_from(source)
        .where(*where)
    )


def _tasks(
    conn: sa.Connection,
    actor: Actor,
    campaign: Campaign,
    clock: Clock,
    filters: TaskFilter,
    kinds: tuple[str, ...],
    *,
    slim: bool = False,
) -> sa.Subquery:
    """The tasks of `kinds` under the firm filters: one SELECT per kind, joined by UNION ALL."""
    dialect = conn.dialect.name
    limits = time_limits(campaign)
    extra = _firm_filters(filters)
    end = campaign.phases.evaluation.end
    branches = [_branch(kind, actor, limits[kind], dialect, clock, end, slim=slim).where(*extra) for kind in kinds]
    union = branches[0] if len(branches) == 1 else sa.union_all(*branches)
    return union.subquery("tasks")


def _day(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def task_list(
    conn: sa.Connection, *, actor: Actor, campaign: Campaign, clock: Clock, filters: TaskFilter
) -> dict[str, Any]:
    """One page of the office's tasks under `filters`, with the count (and overdue count) of every kind.

    Returns: kinds (the office's tabs), counts {kind: {total, overdue}}, total (of the tab shown), page,
    page_size, pages, items (each with its due date, days waiting and days overdue), limits per kind."""
    kinds = KINDS_OF.get(actor.role, ())
    check(filters, kinds=kinds, campaign=campaign)
    day = today(clock)
    dialect = conn.dialect.name
    counts = {kind: {"total": 0, "overdue": 0} for kind in kinds}
    items: list[dict[str, Any]] = []
    if not kinds:
        return _page(kinds, counts, 0, filters, items, campaign)
    counted = _tasks(conn, actor, campaign, clock, filters, kinds, slim=True)
    late = counted.c.due < date_value(dialect, day)
    rows = conn.execute(
        sa.select(counted.c.kind, sa.func.count(), sa.func.sum(sa.case((late, 1), else_=0)))
        .where(late if filters.overdue else sa.true())
        .group_by(counted.c.kind)
    ).all()
    for kind, total, overdue in rows:
        counts[kind] = {"total": int(total), "overdue": int(overdue or 0)}
    shown = [filters.kind] if filters.kind else list(kinds)
    total = sum(counts[k]["total"] for k in shown)
    tasks = _tasks(conn, actor, campaign, clock, filters, tuple(shown))
    items = _rows(conn, tasks, filters, clock, offset=(filters.page - 1) * filters.page_size, limit=filters.page_size)
    _details(conn, items, campaign, clock)
    return _page(kinds, counts, total, filters, items, campaign)


def _page(
    kinds: tuple[str, ...],
    counts: dict[str, dict[str, int]],
    total: int,
    filters: TaskFilter,
    items: list[dict[str, Any]],
    campaign: Campaign,
) -> dict[str, Any]:
    limits = time_limits(campaign)
    return {
        "kinds": list(kinds),
        "counts": counts,
        "total": total,
        "page": filters.page,
        "page_size": filters.page_size,
        "pages": max(1, -(-total // filters.page_size)),
        "items": items,
        "limits": {
            k: {"days": limits[k].days, "date": limits[k].fixed, "source": limits[k].source, "words": limits[k].words}
            for k in kinds
        },
        "evaluation_end": campaign.phases.evaluation.end,
    }


def _rows(
    conn: sa.Connection, tasks: sa.Subquery, filters: TaskFilter, clock: Clock, *, offset: int, limit: int
) -> list[dict[str, Any]]:
    day = today(clock)
    dialect = conn.dialect.name
    t = tasks.c
    orders: dict[str, list[Any]] = {
        "waiting": [t.since, t.kind, t.enterprise_id],
        "recent": [t.since.desc(), t.kind, t.enterprise_id.desc()],
        "due": [t.due, t.since, t.kind, t.enterprise_id],
        "due_late": [t.due.desc(), t.since.desc(), t.kind, t.enterprise_id.desc()],
    }
    order = orders[filters.sort]
    where: list[Any] = []
    if filters.kind:
        where.append(t.kind == filters.kind)
    if filters.overdue:
        where.append(t.due < date_value(dialect, day))
    rows = conn.execute(sa.select(tasks).where(*where).order_by(*order).limit(limit).offset(offset)).all()
    items = []
    for n, r in enumerate(rows):
        due = _day(r.due)
        since = r.since
        items.append(
            {
                **{k: v for k, v in r._asdict().items() if k not in ("since", "due")},
                "key_field": bool(r.key_field),
                "position": offset + n,
                "since": since,
                "due": due,
                "days_waiting": (day - since.astimezone(clock.tz).date()).days,
                "days_overdue": max(0, (day - due).days),
                "due_today": due == day,
            }
        )
    return items


def _details(conn: sa.Connection, items: list[dict[str, Any]], campaign: Campaign, clock: Clock) -> None:
    """What a row shows beyond the list itself, read for the page's rows only: where a review team stands,
    who to call about an undeliverable notice, and whether the due date is the plan's or a local setting."""
    limits = time_limits(campaign)
    reviews = [i["application_id"] for i in items if i["kind"] == "review"]
    teams: dict[int, tuple[int, int]] = {}
    if reviews:
        R = REVIEW_ASSIGNMENTS
        active: dict[int, int] = dict(
            conn.execute(
                sa.select(R.c.application_id, sa.func.count())
                .where(R.c.application_id.in_(reviews), R.c.status == ReviewAssignmentStatus.active)
                .group_by(R.c.application_id)
            ).all()
        )
        scored: dict[int, int] = dict(
            conn.execute(
                sa.select(REVIEWS.c.application_id, sa.func.count(sa.distinct(REVIEWS.c.reviewer_id)))
                .where(REVIEWS.c.application_id.in_(reviews), REVIEWS.c.reviewer_id.is_not(None))
                .group_by(REVIEWS.c.application_id)
            ).all()
        )
        teams = {a: (int(active.get(a, 0)), int(scored.get(a, 0))) for a in reviews}
    unreached = [i["enterprise_id"] for i in items if i["kind"] == "undeliverable"]
    contacts: dict[int, Any] = {}
    if unreached:
        tried = (
            sa.select(sa.func.max(EVENTS.c.at))
            .where(EVENTS.c.enterprise_id == E.c.id, EVENTS.c.trigger == "notify")
            .scalar_subquery()
        )
        contacts = {
            r.id: r
            for r in conn.execute(
                sa.select(E.c.id, E.c.principal, E.c.phone, tried.label("tried_at")).where(E.c.id.in_(unreached))
            )
        }
    for item in items:
        limit = limits[item["kind"]]
        item["due_source"] = limit.source
        if limit.days is not None:
            own = item["since"].astimezone(clock.tz).date() + dt.timedelta(days=limit.days)
            if own > item["due"]:  # cut to the end of the evaluation phase: the plan's date
                item["due_source"] = "plan"
        item["since"] = item["since"].isoformat()
        item["due"] = item["due"].isoformat()
        if item["kind"] == "review":
            item["team_size"], item["scored"] = teams.get(item["application_id"], (0, 0))
        if item["kind"] == "undeliverable" and item["enterprise_id"] in contacts:
            c = contacts[item["enterprise_id"]]
            item["principal"], item["phone"] = c.principal, c.phone
            item["tried_at"] = c.tried_at.isoformat() if c.tried_at else None


def task_after(
    conn: sa.Connection,
    *,
    actor: Actor,
    campaign: Campaign,
    clock: Clock,
    filters: TaskFilter,
    position: int,
    enterprise_id: int,
) -> dict[str, Any] | None:
    """The task that follows firm `enterprise_id`, seen at `position` of the list under `filters`: the next
    row when the firm is still there, else the row that has moved up into its place (the firm left the list
    because it was acted on). None at the end of the list."""
    kinds = KINDS_OF.get(actor.role, ())
    check(filters, kinds=kinds, campaign=campaign)
    if not kinds or position < 0:
        return None
    tasks = _tasks(conn, actor, campaign, clock, filters, (filters.kind,) if filters.kind else kinds)
    rows = _rows(conn, tasks, filters, clock, offset=position, limit=2)
    rows = [r for r in rows if r["enterprise_id"] != enterprise_id]
    if not rows:
        return None
    _details(conn, rows[:1], campaign, clock)
    return rows[0]


def firm_names(conn: sa.Connection, *, actor: Actor, enterprise_ids: list[int]) -> dict[int, tuple[str, str]]:
    """Name and credit code of the listed firms the actor may see (for a batch's result table)."""
    if not enterprise_ids:
        return {}
    rows = conn.execute(
        sa.select(E.c.id, E.c.name, E.c.uscc).where(E.c.id.in_(enterprise_ids), firm_scope(actor))
    ).all()
    return {r.id: (r.name, r.uscc) for r in rows}
