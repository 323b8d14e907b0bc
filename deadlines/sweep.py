"""The daily sweep: every rule applied as of one date, each rule one transaction, the day recorded in
`sweep_runs`. Missed days are caught up one by one in order; a day before the last finished one is refused.

A day looks at every subject only when it must (the first sweep, or the campaign's rules changed, or
`full`); otherwise it takes the subjects whose step falls on that very day, and the subjects that changed
since the last sweep — database triggers record every change a rule depends on in `sweep_changes`, which
the day claims at its start and deletes when it finishes. So a day's work follows what happened that day,
not the size of the directory.

Why one transaction per rule: each rule's rows (reminders, escalation steps, overdue notices, resolutions,
and the day's counts) commit together or not at all, and every insert is idempotent by its dedupe key, so
a sweep killed half-way and run again ends exactly where one clean run would. A single transaction for
the whole sweep would hold SQLite's only write lock for the length of the sweep and stall every `fire`.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from deadlines.referrals import PreparedReferrals, follow_firms
from deadlines.rules import PreparedRule, build_rules, last_escalation_id, unresolved_rules
from states import InvalidInput, WorkflowError
from workflow import summary
from workflow.campaign import Campaign
from workflow.clock import Clock
from workflow.context import Context
from workflow.models import SweepRunStatus
from workflow.tables import SWEEP_CHANGES, SWEEP_RUNS


def advisory_key(name: str) -> sa.ColumnElement[int]:
    """A PostgreSQL advisory lock key for `name` in this database schema (campaigns in other schemas of
    one database do not block each other)."""
    return sa.func.hashtext(sa.literal(f"dabiao:{name}:", sa.String) + sa.func.current_schema())


SWEEP_LOCK = "sweep"  # one sweep at a time


class SweepRefused(InvalidInput):
    """A sweep for a date before the last finished one, or in the future."""

    code = "sweep_refused"


class SweepBusy(WorkflowError):
    """Another process is sweeping right now (PostgreSQL)."""

    code = "sweep_busy"


@dataclass
class SweepReport:
    as_of: dt.date
    rules: dict[str, dict[str, int]] = field(default_factory=dict)
    runs: int = 1
    full: bool = False

    @property
    def written(self) -> int:
        return sum(n for counts in self.rules.values() for k, n in counts.items() if k != "resolved")

    def as_json(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "runs": self.runs, "full": self.full, "rules": self.rules}


def owner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@contextmanager
def sweep_lock(engine: sa.Engine) -> Iterator[None]:
    """On PostgreSQL, hold the sweep's advisory lock on a connection of its own for the whole sweep
    (a crashed holder's connection closes and frees it). On SQLite, an exclusive lock on a file beside the
    database (freed by the system when its holder dies), so two schedulers never sweep one day twice."""
    if engine.dialect.name != "postgresql":
        with file_lock(engine, "sweep") as held:
            if not held:
                raise SweepBusy("另一进程正在扫描 / another process is sweeping right now; try again later")
            yield
        return
    with engine.connect() as conn:
        if not conn.execute(sa.select(sa.func.pg_try_advisory_lock(advisory_key(SWEEP_LOCK)))).scalar():
            raise SweepBusy("另一进程正在扫描 / another process is sweeping right now; try again later")
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.select(sa.func.pg_advisory_unlock(advisory_key(SWEEP_LOCK))))
            conn.commit()


@contextmanager
def file_lock(engine: sa.Engine, name: str) -> Iterator[bool]:
    """Try an exclusive lock on `<database>.<name>-lock` (SQLite); yields whether it is held. A database
    without a file (in memory) has nothing to share it: the lock is taken."""
    path = engine.url.database
    if not path or path == ":memory:" or path.startswith("file:"):
        yield True
        return
    with open(f"{path}.{name}-lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def last_finished(conn: sa.Connection) -> dt.date | None:
    value = conn.execute(
        sa.select(sa.func.max(SWEEP_RUNS.c.as_of)).where(SWEEP_RUNS.c.status == SweepRunStatus.finished)
    ).scalar()
    if isinstance(value, str):  # SQLite hands back an aggregate's date as text
        return dt.date.fromisoformat(value)
    return value


def recent_durations(conn: sa.Connection, *, limit: int = 100) -> list[float]:
    """How many seconds the latest `limit` finished sweeps took, newest first (for the metrics)."""
    runs = conn.execute(
        sa.select(SWEEP_RUNS.c.started_at, SWEEP_RUNS.c.finished_at)
        .where(SWEEP_RUNS.c.finished_at.is_not(None))
        .order_by(SWEEP_RUNS.c.id.desc())
        .limit(limit)
    ).all()
    return [max((r.finished_at - r.started_at).total_seconds(), 0.0) for r in runs]


@contextmanager
def _write(engine: sa.Engine) -> Iterator[sa.Connection]:
    with engine.connect() as conn:  # SQLite: every connection keeps a large page cache (workflow.db)
        conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn


def rules_fingerprint(campaign: Campaign, clock: Clock) -> str:
    """A hash of everything that decides on which day a step falls; when it changes, the next sweep
    looks at every subject again (a full day)."""
    data = {
        "deadlines": campaign.deadlines.model_dump(mode="json"),
        "phases": campaign.phases.model_dump(mode="json"),
        "milestones": [m.model_dump(mode="json") for m in campaign.milestones],
        "tz": str(clock.tz),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    runs: int  # how often the day has been swept, this run included
    full: bool  # look at every subject, not only today's steps and the changed ones
    changes: bool  # something changed since the last sweep


def _claim(conn: sa.Connection, *, as_of: dt.date, now: dt.datetime, owner: str, config: str, full: bool) -> Claim:
    """Record that `as_of` is being swept and take the changes recorded since the last sweep."""
    last = conn.execute(
        sa.select(SWEEP_RUNS.c.as_of, SWEEP_RUNS.c.config)
        .where(SWEEP_RUNS.c.status == SweepRunStatus.finished)
        .order_by(SWEEP_RUNS.c.as_of.desc())
        .limit(1)
    ).first()
    if last is not None and as_of < last.as_of:
        raise SweepRefused(
            f"{as_of} 早于最近一次已完成的扫描（{last.as_of}），不能倒回去扫描 / "
            f"{as_of} is before the last finished sweep ({last.as_of}); sweeps only move forward"
        )
    full = full or last is None or last.config != config
    if full:  # every subject is looked at: the recorded changes add nothing
        conn.execute(sa.delete(SWEEP_CHANGES).where(SWEEP_CHANGES.c.claimed_for.is_(None)))
    else:
        conn.execute(sa.update(SWEEP_CHANGES).where(SWEEP_CHANGES.c.claimed_for.is_(None)).values(claimed_for=as_of))
    changes = bool(
        conn.execute(sa.select(sa.exists(sa.select(1).where(SWEEP_CHANGES.c.claimed_for == as_of)))).scalar()
    )
    row = conn.execute(sa.select(SWEEP_RUNS).where(SWEEP_RUNS.c.as_of == as_of)).first()
    if row is None:
        conn.execute(
            sa.insert(SWEEP_RUNS).values(
                as_of=as_of,
                status=SweepRunStatus.running,
                runs=1,
                owner=owner,
                config=config,
                counts={},
                started_at=now,
            )
        )
        return Claim(runs=1, full=full, changes=changes)
    conn.execute(
        sa.update(SWEEP_RUNS)
        .where(SWEEP_RUNS.c.id == row.id)
        .values(runs=row.runs + 1, owner=owner, config=config, started_at=now)
    )
    return Claim(runs=int(row.runs) + 1, full=full, changes=changes)


def _add_counts(conn: sa.Connection, *, as_of: dt.date, counts: dict[str, dict[str, int]]) -> None:
    """Add what rules did to the day's record (in the same transaction as their rows)."""
    counts = {rule: c for rule, c in counts.items() if any(c.values())}
    if not counts:
        return
    row = conn.execute(sa.select(SWEEP_RUNS.c.id, SWEEP_RUNS.c.counts).where(SWEEP_RUNS.c.as_of == as_of)).one()
    total = dict(row.counts or {})
    for rule, c in counts.items():
        before = total.get(rule, {})
        total[rule] = {k: int(before.get(k, 0)) + n for k, n in c.items()}
    conn.execute(sa.update(SWEEP_RUNS).where(SWEEP_RUNS.c.id == row.id).values(counts=total))


_PREPARED: dict[tuple[int, str, str], tuple[Campaign, list[PreparedRule], PreparedReferrals]] = {}


def prepare(engine: sa.Engine, campaign: Campaign, clock: Clock) -> tuple[list[PreparedRule], PreparedReferrals]:
    """The campaign's statements for this dialect, built once per process (SQLAlchemy then compiles each
    shape once, and a day's sweep only executes)."""
    key = (id(campaign), engine.dialect.name, str(clock.tz))
    if key not in _PREPARED:  # the campaign is kept in the value, so its id stays its own
        rules = [PreparedRule(rule, engine.dialect.name) for rule in build_rules(campaign, clock.tz)]
        _PREPARED[key] = (campaign, rules, PreparedReferrals(campaign, engine.dialect.name))
    _, rules, referrals = _PREPARED[key]
    return rules, referrals


def sweep_day(engine: sa.Engine, *, context: Context, as_of: dt.date, owner: str, full: bool = False) -> SweepReport:
    """Apply every rule as of `as_of`. The caller holds the sweep lock.

    An ordinary day (today's steps and what changed: little work) is one transaction, claim included.
    A full day (the first sweep, rules changed, or `full`) commits the claim, then each rule on its own,
    so SQLite's single write lock is never held for the whole of a long sweep."""
    campaign, clock = context.campaign, context.clock
    now = clock.now()
    rules, referrals = prepare(engine, campaign, clock)
    config = rules_fingerprint(campaign, clock)
    names = [prepared.rule.name for prepared in rules]

    def run_rules(conn: sa.Connection, chosen: list[PreparedRule], claim: Claim) -> dict[str, dict[str, int]]:
        holding = unresolved_rules(conn, [p.rule.name for p in chosen])
        since_id = last_escalation_id(conn)  # each rule's overdue notices take its own firm steps after this
        done = {
            p.rule.name: p.apply(
                conn,
                as_of=as_of,
                now=now,
                full=claim.full,
                changes=claim.changes,
                resolve=p.rule.name in holding,
                since_id=since_id,
            )
            for p in chosen
        }
        _add_counts(conn, as_of=as_of, counts=done)
        return done

    def finish(conn: sa.Connection, claim: Claim) -> dict[str, int]:
        counts = {"suggested": referrals.apply(conn, as_of=as_of, now=now, full=claim.full, changes=claim.changes)}
        counts |= follow_firms(conn, campaign=campaign, as_of=as_of, now=now)
        _add_counts(conn, as_of=as_of, counts={"referrals": counts})
        conn.execute(sa.delete(SWEEP_CHANGES).where(SWEEP_CHANGES.c.claimed_for <= as_of))
        summary.compact(conn)  # the day's changes to the dashboards' summary, folded in (PostgreSQL)
        conn.execute(
            sa.update(SWEEP_RUNS)
            .where(SWEEP_RUNS.c.as_of == as_of)
            .values(status=SweepRunStatus.finished, finished_at=clock.now())
        )
        return counts

    with _write(engine) as conn:
        claim = _claim(conn, as_of=as_of, now=now, owner=owner, config=config, full=full)
        report = SweepReport(as_of=as_of, runs=claim.runs, full=claim.full)
        if not claim.full:
            report.rules = run_rules(conn, rules, claim)
            report.rules["referrals"] = finish(conn, claim)
            return report
    for prepared in rules:
        with _write(engine) as conn:
            report.rules.update(run_rules(conn, [prepared], claim))
    with _write(engine) as conn:
        report.rules["referrals"] = finish(conn, claim)
    assert list(report.rules) == [*names, "referrals"]
    return report


def days_to_sweep(conn: sa.Connection, *, through: dt.date, again: bool) -> list[dt.date]:
    """The days from the one after the last finished sweep through `through`, in order. With `again`,
    a day already finished (the last one) is swept once more, harmlessly."""
    last = last_finished(conn)
    if last is None:
        return [through]
    if through < last:
        raise SweepRefused(
            f"{through} 早于最近一次已完成的扫描（{last}），不能倒回去扫描 / "
            f"{through} is before the last finished sweep ({last}); sweeps only move forward"
        )
    if through == last:
        return [through] if again else []
    return [last + dt.timedelta(days=n) for n in range(1, (through - last).days + 1)]


def sweep(
    engine: sa.Engine,
    *,
    context: Context,
    through: dt.date,
    again: bool = True,
    full: bool = False,
    owner: str | None = None,
) -> list[SweepReport]:
    """Sweep every day not yet swept up to `through` (catching up a gap day by day, in order). `full`
    makes the first of those days look at every subject."""
    # Real time, not the context's clock (a replay's clock may stand anywhere): no day is swept before it comes.
    if through > dt.datetime.now(dt.UTC).astimezone(context.clock.tz).date():
        raise SweepRefused(f"{through} 尚未到来，不能提前扫描 / {through} is in the future")
    owner = owner or owner_name()
    with sweep_lock(engine):
        with engine.connect() as conn:
            days = days_to_sweep(conn, through=through, again=again)
        reports = [
            sweep_day(engine, context=context, as_of=day, owner=owner, full=full and n == 0)
            for n, day in enumerate(days)
        ]
    if any(report.written for report in reports):
        refresh_statistics(engine, full=any(report.full for report in reports))
    return reports


SQLITE_ANALYSIS_LIMIT = 1000  # rows sampled per index: estimates enough for the planner, milliseconds at 1M


def refresh_statistics(engine: sa.Engine, *, full: bool) -> None:
    """Refresh the planner statistics of the table a sweep grows: escalations. Without them SQLite takes a
    day's new escalations by their rule (every row of it) instead of by their id range, and PostgreSQL,
    until autovacuum comes round, anti-joins the whole table instead of probing the dedupe key.
    SQLite: after every sweep that wrote rows, `ANALYZE escalations` sampled (`analysis_limit`: a few
    milliseconds at a million rows). PostgreSQL: after a full day (the first sweep, or the rules changed:
    most rows at once), `ANALYZE escalations` (a sample); the daily few are left to autovacuum."""
    if engine.dialect.name == "postgresql" and not full:
        return
    with _write(engine) as conn:  # begun as a writer: on SQLite it writes sqlite_stat1 while fires go on
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(f"PRAGMA analysis_limit = {SQLITE_ANALYSIS_LIMIT}")
        conn.exec_driver_sql("ANALYZE escalations")
