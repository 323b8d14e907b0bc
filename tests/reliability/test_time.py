"""Time faults: the scheduler down for three days then started, a sweep asked for an earlier day than the
last (a clock moved backwards), and sweeps killed during a multi-day catch-up of the campaign."""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler

from deadlines.scheduler import Jobs, Leadership, register_jobs
from tests.deadline_helpers import bulk_firms, days, forget_sweeps, snapshot, sweep_on, sweep_runs
from tests.reliability.conftest import Ledger, backend_of
from tests.reliability.faults import DABIAO, dabiao, kill_when, start
from workflow.campaign import Campaign
from workflow.clock import FixedClock
from workflow.db import make_engine
from workflow.settings import Settings
from workflow.tables import OUTBOX, SWEEP_RUNS

D = dt.date
LAST_SWEPT = D(2022, 12, 28)


def test_a_scheduler_down_three_days_sweeps_each_missed_day_in_order(
    engine: sa.Engine, db_url: str, campaign: Campaign, tmp_path: Path, ledger: Ledger
) -> None:
    bulk_firms(engine, 200, seed=31, key_field=True)
    sweep_on(engine, campaign, LAST_SWEPT)  # the last day the scheduler ran
    back_on = LAST_SWEPT + dt.timedelta(days=4)  # down on the 29th, 30th and 31st; started on 1 January
    settings = Settings(database_url=db_url, mail_dir=tmp_path / "mail")
    own = make_engine(db_url)
    jobs = Jobs(engine=own, campaign=campaign, settings=settings, leadership=Leadership(own),
                clock=lambda: FixedClock.on(back_on, hour=2))  # fmt: skip
    scheduler = BackgroundScheduler(timezone=settings.tz)
    register_jobs(scheduler, jobs)
    scheduler.start()
    try:
        give_up = time.monotonic() + 60
        while len([r for r in sweep_runs(engine) if r.status == "finished"]) < 5:
            assert time.monotonic() < give_up, "the scheduler did not catch up"
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
        jobs.leadership.release()
        own.dispose()
    runs = sweep_runs(engine)
    assert [r.as_of for r in runs] == days(LAST_SWEPT, back_on)
    assert all(r.status == "finished" and r.runs == 1 for r in runs)
    caught_up = [r for r in runs if r.as_of > LAST_SWEPT]
    started = [r.started_at for r in sorted(caught_up, key=lambda r: r.id)]
    assert started == sorted(started) and [r.as_of for r in sorted(caught_up, key=lambda r: r.id)] == days(
        LAST_SWEPT + dt.timedelta(days=1), back_on
    )
    # the 31 December milestone passed while it was down: each firm's overdue notice exists, once
    with engine.connect() as conn:
        overdue = conn.execute(sa.select(OUTBOX.c.dedupe_key).where(OUTBOX.c.kind == "deadline_overdue")).scalars()
        per_firm = Counter(overdue)  # the dedupe key names the rule and the firm
    assert len(per_firm) == 200 and set(per_firm.values()) == {1}
    ledger.record(
        "time",
        "scheduler down three days (29–31 Dec 2022, across a milestone), then started",
        backend=backend_of(db_url),
        tries=1,
        detail="the catch-up job swept 29, 30, 31 Dec and 1 Jan in that order, each once; "
        f"{sum(per_firm.values())} overdue notices, one per firm",
    )


def test_a_sweep_for_an_earlier_day_is_refused_and_writes_nothing(
    engine: sa.Engine, db_url: str, campaign: Campaign, tmp_path: Path, ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    bulk_firms(engine, 100, seed=32, key_field=True)
    sweep_on(engine, campaign, D(2023, 1, 10))
    before = snapshot(engine)
    refused = 0
    for earlier in (D(2023, 1, 9), D(2022, 6, 1)):
        done = dabiao(db_url, "sweep", "--as-of", earlier.isoformat())
        assert done.returncode == 1 and "sweeps only move forward" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
        refused += 1
    future = dt.date.today() + dt.timedelta(days=30)
    done = dabiao(db_url, "sweep", "--as-of", future.isoformat())
    assert done.returncode == 1 and "in the future" in done.stderr and "Traceback" not in done.stderr
    refused += 1
    # the scheduler's clock moved backwards: its sweep job refuses, logs it, and writes nothing
    settings = Settings(database_url=db_url, mail_dir=tmp_path / "mail")
    jobs = Jobs(engine=engine, campaign=campaign, settings=settings, leadership=Leadership(engine),
                clock=lambda: FixedClock.on(D(2023, 1, 8), hour=2))  # fmt: skip
    try:
        with caplog.at_level(logging.WARNING):
            assert jobs.sweep() == []
    finally:
        jobs.leadership.release()
    assert "sweeps only move forward" in caplog.text
    refused += 1
    assert snapshot(engine) == before
    assert [(r.as_of, r.runs) for r in sweep_runs(engine)] == [(D(2023, 1, 10), 1)]
    ledger.record(
        "time",
        "sweep asked for an earlier day than the last (CLI twice, scheduler clock moved back) or a future day",
        backend=backend_of(db_url),
        tries=refused,
        detail="each refused with a readable message, no traceback; nothing written",
    )


def test_sweeps_killed_during_a_catch_up_end_as_one_clean_catch_up(
    engine: sa.Engine, db_url: str, campaign: Campaign, ledger: Ledger
) -> None:
    bulk_firms(engine, 1500, seed=33, key_field=True)
    bulk_firms(engine, 1500, seed=34, key_field=False, notified=True)
    first, last = D(2022, 11, 28), D(2022, 12, 10)  # the 30-day reminder of the 31 December milestone falls inside

    def swept_days() -> int:
        with engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(SWEEP_RUNS)).scalar_one())

    def run(day: D) -> None:
        give_up = time.monotonic() + 60
        while (done := dabiao(db_url, "sweep", "--as-of", day.isoformat())).returncode != 0:
            assert "sweep_busy" in done.stderr + done.stdout and time.monotonic() < give_up, done.stderr
            time.sleep(0.2)

    rng = random.Random(33)
    run(first)
    kills = 0
    for target in (3, 6, 9):  # kill the catch-up after it started its target-th day
        proc = start([DABIAO, "--database-url", db_url, "sweep", "--as-of", last.isoformat()])
        kills += kill_when(proc, lambda t=target: swept_days() >= t, after=rng.uniform(0, 0.2))
    run(last)
    interrupted = snapshot(engine)
    runs = sweep_runs(engine)
    assert [r.as_of for r in runs] == days(first, last) and {r.status for r in runs} == {"finished"}

    forget_sweeps(engine)
    run(first)
    run(last)
    assert snapshot(engine) == interrupted  # every reminder, escalation and referral exactly as one clean run
    with engine.connect() as conn:
        keys = list(conn.execute(sa.select(OUTBOX.c.dedupe_key)).scalars())
    assert len(keys) == len(set(keys))
    assert kills == 3
    ledger.record(
        "kill -9",
        "`dabiao sweep` catching up 12 days over 3,000 firms, killed mid-catch-up",
        backend=backend_of(db_url),
        tries=kills,
        detail=f"after restarts: escalations, {len(keys)} outbox rows and referrals identical to one clean "
        "catch-up; each due reminder once",
    )
