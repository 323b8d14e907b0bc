"""Two schedulers running side by side for a simulated week (one leads; each day is swept once), and the
disk filling up during a sweep (SQLite's max_page_count: the database cannot grow past a limit) with nothing
half-written and a clean finish once there is room again."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from deadlines.scheduler import Jobs, Leadership
from deadlines.sweep import sweep
from tests.deadline_helpers import bulk_firms, days, forget_sweeps, snapshot, sweep_runs
from tests.reliability.conftest import Ledger, backend_of
from workflow.campaign import Campaign
from workflow.clock import FixedClock
from workflow.context import Context
from workflow.db import make_engine
from workflow.settings import Settings

WEEK = days(dt.date(2022, 12, 26), dt.date(2023, 1, 1))  # across the 31 December milestone


def test_two_schedulers_side_by_side_for_a_week_sweep_each_day_once(
    engine: sa.Engine, db_url: str, campaign: Campaign, tmp_path: Path, ledger: Ledger
) -> None:
    bulk_firms(engine, 300, seed=51, key_field=True)
    settings = Settings(database_url=db_url, mail_dir=tmp_path / "mail")
    today = [WEEK[0]]
    engines = [make_engine(db_url), make_engine(db_url)]
    schedulers = [
        Jobs(
            engine=e,
            campaign=campaign,
            settings=settings,
            leadership=Leadership(e),
            clock=lambda: FixedClock.on(today[0], hour=2),
        )
        for e in engines
    ]
    swept_by: list[list[int]] = []
    try:
        for day in WEEK:
            today[0] = day
            start = threading.Barrier(2)
            reports: list[list[object]] = [[], []]

            def run(n: int, start: threading.Barrier = start, reports: list[list[object]] = reports) -> None:
                start.wait()
                reports[n] = list(schedulers[n].sweep())

            threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            swept_by.append([n for n in range(2) if reports[n]])
            runs = [r for r in sweep_runs(engine) if r.as_of == day]
            assert len(runs) == 1 and runs[0].status == "finished" and runs[0].runs == 1, (day, runs)
    finally:
        for s in schedulers:
            s.leadership.release()
        for e in engines:
            e.dispose()
    assert [r.as_of for r in sweep_runs(engine)] == WEEK
    assert all(len(who) == 1 for who in swept_by)  # each day one of them swept, the other found it done
    leaders = {who[0] for who in swept_by}
    assert leaders == {0} or leaders == {1}  # the same one leads all week; the other never sweeps
    with engine.connect() as conn:
        from workflow.tables import OUTBOX

        overdue = Counter(
            conn.execute(sa.select(OUTBOX.c.dedupe_key).where(OUTBOX.c.kind == "deadline_overdue")).scalars()
        )
    assert len(overdue) == 300 and set(overdue.values()) == {1}
    ledger.record(
        "time",
        "two schedulers side by side for a simulated week (26 Dec 2022 – 1 Jan 2023, across a milestone), "
        "both starting each day's sweep at the same instant",
        backend=backend_of(db_url),
        tries=len(WEEK),
        detail=f"each day swept once (one sweep run, runs = 1); swept by scheduler {[w[0] for w in swept_by]}"
        + " — the leader, all week (PostgreSQL: an advisory lock; SQLite: a file lock beside the database)"
        + f"; {len(overdue)} overdue notices, one per firm",
    )  # fmt: skip


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_disk_fills_during_a_sweep_and_nothing_is_half_written(
    engine: sa.Engine, db_url: str, campaign: Campaign, ledger: Ledger
) -> None:
    day = dt.date(2023, 11, 2)
    bulk_firms(engine, 1500, seed=61, key_field=True)
    bulk_firms(engine, 1500, seed=62, key_field=False, notified=True)
    sweep(engine, context=Context(campaign, FixedClock.on(day, hour=2)), through=day, again=True)
    clean = snapshot(engine)
    per_rule = Counter(r[1] for r in clean["escalations"])
    path = db_url.removeprefix("sqlite:///")
    failures = []
    for room in (4, 40, 150, 400, 800):  # pages the database may still grow by
        forget_sweeps(engine)
        engine.dispose()
        with sqlite3.connect(path) as raw:
            raw.execute("VACUUM")
            pages = raw.execute("PRAGMA page_count").fetchone()[0]
        full = make_engine(db_url)

        @sa.event.listens_for(full, "connect")
        def _limit(dbapi_conn: sqlite3.Connection, _record: object, limit: int = pages + room) -> None:
            dbapi_conn.execute(f"PRAGMA max_page_count = {limit}")

        with pytest.raises(sa.exc.OperationalError, match="full") as refused:
            sweep(full, context=Context(campaign, FixedClock.on(day, hour=2)), through=day, again=True)
        full.dispose()
        failures.append(str(refused.value.orig))
        seen = snapshot(engine)
        for table, rows in seen.items():
            assert {repr(r) for r in rows} <= {repr(r) for r in clean[table]}, table
        rules = Counter(r[1] for r in seen["escalations"])
        assert all(rules[rule] == per_rule[rule] for rule in rules)  # each rule whole, or absent
        sweep(engine, context=Context(campaign, FixedClock.on(day, hour=2)), through=day, again=True)
        assert snapshot(engine) == clean  # with room again, the sweep ends where a clean one ends
    ledger.record(
        "disk full",
        "the database cannot grow (SQLite `PRAGMA max_page_count`: 4 to 800 pages of room) during a sweep "
        "over 3,000 firms, then room again",
        backend="SQLite",
        tries=len(failures),
        detail=f"each sweep failed with “{failures[0]}”; every rule's rows were all there or absent; the next "
        f"sweep ended equal to a clean one ({len(clean['escalations']):,} escalations)",
    )
