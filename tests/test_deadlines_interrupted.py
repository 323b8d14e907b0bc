"""A sweep killed with SIGKILL half-way (`dabiao sweep` in a subprocess) and run again ends exactly where
one clean run ends: the rules that committed are not written twice, the others are written once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from tests.deadline_helpers import bulk_firms, forget_sweeps, snapshot, sweep_runs
from workflow.campaign import Campaign
from workflow.db import make_engine
from workflow.tables import SWEEP_RUNS

DABIAO = str(Path(sys.executable).parent / "dabiao")
AS_OF = "2023-11-02"


def run_sweep(db_url: str) -> None:
    """Run `dabiao sweep` to the end (waiting out the killed run's lock on PostgreSQL)."""
    deadline = time.monotonic() + 30
    while True:
        done = subprocess.run(
            [DABIAO, "--database-url", db_url, "sweep", "--as-of", AS_OF], capture_output=True, text=True, timeout=120
        )
        if done.returncode == 0:
            return
        assert "sweep_busy" in done.stderr + done.stdout and time.monotonic() < deadline, done.stderr + done.stdout
        time.sleep(0.2)


def committed_rules(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        row = conn.execute(sa.select(SWEEP_RUNS.c.counts, SWEEP_RUNS.c.status)).first()
    return set() if row is None else set(row.counts or {})


class WriteBlock:
    """Hold every table the sweep writes, so the subprocess stops at its next write."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.sqlite: sqlite3.Connection | None = None
        self.pg: sa.Connection | None = None
        self.pg_engine: sa.Engine | None = None

    def __enter__(self) -> WriteBlock:
        if self.db_url.startswith("sqlite"):
            # Ask for the write lock again at once each time it is busy: SQLite's own busy handler sleeps between
            # tries, and a fast sweep can take the lock back between its rules every time, finishing the run.
            self.sqlite = sqlite3.connect(self.db_url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
            give_up = time.monotonic() + 30
            while True:
                try:
                    self.sqlite.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError:
                    if time.monotonic() > give_up:
                        raise
        else:
            self.pg_engine = make_engine(self.db_url)
            self.pg = self.pg_engine.connect()
            self.pg.exec_driver_sql("LOCK TABLE escalations, outbox, referrals, sweep_runs IN SHARE ROW EXCLUSIVE MODE")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.sqlite is not None:
            self.sqlite.execute("ROLLBACK")
            self.sqlite.close()
        if self.pg is not None and self.pg_engine is not None:
            self.pg.rollback()
            self.pg.close()
            self.pg_engine.dispose()


def test_a_sweep_killed_half_way_and_run_again_equals_one_clean_run(
    engine: sa.Engine, db_url: str, campaign: Campaign
) -> None:
    bulk_firms(engine, 3000, seed=21, key_field=True)  # never notified, never started
    bulk_firms(engine, 3000, seed=22, key_field=False, notified=True)  # above size, never started

    proc = subprocess.Popen(
        [DABIAO, "--database-url", db_url, "sweep", "--as-of", AS_OF],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        give_up = time.monotonic() + 60
        while "mobilization" not in committed_rules(engine):
            assert proc.poll() is None, "the sweep ended before it could be interrupted"
            assert time.monotonic() < give_up
            time.sleep(0.002)
        with WriteBlock(db_url):
            time.sleep(0.3)  # the sweep is now waiting for its next write
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    [run] = sweep_runs(engine)
    assert run.status == "running"  # it really stopped half-way …
    done = committed_rules(engine)
    assert "mobilization" in done and "creation_end" not in done  # … with some rules committed, not all

    run_sweep(db_url)
    resumed = snapshot(engine)
    [run] = sweep_runs(engine)
    assert (run.status, run.runs) == ("finished", 2)
    assert len(resumed["escalations"]) > 3000 * 3

    forget_sweeps(engine)
    run_sweep(db_url)
    assert snapshot(engine) == resumed
