"""Daily digests for officials: one mail per district bureau and one for the city per local day, grouping the
escalations new since the previous digest and counting the work waiting, with a link to the dashboard.
Firms get their own reminders; officials are not sent one mail per late firm."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from workflow.clock import today
from workflow.context import Context
from workflow.db import begin_write
from workflow.models import ApplicationStatus, EscalationStatus, OutboxStatus, ReferralStatus
from workflow.tables import APPLICATIONS, ENTERPRISES, ESCALATIONS, OUTBOX, REFERRALS

# Where the dashboards live under settings.public_url (the API serves them).
DISTRICT_DASHBOARD = "/dashboard/district/{code}"
CITY_DASHBOARD = "/dashboard/city"
FIRMS_LISTED = {"district": 20, "city": 10}  # per rule; the rest are counted ("and N more")
STEP_ORDER = {"firm": 0, "district": 1, "center": 1, "city": 2}


def digest_key(scope: str, day: dt.date, code: str | None = None) -> str:
    return f"digest:district:{code}:{day.isoformat()}" if scope == "district" else f"digest:city:{day.isoformat()}"


@dataclass(frozen=True)
class _Escalated:
    """One new escalation step, with the firm it concerns."""

    rule: str
    subject: tuple[str, int]  # (subject_kind, subject_id)
    district_code: str
    step: str
    deadline: dt.date
    days_overdue: int
    name: str
    uscc: str
    created_at: dt.datetime

    def after(self, bound: dt.datetime) -> bool:
        return self.created_at > bound


def write_digests(engine: sa.Engine, *, context: Context) -> int:
    """Write today's digest outbox rows (at most one per district bureau and one for the city; a district
    with nothing new and nothing waiting gets none). Returns how many rows were written."""
    campaign, settings, clock = context.campaign, context.settings, context.clock
    now = clock.now()
    day = today(clock)
    start_of_day = dt.datetime.combine(day, dt.time(0), clock.tz).astimezone(dt.UTC)
    base_url = settings.public_url.rstrip("/")
    with Session(engine) as session:
        begin_write(session)  # one writer: the "since the last digest" bounds and the rows agree
        conn = session.connection()
        since = _previous_digests(conn, day=day, before=now)
        # Read escalations back to the oldest bound in use; each digest then takes its own window.
        oldest = min([start_of_day, *since.values()])
        escalated = _escalated(conn, after=oldest, until=now)
        waiting = _waiting(conn)
        open_by_district = _open_escalations(conn)

        rows: list[dict[str, Any]] = []
        district_lines: list[dict[str, Any]] = []
        for district in campaign.districts:
            bound = since.get(("district", district.code), start_of_day)
            new = [e for e in escalated if e.district_code == district.code and e.after(bound)]
            groups = _groups(new, listed=FIRMS_LISTED["district"])
            counts = waiting.get(district.code, {})
            due = {
                "to_verify": counts.get("to_verify", 0),
                "to_audit": counts.get("to_audit", 0),
                "to_review": counts.get("to_review", 0),
                "open_escalations": open_by_district.get(district.code, 0),
            }
            new_total = sum(g["count"] for g in groups)
            district_lines.append(
                {
                    "code": district.code,
                    "name": district.name,
                    "name_en": district.name_en,
                    "new": 0,  # counted below, in the city digest's window
                    "open_escalations": due["open_escalations"],
                    "to_verify": due["to_verify"],
                }
            )
            if new_total == 0 and not any(due.values()):
                continue
            rows.append(
                _row(
                    key=digest_key("district", day, district.code),
                    kind="district_digest",
                    audience="district_bureau",
                    district_code=district.code,
                    now=now,
                    context={
                        "date": day.isoformat(),
                        "district_code": district.code,
                        "district_name": district.name,
                        "dashboard_url": base_url + DISTRICT_DASHBOARD.format(code=district.code),
                        "new_total": new_total,
                        "groups": groups,
                        "due": due,
                    },
                )
            )

        city_bound = since.get(("city", None), start_of_day)
        city_new = [e for e in escalated if e.after(city_bound)]
        for line in district_lines:
            line["new"] = len(_subjects([e for e in city_new if e.district_code == line["code"]]))
        groups = _groups(city_new, listed=FIRMS_LISTED["city"])
        totals = waiting.get(None, {})
        mail = _mail_problems(conn)
        city_due = {
            "to_certify": totals.get("to_certify", 0),
            "key_audits": totals.get("key_audits", 0),
            "referrals_to_decide": _referrals_to_decide(conn),
            "failed_mail": mail.get("failed", 0),
            "no_recipient_mail": mail.get("no_recipient", 0),
        }
        city_new_total = sum(g["count"] for g in groups)
        city_has_news = city_new_total or any(city_due.values())
        if city_has_news or any(line["open_escalations"] or line["to_verify"] for line in district_lines):
            rows.append(
                _row(
                    key=digest_key("city", day),
                    kind="city_digest",
                    audience="city_bureau",
                    district_code=None,
                    now=now,
                    context={
                        "date": day.isoformat(),
                        "dashboard_url": base_url + CITY_DASHBOARD,
                        "new_total": city_new_total,
                        "groups": groups,
                        "districts": district_lines,
                        "due": city_due,
                    },
                )
            )
        written = _insert_new(conn, rows)
        session.commit()
    return written


def _insert_new(conn: sa.Connection, rows: list[dict[str, Any]]) -> int:
    """Insert the rows whose dedupe key is new; count them by what the database returns (a driver's rowcount
    for a multi-row insert is not reliable: psycopg reports -1)."""
    insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    written = 0
    for row in rows:
        stmt = insert(OUTBOX).values(**row).on_conflict_do_nothing(index_elements=["dedupe_key"])
        written += conn.execute(stmt.returning(OUTBOX.c.id)).first() is not None
    return written


def _row(
    *, key: str, kind: str, audience: str, district_code: str | None, now: dt.datetime, context: dict[str, Any]
) -> dict[str, Any]:
    return {
        "dedupe_key": key,
        "kind": kind,
        "audience": audience,
        "enterprise_id": None,
        "district_code": district_code,
        "to_address": None,  # resolved from the campaign's mailboxes when sent
        "lang": "zh-CN",
        "context": context,
        "status": OutboxStatus.pending,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def _previous_digests(conn: sa.Connection, *, day: dt.date, before: dt.datetime) -> dict[tuple[str, str | None], Any]:
    """When each audience's latest earlier digest was written: the next one reports what came after it."""
    scope = sa.case((OUTBOX.c.kind == "city_digest", "city"), else_="district")
    rows = conn.execute(
        sa.select(scope.label("scope"), OUTBOX.c.district_code, sa.func.max(OUTBOX.c.created_at).label("at"))
        .where(
            OUTBOX.c.kind.in_(("district_digest", "city_digest")),
            OUTBOX.c.created_at < before,
            ~OUTBOX.c.dedupe_key.endswith(f":{day.isoformat()}"),
        )
        .group_by(scope, OUTBOX.c.district_code)
    ).all()
    return {(r.scope, None if r.scope == "city" else r.district_code): r.at for r in rows if r.at is not None}


def _escalated(conn: sa.Connection, *, after: dt.datetime, until: dt.datetime) -> list[_Escalated]:
    rows = conn.execute(
        sa.select(
            ESCALATIONS.c.rule,
            ESCALATIONS.c.subject_kind,
            ESCALATIONS.c.subject_id,
            ESCALATIONS.c.district_code,
            ESCALATIONS.c.step,
            ESCALATIONS.c.deadline,
            ESCALATIONS.c.days_overdue,
            ESCALATIONS.c.created_at,
            ENTERPRISES.c.name,
            ENTERPRISES.c.uscc,
        )
        .join(ENTERPRISES, ENTERPRISES.c.id == ESCALATIONS.c.enterprise_id)
        .where(ESCALATIONS.c.created_at > after, ESCALATIONS.c.created_at <= until)
        .order_by(ESCALATIONS.c.rule, ESCALATIONS.c.days_overdue.desc(), ESCALATIONS.c.id)
    ).all()
    return [
        _Escalated(
            rule=r.rule,
            subject=(r.subject_kind, int(r.subject_id)),
            district_code=r.district_code,
            step=r.step,
            deadline=r.deadline,
            days_overdue=int(r.days_overdue or 0),
            name=r.name,
            uscc=r.uscc,
            created_at=r.created_at,
        )
        for r in rows
    ]


def _subjects(escalated: list[_Escalated]) -> dict[tuple[str, str, int], _Escalated]:
    """One entry per (rule, subject): its highest step reached in the window."""
    best: dict[tuple[str, str, int], _Escalated] = {}
    for e in escalated:
        key = (e.rule, *e.subject)
        if key not in best or STEP_ORDER.get(e.step, 0) > STEP_ORDER.get(best[key].step, 0):
            best[key] = e
    return best


def _groups(escalated: list[_Escalated], *, listed: int) -> list[dict[str, Any]]:
    by_rule: dict[str, list[_Escalated]] = defaultdict(list)
    for e in _subjects(escalated).values():
        by_rule[e.rule].append(e)
    groups = []
    for rule in sorted(by_rule, key=lambda r: (-len(by_rule[r]), r)):
        subjects = sorted(by_rule[rule], key=lambda e: (-STEP_ORDER.get(e.step, 0), -e.days_overdue, e.uscc))
        groups.append(
            {
                "rule": rule,
                "count": len(subjects),
                "firms": [
                    {
                        "name": e.name,
                        "uscc": e.uscc,
                        "step": e.step,
                        "deadline": e.deadline.isoformat(),
                        "days_overdue": e.days_overdue,
                    }
                    for e in subjects[:listed]
                ],
                "more": max(len(subjects) - listed, 0),
            }
        )
    return groups


def _waiting(conn: sa.Connection) -> dict[str | None, dict[str, int]]:
    """Open applications by district and by the desk they wait at; key None holds the city-wide desks."""
    audited = APPLICATIONS.c.audit_passed_at.is_not(None)
    rows = conn.execute(
        sa.select(
            ENTERPRISES.c.district_code,
            APPLICATIONS.c.status,
            ENTERPRISES.c.key_field,
            audited.label("audited"),
            sa.func.count().label("n"),
        )
        .join(ENTERPRISES, ENTERPRISES.c.id == APPLICATIONS.c.enterprise_id)
        .where(
            APPLICATIONS.c.status.in_(
                (ApplicationStatus.applied, ApplicationStatus.verified, ApplicationStatus.reviewed)
            )
        )
        .group_by(ENTERPRISES.c.district_code, APPLICATIONS.c.status, ENTERPRISES.c.key_field, audited)
    ).all()
    out: dict[str | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        n, district = int(r.n), out[r.district_code]
        if r.status == ApplicationStatus.applied:
            district["to_verify"] += n
        elif r.status == ApplicationStatus.verified and not r.audited:
            if r.key_field:
                out[None]["key_audits"] += n  # the support center's online audit
            else:
                district["to_audit"] += n
        elif r.status == ApplicationStatus.verified and not r.key_field:
            district["to_review"] += n
        elif r.status == ApplicationStatus.reviewed:
            out[None]["to_certify"] += n
    return out


def _open_escalations(conn: sa.Connection) -> dict[str, int]:
    """Open escalations by district, counting each overdue subject once however many steps it reached."""
    subjects = (
        sa.select(ESCALATIONS.c.district_code)
        .where(ESCALATIONS.c.status == EscalationStatus.open)
        .group_by(ESCALATIONS.c.district_code, ESCALATIONS.c.rule, ESCALATIONS.c.subject_kind, ESCALATIONS.c.subject_id)
        .subquery()
    )
    rows = conn.execute(sa.select(subjects.c.district_code, sa.func.count()).group_by(subjects.c.district_code))
    return {str(code): int(n) for code, n in rows}


def _referrals_to_decide(conn: sa.Connection) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count()).select_from(REFERRALS).where(REFERRALS.c.status == ReferralStatus.proposed)
        ).scalar()
        or 0
    )


def _mail_problems(conn: sa.Connection) -> dict[str, int]:
    rows = conn.execute(
        sa.select(OUTBOX.c.status, sa.func.count())
        .where(OUTBOX.c.status.in_((OutboxStatus.failed, OutboxStatus.no_recipient)))
        .group_by(OUTBOX.c.status)
    )
    return {str(status): int(n) for status, n in rows}
