"""The scheduler as a clock: its jobs are registered in one place; on PostgreSQL two schedulers sweep
each day once between them, and when the leader dies the other takes over."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from deadlines.scheduler import Jobs, Leadership, register_jobs, start_background
from tests.deadline_helpers import bulk_firms, days, escalation_days, sweep_runs
from tests.factories import make_firm
from workflow.campaign import Campaign
from workflow.clock import FixedClock, SystemClock, today
from workflow.db import make_engine
from workflow.settings import Settings
from workflow.tables import OUTBOX


def settings_for(db_url: str, tmp_path: Path, **kw: object) -> Settings:
    return Settings(database_url=db_url, mail_dir=tmp_path / "mail", **kw)  # type: ignore[arg-type]


def test_every_job_is_registered_in_one_place(tmp_path: Path, campaign: Campaign, db_url: str) -> None:
    settings = settings_for(db_url, tmp_path, sweep_time="03:15", digest_time="07:45", dispatch_interval_seconds=9)
    engine = make_engine(db_url)
    scheduler = BackgroundScheduler(timezone=settings.tz)
    jobs = Jobs(engine=engine, campaign=campaign, settings=settings, leadership=Leadership(engine))
    register_jobs(scheduler, jobs)
    registered = {job.id: job for job in scheduler.get_jobs()}
    assert set(registered) == {"sweep", "sweep-catch-up", "dispatch", "digest"}
    sweep_trigger, digest_trigger = registered["sweep"].trigger, registered["digest"].trigger
    assert isinstance(sweep_trigger, CronTrigger) and isinstance(digest_trigger, CronTrigger)
    fields = {
        t: {f.name: str(f) for f in trig.fields} for t, trig in (("sweep", sweep_trigger), ("digest", digest_trigger))
    }
    assert (fields["sweep"]["hour"], fields["sweep"]["minute"]) == ("3", "15")
    assert (fields["digest"]["hour"], fields["digest"]["minute"]) == ("7", "45")
    assert str(sweep_trigger.timezone) == "Asia/Shanghai"
    dispatch = registered["dispatch"].trigger
    assert isinstance(dispatch, IntervalTrigger) and dispatch.interval == dt.timedelta(seconds=9)
    engine.dispose()


def test_a_background_scheduler_catches_up_at_start(tmp_path: Path, campaign: Campaign, db_url: str) -> None:
    engine = make_engine(db_url)
    make_firm(engine, key_field=True)
    scheduler, jobs = start_background(engine, campaign=campaign, settings=settings_for(db_url, tmp_path))
    try:
        give_up = time.monotonic() + 20
        while not [r for r in sweep_runs(engine) if r.status == "finished"]:
            assert time.monotonic() < give_up, "the catch-up sweep did not run"
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
        jobs.leadership.release()
    assert [r.as_of for r in sweep_runs(engine)] == [today(SystemClock())]
    # the firm, long past its milestone, is escalated up to the city
    steps = sorted(k.rsplit(":", 1)[1] for k in escalation_days(engine) if k.startswith("key_field_started"))
    assert steps == ["city", "district", "firm"]
    engine.dispose()


def test_the_dispatch_job_hands_the_outbox_to_notifications(tmp_path: Path, campaign: Campaign, db_url: str) -> None:
    engine = make_engine(db_url)
    make_firm(engine, key_field=True)
    settings = settings_for(db_url, tmp_path)
    jobs = Jobs(engine=engine, campaign=campaign, settings=settings, leadership=Leadership(engine))
    jobs.sweep()
    with engine.connect() as conn:
        pending = conn.execute(
            sa.select(sa.func.count()).select_from(OUTBOX).where(OUTBOX.c.status == "pending")
        ).scalar_one()
    assert pending > 0
    jobs.dispatch()
    with engine.connect() as conn:
        statuses = set(conn.execute(sa.select(OUTBOX.c.status)).scalars())
    assert "pending" not in statuses
    jobs.leadership.release()
    engine.dispose()


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_two_schedulers_sweep_each_day_once(db_url: str, campaign: Campaign, tmp_path: Path) -> None:
    pg_schema_url = db_url
    setup = make_engine(pg_schema_url)
    bulk_firms(setup, 300, seed=31, key_field=True)
    settings = settings_for(pg_schema_url, tmp_path)
    current = {"day": dt.date(2023, 1, 1)}
    schedulers = []
    for _ in range(2):  # two processes' worth: separate engines, separate leadership
        engine = make_engine(pg_schema_url)
        schedulers.append(
            Jobs(
                engine=engine,
                campaign=campaign,
                settings=settings,
                leadership=Leadership(engine),
                clock=lambda: FixedClock.on(current["day"], hour=2),
            )
        )

    def tick() -> list[int]:
        """Both schedulers' sweep jobs fire at the same moment; returns how many days each swept."""
        barrier = threading.Barrier(2)
        swept = [0, 0]

        def run(n: int) -> None:
            barrier.wait()
            swept[n] = len(schedulers[n].sweep())

        threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        return swept

    first = tick()
    assert sorted(first) == [0, 1]
    leader = first.index(1)
    for day in days(dt.date(2023, 1, 2), dt.date(2023, 1, 4)):
        current["day"] = day
        assert tick() == [1 if n == leader else 0 for n in range(2)]

    # the leader dies (its connections go away); the other takes the lead at its next run
    schedulers[leader].engine.dispose()
    schedulers[leader].leadership._close()
    follower = 1 - leader
    current["day"] = dt.date(2023, 1, 7)  # two days missed meanwhile
    give_up = time.monotonic() + 20
    while not (swept := schedulers[follower].sweep()):  # the server frees the lock once it sees the loss
        assert time.monotonic() < give_up, "the other scheduler never took the lead"
        time.sleep(0.1)
    assert [r.as_of for r in swept] == days(dt.date(2023, 1, 5), dt.date(2023, 1, 7))

    runs = sweep_runs(setup)
    assert [r.as_of for r in runs] == days(dt.date(2023, 1, 1), dt.date(2023, 1, 7))
    assert {(r.status, r.runs) for r in runs} == {("finished", 1)}
    with setup.connect() as conn:
        firm_steps = conn.execute(sa.text("SELECT count(*) FROM escalations WHERE step = 'firm'")).scalar()
    assert firm_steps == 300
    for jobs in schedulers:
        jobs.leadership.release()
        jobs.engine.dispose()
    setup.dispose()


def test_dabiao_scheduler_runs_alone_and_stops_on_sigterm(tmp_path: Path, campaign: Campaign, db_url: str) -> None:
    import os
    import signal
    import subprocess
    import sys

    engine = make_engine(db_url)
    make_firm(engine, key_field=True)
    env = {**os.environ, "DABIAO_DATABASE_URL": db_url, "DABIAO_MAIL_DIR": str(tmp_path / "mail")}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dabiao"), "scheduler"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        give_up = time.monotonic() + 30
        while not [r for r in sweep_runs(engine) if r.status == "finished"]:
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < give_up, "the scheduler did not catch up at start"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "scheduler stopped" in output
    assert [r.as_of for r in sweep_runs(engine)] == [today(SystemClock())]
    engine.dispose()
