"""The campaign's deadline rules as set-based SQL: who is due, by when, and what each day brings —
a reminder to the firm before the deadline, then the escalation ladder (firm → district → city) after it,
and the resolution of escalations whose subject has moved on. Dates and numbers come from the campaign.

Every row written carries a dedupe key (rule, subject, step), and every statement is
INSERT … SELECT … ON CONFLICT DO NOTHING, so a rule applied twice on one day writes nothing the second time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from deadlines.sql import (
    Expr,
    concat,
    date_value,
    days_between,
    insert_counting,
    insert_statement,
    int_value,
    json_object,
    local_date_plus,
    run_insert,
    run_insert_counts,
    start_of_local_day,
    text_value,
)
from workflow.campaign import Campaign, DeadlineRule
from workflow.models import ApplicationStatus, EscalationStatus, HazardStatus, UTCDateTime
from workflow.tables import APPLICATIONS, DISTRICTS, ENTERPRISES, ESCALATIONS, HAZARDS, OUTBOX, SWEEP_CHANGES

E, H, A, X, C = ENTERPRISES, HAZARDS, APPLICATIONS, ESCALATIONS, SWEEP_CHANGES
UNRESOLVED = (EscalationStatus.open, EscalationStatus.acknowledged)
STEPS = ("firm", "district", "center", "city")
ESCALATION_COLUMNS = [
    "dedupe_key",
    "rule",
    "subject_kind",
    "subject_id",
    "enterprise_id",
    "district_code",
    "step",
    "deadline",
    "days_overdue",
    "status",
    "detail",
    "created_at",
]
OUTBOX_COLUMNS = [
    "dedupe_key",
    "kind",
    "audience",
    "enterprise_id",
    "district_code",
    "to_address",
    "lang",
    "context",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
]


# ---- deadlines: a fixed date, a date column, or a number of days after an instant ----------------
#
# Statements are built once per sweep with bind parameters (the day, its band of deadlines, the step),
# so a day's sweep only executes them: SQLAlchemy compiles each shape once.

AS_OF = sa.bindparam("as_of", type_=sa.Date)
NOW = sa.bindparam("now", type_=UTCDateTime())
TOP = sa.bindparam("top", type_=sa.String)  # the highest step the band has reached
BEFORE = sa.bindparam("before", type_=sa.String)  # a reminder's days before, in its dedupe key
_EARLIEST_DAY = dt.date.min  # every stored date, however far before the campaign
_EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)


def as_of_value(dialect: str) -> Expr:
    return AS_OF if dialect == "sqlite" else sa.cast(AS_OF, sa.Date)


class Deadline(Protocol):
    def value(self, dialect: str) -> Expr: ...

    def band(self) -> Expr | None:
        """SQL for `lo < deadline <= hi` over bind parameters, or None for one fixed date (decided in Python)."""
        ...

    def params(self, after: dt.date | None, until: dt.date) -> dict[str, Any] | None:
        """Parameters of the band after < deadline <= until; None when no deadline can fall in it."""
        ...


@dataclass(frozen=True)
class FixedDeadline:
    day: dt.date

    def value(self, dialect: str) -> Expr:
        return date_value(dialect, self.day)

    def band(self) -> Expr | None:
        return None

    def params(self, after: dt.date | None, until: dt.date) -> dict[str, Any] | None:
        inside = (after is None or self.day > after) and self.day <= until
        return {} if inside else None


@dataclass(frozen=True)
class DateColumn:
    column: sa.Column[Any]

    def value(self, dialect: str) -> Expr:
        return self.column

    def band(self) -> Expr | None:
        # after < deadline <= until, written as after + 1 day <= deadline so that the first band starts at
        # the calendar's first day: a stored deadline far outside the campaign (0001-01-01) is still swept
        return sa.and_(
            self.column >= sa.bindparam("lo", type_=sa.Date), self.column <= sa.bindparam("hi", type_=sa.Date)
        )

    def params(self, after: dt.date | None, until: dt.date) -> dict[str, Any] | None:
        return {"lo": _EARLIEST_DAY if after is None else after + dt.timedelta(days=1), "hi": until}


@dataclass(frozen=True)
class DaysAfter:
    """`days` after the local date of a stored instant (an official's service level)."""

    instant: sa.Column[Any]
    days: int
    tz: ZoneInfo
    near: dt.date  # for SQLite's fixed offset (see local_date_plus)

    def value(self, dialect: str) -> Expr:
        return local_date_plus(dialect, self.instant, self.days, self.tz, self.near)

    def band(self) -> Expr | None:
        return sa.and_(
            self.instant.is_not(None),  # spelled out: SQLite takes the partial (instant set) index only then
            self.instant >= sa.bindparam("lo", type_=UTCDateTime()),
            self.instant < sa.bindparam("hi", type_=UTCDateTime()),
        )

    def params(self, after: dt.date | None, until: dt.date) -> dict[str, Any] | None:
        # local_date(instant) + days <= day  ⟺  instant < start of local day (day - days + 1)
        def start(day: dt.date) -> dt.datetime:
            return start_of_local_day(day - dt.timedelta(days=self.days - 1), self.tz)

        return {"lo": _EARLIEST if after is None else start(after), "hi": start(until)}


# ---- rules ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One deadline rule: the subjects it holds (`due`, whatever the date) and each one's deadline."""

    name: str
    subject_kind: str  # enterprise / hazard / application
    source: sa.FromClause  # joins ENTERPRISES
    subject_id: sa.ColumnElement[int]
    due: Expr
    deadline: Deadline
    config: DeadlineRule
    reminder_kind: str = "deadline_reminder"
    holder: Expr | None = None  # the office holding the subject (for a `holder` ladder step)


def _flag(column: sa.Column[Any], value: bool) -> Expr:
    return column == (sa.true() if value else sa.false())


def build_rules(campaign: Campaign, tz: ZoneInfo) -> list[Rule]:
    """The campaign's rules in the order a sweep applies them."""
    cfg = campaign.deadlines.rules
    phases = campaign.phases
    firm_open = E.c.state != "closed"
    hazards = H.join(E, E.c.id == H.c.enterprise_id)
    applications = A.join(E, E.c.id == A.c.enterprise_id)
    rules = [
        Rule(
            "mobilization",
            "enterprise",
            E,
            E.c.id,
            sa.and_(E.c.state == "mobilized", E.c.notified_at.is_(None)),
            FixedDeadline(phases.mobilization.end),
            cfg.mobilization,
        )
    ]
    # The only start duties: 2022年底前，全市重点监管领域企业需全部开展创建工作；2023年底前，全市非重点监管
    # 领域的规模以上企业需全部开展创建工作. Each group is reminded and escalated against its own date only.
    for milestone in campaign.milestones:
        group = (
            _flag(E.c.key_field, True)
            if milestone.applies_to == "key_field"
            else sa.and_(_flag(E.c.key_field, False), _flag(E.c.above_size, True))
        )
        rules.append(
            Rule(
                milestone.id,
                "enterprise",
                E,
                E.c.id,
                sa.and_(E.c.state == "mobilized", group),
                FixedDeadline(milestone.date),
                cfg.milestones,
            )
        )
    rules += [
        # 创建提升阶段(2022年3月至2023年10月) ends: firms that started and have not applied are reminded
        # that they may apply. Applying is voluntary (自愿申请、诚信上报), so the rule has no ladder: a nudge,
        # never an overdue notice.
        Rule(
            "creation_end",
            "enterprise",
            E,
            E.c.id,
            E.c.state.in_(("self_assessing", "rectifying")),
            FixedDeadline(phases.creation.end),
            cfg.creation_end,
            reminder_kind="creation_reminder",
        ),
        # 考评验收阶段(2022年6月至2023年12月) ends: every application still open is the duty of the office
        # holding it — 属地应急管理部门核实; 重点监管领域…由市应急保障中心负责进行线上审核…组织评审组; 非重点监管
        # 领域企业由辖市(区)应急管理部门…组织评审组; 市应急管理局…确定达标企业.
        Rule(
            "evaluation_end",
            "application",
            applications,
            A.c.id,
            A.c.status.in_((ApplicationStatus.applied, ApplicationStatus.verified, ApplicationStatus.reviewed)),
            FixedDeadline(phases.evaluation.end),
            cfg.evaluation_end,
            holder=sa.case(
                (A.c.status == ApplicationStatus.applied, "district"),
                (A.c.status == ApplicationStatus.reviewed, "city"),
                (_flag(E.c.key_field, True), "center"),
                else_="district",
            ),
        ),
        Rule(
            "hazard_deadline",
            "hazard",
            hazards,
            H.c.id,
            sa.and_(H.c.status == HazardStatus.open, H.c.deadline.is_not(None), firm_open),
            DateColumn(H.c.deadline),
            cfg.hazard_deadline,
        ),
        Rule(
            "sla_verification",
            "application",
            applications,
            A.c.id,
            A.c.status == ApplicationStatus.applied,
            DaysAfter(A.c.submitted_at, cfg.sla_verification.days, tz, phases.mobilization.start),
            cfg.sla_verification,
        ),
        Rule(
            "sla_online_audit",
            "application",
            applications,
            A.c.id,
            sa.and_(A.c.status == ApplicationStatus.verified, A.c.audit_passed_at.is_(None)),
            DaysAfter(A.c.verified_at, cfg.sla_online_audit.days, tz, phases.mobilization.start),
            cfg.sla_online_audit,
        ),
        Rule(
            "sla_review",
            "application",
            applications,
            A.c.id,
            sa.and_(A.c.status == ApplicationStatus.verified, A.c.audit_passed_at.is_not(None)),
            DaysAfter(A.c.audit_passed_at, cfg.sla_review.days, tz, phases.mobilization.start),
            cfg.sla_review,
        ),
        Rule(
            "sla_certification",
            "application",
            applications,
            A.c.id,
            A.c.status == ApplicationStatus.reviewed,
            DaysAfter(A.c.reviewed_at, cfg.sla_certification.days, tz, phases.mobilization.start),
            cfg.sla_certification,
        ),
    ]
    return [r for r in rules if r.config.enabled]


# ---- applying one rule ----------------------------------------------------------------------------


def touched(kind: str) -> Expr:
    """The subjects of `kind` that changed since the last sweep (claimed for today): their own change rows,
    and for hazards and applications also those of a changed firm."""
    firms = sa.select(C.c.subject_id).where(C.c.claimed_for == AS_OF, C.c.subject_kind == "enterprise")
    if kind == "enterprise":
        return E.c.id.in_(firms)
    table = H if kind == "hazard" else A
    own = sa.select(C.c.subject_id).where(C.c.claimed_for == AS_OF, C.c.subject_kind == kind)
    return sa.or_(table.c.id.in_(own), table.c.enterprise_id.in_(firms))


class _Statements:
    """One rule's statements over all its subjects (`restrict` None) or over some of them."""

    def __init__(self, rule: Rule, dialect: str, restrict: Expr | None) -> None:
        steps = [step for step, _ in rule.config.steps()]
        holder = rule.holder

        def office(step: Expr) -> Expr:
            """A ladder step as written: the `holder` step becomes the office holding the subject."""
            return step if holder is None else sa.case((step == "holder", holder), else_=step)

        deadline = rule.deadline.value(dialect)
        band = rule.deadline.band()
        banded = [rule.due, *([] if band is None else [band]), *([] if restrict is None else [restrict])]
        now = NOW

        # Resolution: every unresolved escalation of the rule whose subject the rule no longer holds, asked
        # row by row with one correlated probe of the subject (a primary-key lookup). No IN over a
        # DISTINCT of escalations: without fresh statistics PostgreSQL ran that as a nested loop that
        # re-read the table per row (quadratic; minutes at 15,000 escalations).
        # A rule without a ladder (a reminder only) holds none: any escalation it has is resolved. A holder
        # step is held while the same office holds the subject; when it moves on, the next office gets its own.
        held = [rule.subject_id == X.c.subject_id, rule.due, *([] if holder is None else [holder == X.c.step])]
        still_held = sa.exists(sa.select(1).select_from(rule.source).where(*held)).correlate(X) if steps else sa.false()
        resolving = [X.c.rule == rule.name, X.c.status.in_(UNRESOLVED), X.c.subject_kind == rule.subject_kind]
        if restrict is not None:
            resolving.append(X.c.subject_id.in_(sa.select(rule.subject_id).select_from(rule.source).where(restrict)))
        self.resolve = (
            sa.update(X).where(*resolving, ~still_held).values(status=EscalationStatus.resolved, resolved_at=now)
        )

        with_district = rule.source.join(DISTRICTS, DISTRICTS.c.code == E.c.district_code)
        reminder_key = concat(f"reminder:{rule.name}:{rule.subject_kind}:", rule.subject_id, ":", BEFORE)
        # a reminder already written is skipped by one probe of the outbox key, before its message is built
        unsent = ~sa.exists(sa.select(1).where(OUTBOX.c.dedupe_key == reminder_key))
        self.remind = insert_statement(
            dialect,
            OUTBOX,
            OUTBOX_COLUMNS,
            sa.select(
                reminder_key,
                text_value(rule.reminder_kind),
                text_value("enterprise"),
                E.c.id,
                E.c.district_code,
                E.c.email,
                E.c.lang,
                json_object(
                    dialect,
                    {
                        "rule": text_value(rule.name),
                        "deadline": deadline,
                        "days_left": days_between(dialect, as_of_value(dialect), deadline),
                        "enterprise_name": E.c.name,
                        "uscc": E.c.uscc,
                        "district_name": DISTRICTS.c.name,
                    },
                ),
                text_value("pending"),
                int_value(0),
                now,
                now,
            )
            .select_from(with_district)
            .where(*banded, E.c.state != "closed", unsent),
        )

        # the subject lacks the highest step of the band: one probe of the unique dedupe key
        lacking = ~sa.exists(
            sa.select(1).where(
                X.c.dedupe_key == concat(f"{rule.name}:{rule.subject_kind}:", rule.subject_id, ":", office(TOP))
            )
        )
        candidates = [*banded, lacking]
        # One INSERT per band writes every step up to the band's highest (lowest first) for each candidate:
        # the candidates are found once, not once per step. LEFT JOIN keeps the subjects the outer loop.
        self.escalate = []
        for k in range(len(steps)):
            chosen = [sa.select(text_value(step).label("step")) for step in steps[: k + 1]]
            ladder = (chosen[0] if len(chosen) == 1 else sa.union_all(*chosen)).subquery("ladder")
            self.escalate.append(
                insert_counting(
                    dialect,
                    X,
                    ESCALATION_COLUMNS,
                    sa.select(
                        concat(f"{rule.name}:{rule.subject_kind}:", rule.subject_id, ":", office(ladder.c.step)),
                        text_value(rule.name),
                        text_value(rule.subject_kind),
                        rule.subject_id,
                        E.c.id,
                        E.c.district_code,
                        office(ladder.c.step),
                        deadline,
                        days_between(dialect, deadline, as_of_value(dialect)),
                        text_value("open"),
                        json_object(dialect, {"enterprise_name": E.c.name, "uscc": E.c.uscc}),
                        now,
                    )
                    .select_from(rule.source.outerjoin(ladder, sa.true()))
                    .where(*candidates),
                    by="step",
                )
            )


class PreparedRule:
    """A rule's statements, built once for a dialect; `apply` runs them for one day.

    A full day looks at every subject the rule holds. An ordinary day looks at two smaller sets: every
    subject whose step falls exactly on this day (the date moved, nothing else did), and every subject
    that changed since the last sweep (triggers record those in sweep_changes), for which any step it has
    reached is taken. Days are swept one by one, so together they find exactly what a full day finds."""

    def __init__(self, rule: Rule, dialect: str) -> None:
        self.rule = rule
        self.dialect = dialect
        self.ladder = rule.config.steps()
        self.reminder_days = sorted(rule.config.reminder_days, reverse=True)
        self.every = _Statements(rule, dialect, None)
        self.changed = _Statements(rule, dialect, touched(rule.subject_kind))
        now = NOW
        self.overdue = insert_statement(
            dialect,
            OUTBOX,
            OUTBOX_COLUMNS,
            sa.select(
                concat(f"overdue:{rule.name}:", X.c.subject_kind, ":", X.c.subject_id),
                text_value("deadline_overdue"),
                text_value("enterprise"),
                E.c.id,
                E.c.district_code,
                E.c.email,
                E.c.lang,
                json_object(
                    dialect,
                    {
                        "rule": text_value(rule.name),
                        "deadline": X.c.deadline,
                        "days_overdue": X.c.days_overdue,
                        "enterprise_name": E.c.name,
                        "uscc": E.c.uscc,
                        "district_name": DISTRICTS.c.name,
                    },
                ),
                text_value("pending"),
                int_value(0),
                now,
                now,
            )
            .select_from(X.join(E, E.c.id == X.c.enterprise_id).join(DISTRICTS, DISTRICTS.c.code == E.c.district_code))
            .where(X.c.id > sa.bindparam("since_id", type_=sa.Integer), X.c.rule == rule.name, X.c.step == "firm"),
        )

    def apply(
        self,
        conn: sa.Connection,
        *,
        as_of: dt.date,
        now: dt.datetime,
        full: bool,
        changes: bool = True,
        resolve: bool = True,
        since_id: int | None = None,
    ) -> dict[str, int]:
        """Everything the rule does on one day, inside the caller's transaction.

        Args:
            full: look at every subject (the first sweep, or the rules changed), not only today's.
            changes: whether anything changed since the last sweep (else that pass is skipped).
            resolve: whether the rule holds any unresolved escalation (else resolution is skipped).
            since_id: the last escalation id before the day began (`last_escalation_id`); the overdue
                notices go to the rule's firm steps written after it. Asked here when not given.
        """
        base = {"as_of": as_of, "now": now}
        if since_id is None:
            since_id = last_escalation_id(conn)
        # (statements, exact): a full day takes every subject at every step it reached; an ordinary day
        # takes every subject whose step is today, and the changed subjects at every step they reached
        passes = [(self.every, not full)]
        if not full and changes:
            passes.append((self.changed, False))
        resolved = 0
        if resolve and (full or changes):
            statements = self.every if full else self.changed
            resolved = max(conn.execute(statements.resolve, base).rowcount, 0)
        reminders = 0
        steps = {step: 0 for step, _ in self.ladder if step != "holder"}
        for statements, exact in passes:
            reminders += self._remind(conn, statements, base, exact=exact)
            for step, n in self._escalate(conn, statements, base, exact=exact).items():
                steps[step] = steps.get(step, 0) + n
        notices = 0
        if steps.get("firm"):
            notices = run_insert(conn, self.overdue, {**base, "since_id": since_id})
        return {"reminders": reminders, **steps, "overdue_notices": notices, "resolved": resolved}

    def _remind(self, conn: sa.Connection, statements: _Statements, base: dict[str, Any], *, exact: bool) -> int:
        """Remind the firm of the nearest reminder step it has reached (30, 7, 1 days before …): a subject
        that turns up late gets the step it is in, not every step it missed; none once the deadline passed.
        `exact`: only subjects whose deadline is exactly that many days away today."""
        as_of: dt.date = base["as_of"]
        written = 0
        for k, before in enumerate(self.reminder_days):
            nearer = self.reminder_days[k + 1] if k + 1 < len(self.reminder_days) else -1
            upto = as_of + dt.timedelta(days=before)
            band = self.rule.deadline.params(
                upto - dt.timedelta(days=1) if exact else as_of + dt.timedelta(days=nearer), upto
            )
            if band is not None:
                written += run_insert(conn, statements.remind, {**base, **band, "before": str(before)})
        return written

    def _escalate(
        self, conn: sa.Connection, statements: _Statements, base: dict[str, Any], *, exact: bool
    ) -> dict[str, int]:
        """Climb the ladder: each subject gets every step its days overdue have reached, once.

        A subject's steps are written together by one INSERT per band, lowest first, so one that has its
        highest reached step has the lower ones too: the sweep asks only for that one (a probe of the
        unique dedupe key per subject).
        `exact`: only subjects reaching a step exactly today."""
        as_of: dt.date = base["as_of"]
        counts: dict[str, int] = {}
        for k, (top, days) in enumerate(self.ladder):
            upto = as_of - dt.timedelta(days=days)
            higher = self.ladder[k + 1][1] if k + 1 < len(self.ladder) else None
            after = (
                upto - dt.timedelta(days=1) if exact else None if higher is None else as_of - dt.timedelta(days=higher)
            )
            band = self.rule.deadline.params(after, upto)
            if band is None:
                continue
            for step, n in run_insert_counts(conn, statements.escalate[k], {**base, **band, "top": top}).items():
                counts[step] = counts.get(step, 0) + n
        return counts


def last_escalation_id(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(X.c.id), 0))).scalar_one())


def unresolved_rules(conn: sa.Connection, names: list[str]) -> set[str]:
    """Which of these rules hold at least one open or acknowledged escalation (one index seek each)."""
    if not names:
        return set()
    flags = conn.execute(
        sa.select(*(sa.exists(sa.select(1).where(X.c.rule == name, X.c.status.in_(UNRESOLVED))) for name in names))
    ).one()
    return {name for name, held in zip(names, flags, strict=True) if held}
