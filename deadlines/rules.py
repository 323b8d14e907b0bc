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
    days_since,
    days_until,
    insert_from_select,
    instant_value,
    int_value,
    json_object,
    local_date_plus,
    start_of_local_day,
    text_value,
)
from workflow.campaign import Campaign, DeadlineRule
from workflow.tables import APPLICATIONS, DISTRICTS, ENTERPRISES, ESCALATIONS, HAZARDS, OUTBOX

E, H, A, X = ENTERPRISES, HAZARDS, APPLICATIONS, ESCALATIONS
UNRESOLVED = ("open", "acknowledged")
STEPS = ("firm", "district", "city")
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


class Deadline(Protocol):
    def value(self, dialect: str, as_of: dt.date) -> Expr: ...

    def within(self, after: dt.date | None, until: dt.date) -> Expr | bool:
        """after < deadline <= until (a Python bool when the deadline is one fixed date)."""
        ...


@dataclass(frozen=True)
class FixedDeadline:
    day: dt.date

    def value(self, dialect: str, as_of: dt.date) -> Expr:
        return date_value(dialect, self.day)

    def within(self, after: dt.date | None, until: dt.date) -> Expr | bool:
        return (after is None or self.day > after) and self.day <= until


@dataclass(frozen=True)
class DateColumn:
    column: sa.Column[Any]

    def value(self, dialect: str, as_of: dt.date) -> Expr:
        return self.column

    def within(self, after: dt.date | None, until: dt.date) -> Expr | bool:
        cond = self.column <= until
        return cond if after is None else sa.and_(self.column > after, cond)


@dataclass(frozen=True)
class DaysAfter:
    """`days` after the local date of a stored instant (an official's service level)."""

    instant: sa.Column[Any]
    days: int
    tz: ZoneInfo

    def value(self, dialect: str, as_of: dt.date) -> Expr:
        return local_date_plus(dialect, self.instant, self.days, self.tz, as_of)

    def within(self, after: dt.date | None, until: dt.date) -> Expr | bool:
        # local_date(instant) + days <= until  ⟺  instant < start of local day (until - days + 1)
        def start(day: dt.date) -> dt.datetime:
            return start_of_local_day(day - dt.timedelta(days=self.days - 1), self.tz)

        cond = self.instant < start(until)
        return cond if after is None else sa.and_(self.instant >= start(after), cond)


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


def _flag(column: sa.Column[Any], value: bool) -> Expr:
    return column == (sa.true() if value else sa.false())


def build_rules(campaign: Campaign, tz: ZoneInfo) -> list[Rule]:
    """The campaign's rules in the order a sweep applies them."""
    cfg = campaign.deadlines.rules
    phases = campaign.phases
    firm_open = E.c.state != "closed"
    in_campaign = sa.or_(_flag(E.c.key_field, True), _flag(E.c.above_size, True))
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
        Rule(
            "creation_end",
            "enterprise",
            E,
            E.c.id,
            sa.and_(E.c.state.in_(("mobilized", "self_assessing", "rectifying")), in_campaign),
            FixedDeadline(phases.creation.end),
            cfg.creation_end,
        ),
        Rule(
            "evaluation_end",
            "application",
            applications,
            A.c.id,
            A.c.status.in_(("applied", "verified", "reviewed")),
            FixedDeadline(phases.evaluation.end),
            cfg.evaluation_end,
        ),
        Rule(
            "hazard_deadline",
            "hazard",
            hazards,
            H.c.id,
            sa.and_(H.c.status == "open", H.c.deadline.is_not(None), firm_open),
            DateColumn(H.c.deadline),
            cfg.hazard_deadline,
        ),
        Rule(
            "sla_verification",
            "application",
            applications,
            A.c.id,
            A.c.status == "applied",
            DaysAfter(A.c.submitted_at, cfg.sla_verification.days, tz),
            cfg.sla_verification,
        ),
        Rule(
            "sla_online_audit",
            "application",
            applications,
            A.c.id,
            sa.and_(A.c.status == "verified", A.c.audit_passed_at.is_(None)),
            DaysAfter(A.c.verified_at, cfg.sla_online_audit.days, tz),
            cfg.sla_online_audit,
        ),
        Rule(
            "sla_review",
            "application",
            applications,
            A.c.id,
            sa.and_(A.c.status == "verified", A.c.audit_passed_at.is_not(None)),
            DaysAfter(A.c.audit_passed_at, cfg.sla_review.days, tz),
            cfg.sla_review,
        ),
        Rule(
            "sla_certification",
            "application",
            applications,
            A.c.id,
            A.c.status == "reviewed",
            DaysAfter(A.c.reviewed_at, cfg.sla_certification.days, tz),
            cfg.sla_certification,
        ),
    ]
    return [r for r in rules if r.config.enabled]


# ---- applying one rule ----------------------------------------------------------------------------


def _where(*conds: Expr | bool) -> list[Expr] | None:
    """The conditions, or None when one of them is a constant False (nothing to do)."""
    out: list[Expr] = []
    for cond in conds:
        if cond is False:
            return None
        if cond is not True:
            out.append(cond)  # type: ignore[arg-type]
    return out


def resolve(conn: sa.Connection, rule: Rule, *, now: dt.datetime) -> int:
    """Escalations of this rule whose subject is no longer held by it (the firm moved on) are resolved."""
    still_due = sa.exists(sa.select(1).select_from(rule.source).where(rule.subject_id == X.c.subject_id, rule.due))
    result = conn.execute(
        sa.update(X)
        .where(X.c.rule == rule.name, X.c.status.in_(UNRESOLVED), X.c.subject_kind == rule.subject_kind, ~still_due)
        .values(status="resolved", resolved_at=now)
    )
    return max(result.rowcount, 0)


def remind(conn: sa.Connection, rule: Rule, *, as_of: dt.date, now: dt.datetime) -> int:
    """Remind the firm of the nearest reminder step it has reached (30, 7, 1 days before …): a subject
    that turns up late gets the step it is in, not every step it missed."""
    dialect = conn.dialect.name
    days = sorted(rule.config.reminder_days, reverse=True)
    deadline = rule.deadline.value(dialect, as_of)
    source = rule.source.join(DISTRICTS, DISTRICTS.c.code == E.c.district_code)
    written = 0
    for k, before in enumerate(days):
        nearer = days[k + 1] if k + 1 < len(days) else -1
        where = _where(
            rule.due,
            rule.deadline.within(as_of + dt.timedelta(days=nearer), as_of + dt.timedelta(days=before)),
            E.c.state != "closed",
        )
        if where is None:
            continue
        select = (
            sa.select(
                concat(f"reminder:{rule.name}:{rule.subject_kind}:", rule.subject_id, f":{before}"),
                text_value("deadline_reminder"),
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
                        "days_left": days_until(dialect, as_of, deadline),
                        "enterprise_name": E.c.name,
                        "uscc": E.c.uscc,
                        "district_name": DISTRICTS.c.name,
                    },
                ),
                text_value("pending"),
                int_value(0),
                instant_value(now),
                instant_value(now),
            )
            .select_from(source)
            .where(*where)
        )
        written += insert_from_select(conn, OUTBOX, OUTBOX_COLUMNS, select)
    return written


def escalate(conn: sa.Connection, rule: Rule, *, as_of: dt.date, now: dt.datetime) -> dict[str, int]:
    """Climb the ladder: each subject gets every step its days overdue have reached, once.

    A subject's steps are always written together, lowest first, so one that has its highest reached
    step has all the lower ones too: the sweep asks only that (an integer index probe per subject)."""
    dialect = conn.dialect.name
    ladder = rule.config.ladder.steps()
    deadline = rule.deadline.value(dialect, as_of)
    counts = {step: 0 for step, _ in ladder}
    for k, (step, days) in enumerate(ladder):
        higher = ladder[k + 1][1] if k + 1 < len(ladder) else None
        band = rule.deadline.within(
            None if higher is None else as_of - dt.timedelta(days=higher), as_of - dt.timedelta(days=days)
        )
        lacking = ~sa.exists(
            sa.select(1).where(
                X.c.subject_id == rule.subject_id,
                X.c.rule == rule.name,
                X.c.step == step,
                X.c.subject_kind == rule.subject_kind,
            )
        )
        where = _where(rule.due, band, lacking)
        if where is None:
            continue
        if not conn.execute(sa.select(sa.exists(sa.select(1).select_from(rule.source).where(*where)))).scalar():
            continue
        for lower, _ in ladder[: k + 1]:
            select = (
                sa.select(
                    concat(f"{rule.name}:{rule.subject_kind}:", rule.subject_id, f":{lower}"),
                    text_value(rule.name),
                    text_value(rule.subject_kind),
                    rule.subject_id,
                    E.c.id,
                    E.c.district_code,
                    text_value(lower),
                    deadline,
                    days_since(dialect, as_of, deadline),
                    text_value("open"),
                    json_object(
                        dialect,
                        {"enterprise_name": E.c.name, "uscc": E.c.uscc},
                    ),
                    instant_value(now),
                )
                .select_from(rule.source)
                .where(*where)
            )
            counts[lower] += insert_from_select(conn, X, ESCALATION_COLUMNS, select)
    return counts


def overdue_notices(conn: sa.Connection, rule: Rule, *, since_id: int, now: dt.datetime) -> int:
    """The firm step of the ladder is also a notice to the firm: one per escalation written since `since_id`."""
    dialect = conn.dialect.name
    select = (
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
            instant_value(now),
            instant_value(now),
        )
        .select_from(X.join(E, E.c.id == X.c.enterprise_id).join(DISTRICTS, DISTRICTS.c.code == E.c.district_code))
        .where(X.c.id > since_id, X.c.rule == rule.name, X.c.step == "firm")
    )
    return insert_from_select(conn, OUTBOX, OUTBOX_COLUMNS, select)


def apply_rule(conn: sa.Connection, rule: Rule, *, as_of: dt.date, now: dt.datetime) -> dict[str, int]:
    """Everything one rule does on one day, inside the caller's transaction."""
    resolved = resolve(conn, rule, now=now)
    reminders = remind(conn, rule, as_of=as_of, now=now) if rule.config.reminder_days else 0
    since_id = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(X.c.id), 0))).scalar_one())
    steps = escalate(conn, rule, as_of=as_of, now=now)
    notices = overdue_notices(conn, rule, since_id=since_id, now=now) if steps.get("firm") else 0
    return {"reminders": reminders, **steps, "overdue_notices": notices, "resolved": resolved}
