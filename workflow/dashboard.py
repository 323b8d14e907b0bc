"""Dashboard figures for the city and for one district, each a set-based GROUP BY (never a loop over firms):
firms per stage, district and field; progress toward each milestone and toward the certification targets
(the plan's attachment 2) with the history behind a burn-down and a projection at the current pace; overdue
firms and escalations; referrals; the outbox's health; what waits in the officials' worklists."""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from states import State
from workflow import summary
from workflow.actors import Actor, auditable_by, firm_scope
from workflow.campaign import OFFICIAL_TARGETS, Milestone
from workflow.clock import today
from workflow.context import Context
from workflow.models import ApplicationStatus, EscalationStatus, OutboxStatus, ReferralStatus
from workflow.tables import (
    APPLICATIONS,
    CERTIFICATIONS,
    ENTERPRISES,
    ESCALATIONS,
    OUTBOX,
    REFERRALS,
)
from workflow.targets import effective_targets

E = ENTERPRISES
FUNNEL: tuple[State, ...] = (
    State.mobilized,
    State.self_assessing,
    State.rectifying,
    State.applied,
    State.verified,
    State.reviewed,
    State.certified,
    State.closed,
)
STARTED_STATES = tuple(s.value for s in FUNNEL if s not in (State.mobilized, State.closed))
PACE_DAYS = 28  # the current pace is the average day of the last four weeks
ESCALATION_STEPS = ("firm", "district", "center", "city")
REFERRAL_STATUSES = (
    ReferralStatus.proposed,
    ReferralStatus.confirmed,
    ReferralStatus.acknowledged,
    ReferralStatus.declined,
    ReferralStatus.withdrawn,
)
OUTBOX_WATCHED = (OutboxStatus.pending, OutboxStatus.sending, OutboxStatus.failed)
WORKLISTS = ("verification", "audit", "review", "certification")


# ---- the firms as they stand today --------------------------------------------------------------


@dataclass(frozen=True)
class StageCount:
    """Firms of one district and field (key-supervision or not) in one state."""

    district_code: str
    key_field: bool
    state: str
    firms: int


def _district(where: list[sa.ColumnElement[bool]], column: Any, district: str | None) -> None:
    if district is not None:
        where.append(column == district)


def firm_counts(
    conn: sa.Connection, *, district: str | None = None
) -> tuple[list[StageCount], dict[tuple[str, str], int]]:
    """Firms per district × state × field, and the non-key above-size firms per (district, state), read from
    the daily summary (`workflow.summary`: a few hundred rows, equal to a count over the firms)."""
    stages: dict[tuple[str, bool, str], int] = defaultdict(int)
    above: dict[tuple[str, str], int] = defaultdict(int)
    for (code, key_field, above_size, state), n in summary.states(conn, district=district).items():
        stages[(code, key_field, state)] += n
        if not key_field and above_size:
            above[(code, state)] += n
    return [StageCount(code, key, state, n) for (code, key, state), n in stages.items()], dict(above)


def stage_counts(conn: sa.Connection, *, district: str | None = None) -> list[StageCount]:
    """Firms per district × state × field."""
    return firm_counts(conn, district=district)[0]


# ---- the history: when firms started and were certified -----------------------------------------


def _local_day(column: Any, dialect: str, tz: ZoneInfo, on: dt.date) -> Any:
    """A stored UTC instant as the campaign's local date, in SQL."""
    if dialect == "postgresql":
        return sa.cast(sa.func.timezone(tz.key, column), sa.Date)
    offset = dt.datetime.combine(on, dt.time(12), tz).utcoffset() or dt.timedelta(0)
    return sa.func.date(column, f"{int(offset.total_seconds() // 60):+d} minutes")


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


@dataclass(frozen=True)
class History:
    """Day by day before `before`: firms that left `mobilized` (started, or closed before starting) per
    (district, milestone group), and certifications less revocations per (district, key_field) (empty when
    read without them)."""

    before: dt.date
    left: dict[tuple[str, str], dict[dt.date, int]]
    certified: dict[tuple[str, bool], dict[dt.date, int]]

    def left_between(self, key: tuple[str, str], start: dt.date, end: dt.date) -> int:
        return sum(n for day, n in self.left.get(key, {}).items() if start <= day < end)

    def certified_between(self, key: tuple[str, bool], start: dt.date, end: dt.date) -> int:
        return sum(n for day, n in self.certified.get(key, {}).items() if start <= day < end)


def read_history(
    conn: sa.Connection, *, before: dt.date, tz: ZoneInfo, district: str | None = None, certified: bool = True
) -> History:
    """The day each started (or closed) firm left `mobilized`, from the daily summary's starts when the
    campaign counts days in its zone (else one GROUP BY over the firms' stamp), and, with `certified`, the
    certifications and revocations per day (the dashboards do not show them)."""
    left: dict[tuple[str, str], dict[dt.date, int]] = defaultdict(dict)
    if tz.key == summary.ZONE:
        for (code, key_field, above_size, when), n in summary.starts(conn, before=before, district=district).items():
            if key_field or above_size:
                per_day = left[(code, "key_field" if key_field else "non_key_above_size")]
                per_day[when] = per_day.get(when, 0) + n
    else:
        left = _left_counted(conn, before=before, tz=tz, district=district)
    history = History(before=before, left=dict(left), certified={})
    return _with_certified(conn, history, tz=tz, district=district) if certified else history


def _left_counted(
    conn: sa.Connection, *, before: dt.date, tz: ZoneInfo, district: str | None
) -> dict[tuple[str, str], dict[dt.date, int]]:
    """The history of starts counted over the firms' `left_mobilized_at` (a zone the summary is not kept in)."""
    dialect = conn.dialect.name
    cutoff = dt.datetime.combine(before, dt.time(0), tz)
    group = sa.case((E.c.key_field.is_(True), "key_field"), else_="non_key_above_size")
    day = _local_day(E.c.left_mobilized_at, dialect, tz, before)
    where = [
        E.c.state.in_((*STARTED_STATES, State.closed.value)),
        sa.or_(E.c.key_field.is_(True), E.c.above_size.is_(True)),
        E.c.left_mobilized_at < cutoff,
    ]
    _district(where, E.c.district_code, district)
    left: dict[tuple[str, str], dict[dt.date, int]] = defaultdict(dict)
    for r in conn.execute(
        sa.select(E.c.district_code, group.label("grp"), day.label("day"), sa.func.count())
        .where(*where)
        .group_by(E.c.district_code, group, day)
    ):
        left[(str(r[0]), str(r[1]))][_as_date(r[2])] = int(r[3])
    return left


def _with_certified(conn: sa.Connection, history: History, *, tz: ZoneInfo, district: str | None) -> History:
    """The history with the certifications less revocations per (district, key_field) and day."""
    dialect, before = conn.dialect.name, history.before
    cutoff = dt.datetime.combine(before, dt.time(0), tz)
    certified: dict[tuple[str, bool], dict[dt.date, int]] = defaultdict(dict)
    c = CERTIFICATIONS
    for column, sign in ((c.c.certified_at, 1), (c.c.revoked_at, -1)):
        day = _local_day(column, dialect, tz, before)
        where = [column.is_not(None), column < cutoff]
        _district(where, E.c.district_code, district)
        for r in conn.execute(
            sa.select(E.c.district_code, E.c.key_field, day.label("day"), sa.func.count())
            .select_from(c.join(E, E.c.id == c.c.enterprise_id))
            .where(*where)
            .group_by(E.c.district_code, E.c.key_field, day)
        ):
            per_day = certified[(str(r[0]), bool(r[1]))]
            when = _as_date(r[2])
            per_day[when] = per_day.get(when, 0) + sign * int(r[3])
    return History(before=before, left=history.left, certified=dict(certified))


class HistoryCache:
    """The history before today never changes (events are appended with the time they happen), so it is
    read once a day per scope (from the daily summary: a small read even then); today's figures always come
    live."""

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._items: dict[tuple[str | None, dt.date, str], History] = {}

    def get(self, conn: sa.Connection, *, before: dt.date, tz: ZoneInfo, district: str | None) -> History:
        key = (district, before, tz.key)
        with self._lock:
            hit = self._items.get(key)
        if hit is not None:
            return hit
        value = read_history(conn, before=before, tz=tz, district=district, certified=False)
        with self._lock:
            while len(self._items) >= self._size:
                self._items.pop(next(iter(self._items)))
            self._items[key] = value
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


# ---- progress and projections -------------------------------------------------------------------


@dataclass(frozen=True)
class MilestoneProgress:
    """One district's (or the city's, district None) progress toward one milestone."""

    milestone: Milestone
    district_code: str | None
    firms: int  # the group's firms still in the campaign (closed ones left it)
    started: int
    remaining: int  # still `mobilized`
    pace_per_day: float  # firms leaving `mobilized` a day, over the last PACE_DAYS days
    projected_remaining: int | None  # at the milestone at this pace; None once the milestone has passed
    finish: dt.date | None  # the day the group would be done at this pace; None if it does not move

    @property
    def share(self) -> float:
        return self.started / self.firms if self.firms else 1.0

    @property
    def projected_share(self) -> float | None:
        if self.projected_remaining is None:
            return None
        return 1 - self.projected_remaining / self.firms if self.firms else 1.0

    @property
    def passed(self) -> bool:
        return self.projected_remaining is None

    @property
    def on_track(self) -> bool:
        return self.remaining == 0 or (self.projected_remaining == 0)


@dataclass(frozen=True)
class TargetProgress:
    """Firms that have *started* against the district's starting target (附件2: 需全部开展创建工作，具体创建
    目标任务见附件2), key-field and other (non-key above-size) firms, with a projection to the group's own
    milestone at the current pace. `target` is None when no figures were entered (目标未录入); `source` says
    where they come from (only 附件2 is official)."""

    district_code: str | None
    key_field: bool
    started: int
    target: int | None
    source: str | None
    pace_per_day: float
    projected: int | None  # at the group's milestone; None once it has passed
    until: dt.date | None = None  # the group's milestone

    @property
    def share(self) -> float | None:
        if self.target is None:
            return None
        return self.started / self.target if self.target else 1.0

    @property
    def official(self) -> bool:
        return self.source == OFFICIAL_TARGETS


@dataclass(frozen=True)
class BurnDown:
    """Firms of a milestone's group still `mobilized`, week by week, and the projection to the milestone."""

    milestone: Milestone
    days: list[dt.date]
    remaining: dict[str, list[int]]  # district code → one value per day
    projection: dict[str, list[tuple[dt.date, int]]]  # district code → (today, now), (milestone, projected)


def _pace(count: int) -> float:
    return count / PACE_DAYS


def _project(remaining: int, pace: float, day: dt.date, until: dt.date) -> tuple[int | None, dt.date | None]:
    projected = None if day > until else max(0, remaining - math.floor(pace * (until - day).days))
    if remaining == 0:
        finish: dt.date | None = day
    elif pace > 0:
        finish = day + dt.timedelta(days=math.ceil(remaining / pace))
    else:
        finish = None
    return projected, finish


# ---- overdue firms, referrals, the outbox, worklists ---------------------------------------------


def overdue_counts(conn: sa.Connection, *, district: str | None = None) -> dict[str, int]:
    """Firms with an open escalation, per district (what the firm list's `overdue` filter finds)."""
    where = [ESCALATIONS.c.status == EscalationStatus.open]
    _district(where, ESCALATIONS.c.district_code, district)
    rows = conn.execute(
        sa.select(ESCALATIONS.c.district_code, sa.func.count(sa.distinct(ESCALATIONS.c.enterprise_id)))
        .where(*where)
        .group_by(ESCALATIONS.c.district_code)
    )
    return {str(r[0]): int(r[1]) for r in rows}


def escalation_counts(conn: sa.Connection, *, district: str | None = None) -> dict[tuple[str, str], int]:
    """Open escalations per (district, step of the ladder)."""
    where = [ESCALATIONS.c.status == EscalationStatus.open]
    _district(where, ESCALATIONS.c.district_code, district)
    rows = conn.execute(
        sa.select(ESCALATIONS.c.district_code, ESCALATIONS.c.step, sa.func.count())
        .where(*where)
        .group_by(ESCALATIONS.c.district_code, ESCALATIONS.c.step)
    )
    return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}


def referral_counts(conn: sa.Connection, *, district: str | None = None) -> dict[tuple[str, str], int]:
    """Referrals to the local governments per (district, status)."""
    where: list[sa.ColumnElement[bool]] = []
    _district(where, REFERRALS.c.district_code, district)
    rows = conn.execute(
        sa.select(REFERRALS.c.district_code, REFERRALS.c.status, sa.func.count())
        .where(*where)
        .group_by(REFERRALS.c.district_code, REFERRALS.c.status)
    )
    return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}


@dataclass(frozen=True)
class OutboxHealth:
    counts: dict[str, int]  # pending / sending / failed
    oldest_pending: dt.datetime | None


def outbox_health(conn: sa.Connection, *, district: str | None = None) -> OutboxHealth:
    """Mail not yet out: read through the (status, next_attempt_at) index, never the sent mail."""
    where: list[sa.ColumnElement[bool]] = [OUTBOX.c.status.in_(OUTBOX_WATCHED)]
    _district(where, OUTBOX.c.district_code, district)
    rows = conn.execute(
        sa.select(OUTBOX.c.status, sa.func.count(), sa.func.min(OUTBOX.c.created_at))
        .where(*where)
        .group_by(OUTBOX.c.status)
    ).all()
    counts = dict.fromkeys(OUTBOX_WATCHED, 0) | {str(r[0]): int(r[1]) for r in rows}
    oldest = next((r[2] for r in rows if r[0] == OutboxStatus.pending), None)
    if isinstance(oldest, str):  # SQLite hands min() of a column back untyped
        oldest = dt.datetime.fromisoformat(oldest).replace(tzinfo=dt.UTC)
    return OutboxHealth(counts=counts, oldest_pending=oldest)


def outbox_messages(
    conn: sa.Connection, *, status: str | None = None, district: str | None = None, limit: int = 200
) -> list[sa.Row[Any]]:
    """Mail not yet out (or of one status), oldest first, for the city or one district."""
    where: list[sa.ColumnElement[bool]] = [OUTBOX.c.status.in_((status,) if status else OUTBOX_WATCHED)]
    _district(where, OUTBOX.c.district_code, district)
    return list(
        conn.execute(
            sa.select(
                OUTBOX.c.id,
                OUTBOX.c.status,
                OUTBOX.c.kind,
                OUTBOX.c.audience,
                OUTBOX.c.enterprise_id,
                OUTBOX.c.district_code,
                OUTBOX.c.to_address,
                OUTBOX.c.attempts,
                OUTBOX.c.next_attempt_at,
                OUTBOX.c.last_error,
                OUTBOX.c.created_at,
            )
            .where(*where)
            .order_by(OUTBOX.c.created_at, OUTBOX.c.id)
            .limit(limit)
        )
    )


def worklist_counts(conn: sa.Connection, *, actor: Actor) -> dict[str, int]:
    """How many applications wait in each of the official's worklists (as `queries.worklist` lists them)."""
    a = APPLICATIONS
    audited = a.c.audit_passed_at.is_not(None)
    step = sa.case(
        (a.c.status == ApplicationStatus.applied, "verification"),
        (sa.and_(a.c.status == ApplicationStatus.verified, ~audited), "audit"),
        (a.c.status == ApplicationStatus.verified, "review"),
        else_="certification",
    )
    rows = conn.execute(
        sa.select(step.label("step"), sa.func.count())
        .select_from(a.join(E, E.c.id == a.c.enterprise_id))
        .where(
            a.c.status.in_((ApplicationStatus.applied, ApplicationStatus.verified, ApplicationStatus.reviewed)),
            sa.or_(
                sa.and_(a.c.status.in_((ApplicationStatus.applied, ApplicationStatus.reviewed)), firm_scope(actor)),
                sa.and_(a.c.status == ApplicationStatus.verified, auditable_by(actor)),
            ),
        )
        .group_by(step)
    )
    return dict.fromkeys(WORKLISTS, 0) | {str(r[0]): int(r[1]) for r in rows}


# ---- everything a dashboard shows ----------------------------------------------------------------


@dataclass(frozen=True)
class Overview:
    as_of: dt.date
    district_code: str | None  # None: the whole city
    districts: list[str]  # the districts shown, in the campaign's order
    stages: list[StageCount]
    milestones: dict[str, list[MilestoneProgress]]  # milestone id → per district, then the total (district None)
    targets: list[TargetProgress]  # per district and field, then the totals
    burndown: list[BurnDown]
    overdue: dict[str, int]
    escalations: dict[tuple[str, str], int]
    referrals: dict[tuple[str, str], int]
    outbox: OutboxHealth
    evaluation_end: dt.date

    def firms(self, *, district: str | None = None, state: str | None = None, key_field: bool | None = None) -> int:
        return sum(
            s.firms
            for s in self.stages
            if (district is None or s.district_code == district)
            and (state is None or s.state == state)
            and (key_field is None or s.key_field == key_field)
        )


def _weeks(start: dt.date, end: dt.date) -> list[dt.date]:
    days, day = [], start
    while day < end:
        days.append(day)
        day += dt.timedelta(days=7)
    days.append(end)
    return days


def _cumulative(per_day: dict[dt.date, int], days: Iterable[dt.date]) -> list[int]:
    """Running totals up to and including each of the (ascending) days."""
    ordered = sorted(per_day.items())
    out, total, i = [], 0, 0
    for day in days:
        while i < len(ordered) and ordered[i][0] <= day:
            total += ordered[i][1]
            i += 1
        out.append(total)
    return out


def overview(
    conn: sa.Connection,
    *,
    context: Context,
    district: str | None = None,
    cache: HistoryCache | None = None,
) -> Overview:
    """The city's dashboard (district None) or one district's."""
    campaign, clock = context.campaign, context.clock
    day = today(clock)
    districts = [d.code for d in campaign.districts if district is None or d.code == district]
    stages, above = firm_counts(conn, district=district)
    history = (
        cache.get(conn, before=day, tz=clock.tz, district=district)
        if cache is not None
        else read_history(conn, before=day, tz=clock.tz, district=district, certified=False)
    )
    pace_from = day - dt.timedelta(days=PACE_DAYS)

    def group_count(code: str, applies_to: str, state: str | None = None, *, exclude: str | None = None) -> int:
        if applies_to == "key_field":
            return sum(
                s.firms
                for s in stages
                if s.district_code == code
                and s.key_field
                and (state is None or s.state == state)
                and s.state != exclude
            )
        return sum(n for (d, st), n in above.items() if d == code and (state is None or st == state) and st != exclude)

    milestones: dict[str, list[MilestoneProgress]] = {}
    burndowns = []
    for m in campaign.milestones:
        rows = []
        days = _weeks(campaign.phases.mobilization.start, day)
        remaining_series: dict[str, list[int]] = {}
        projection: dict[str, list[tuple[dt.date, int]]] = {}
        for code in districts:
            in_campaign = group_count(code, m.applies_to, exclude=State.closed.value)
            remaining = group_count(code, m.applies_to, State.mobilized.value)
            everyone = group_count(code, m.applies_to)
            key = (code, m.applies_to)
            pace = _pace(history.left_between(key, pace_from, day))
            projected, finish = _project(remaining, pace, day, m.date)
            rows.append(
                MilestoneProgress(m, code, in_campaign, in_campaign - remaining, remaining, pace, projected, finish)
            )
            left = _cumulative(history.left.get(key, {}), days[:-1])
            remaining_series[code] = [everyone - n for n in left] + [remaining]
            if projected is not None:
                projection[code] = [(day, remaining), (m.date, projected)]
        total_firms = sum(r.firms for r in rows)
        total_remaining = sum(r.remaining for r in rows)
        total_pace = sum(r.pace_per_day for r in rows)
        projected, finish = _project(total_remaining, total_pace, day, m.date)
        rows.append(
            MilestoneProgress(
                m, None, total_firms, total_firms - total_remaining, total_remaining, total_pace, projected, finish
            )
        )
        milestones[m.id] = rows
        burndowns.append(BurnDown(m, days, remaining_series, projection))

    end = campaign.phases.evaluation.end
    in_force = effective_targets(conn, campaign=campaign)
    group_of = {True: "key_field", False: "non_key_above_size"}
    until_of: dict[str, dt.date] = {m.applies_to: m.date for m in campaign.milestones}
    targets = []
    for key_field in (True, False):
        group = group_of[key_field]
        until = until_of.get(group)
        per_field = []
        for d in campaign.districts:
            if d.code not in districts:
                continue
            started = sum(group_count(d.code, group, state) for state in STARTED_STATES)
            pace = _pace(history.left_between((d.code, group), pace_from, day))
            ahead = None if until is None or day > until else (until - day).days
            projected = None if ahead is None else started + math.floor(max(pace, 0.0) * ahead)
            figures = in_force.get(d.code)
            target = None if figures is None else (figures.key_field if key_field else figures.other)
            source = None if figures is None else figures.source
            per_field.append(TargetProgress(d.code, key_field, started, target, source, pace, projected, until))
        targets += per_field
        if district is None:
            projections = [t.projected for t in per_field]
            known = [t.target for t in per_field if t.target is not None]
            sources = {t.source for t in per_field}
            targets.append(
                TargetProgress(
                    None,
                    key_field,
                    sum(t.started for t in per_field),
                    sum(known) if len(known) == len(per_field) else None,
                    sources.pop() if len(sources) == 1 else "mixed",
                    sum(t.pace_per_day for t in per_field),
                    None if any(p is None for p in projections) else sum(p or 0 for p in projections),
                    until,
                )
            )

    return Overview(
        as_of=day,
        district_code=district,
        districts=districts,
        stages=stages,
        milestones=milestones,
        targets=targets,
        burndown=burndowns,
        overdue=overdue_counts(conn, district=district),
        escalations=escalation_counts(conn, district=district),
        referrals=referral_counts(conn, district=district),
        outbox=outbox_health(conn, district=district),
        evaluation_end=end,
    )
