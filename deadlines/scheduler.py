"""The scheduler is only a clock (APScheduler 3): it starts the daily sweep, the outbox dispatch and the
daily digest, and keeps no state of its own — the database knows what is due and which days were swept.

All jobs are registered in `register_jobs`, nowhere else. On PostgreSQL several schedulers may run: only
the one holding the leader's advisory lock (taken with `pg_try_advisory_lock` on a connection it keeps
open) works; when it dies its connection closes, the lock is free, and the next job of another scheduler
takes it over. On SQLite one process runs the scheduler (`dabiao serve` in-process, or `dabiao scheduler`).
"""

from __future__ import annotations

import fcntl
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from deadlines.sweep import SweepBusy, SweepRefused, SweepReport, advisory_key, sweep
from workflow.campaign import Campaign
from workflow.clock import Clock, SystemClock, today
from workflow.context import Context
from workflow.settings import Settings

log = logging.getLogger("dabiao.scheduler")
LEADER_LOCK = "scheduler-leader"


class Leadership:
    """Whether this process leads. PostgreSQL: holds a session advisory lock on a connection of its own."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._conn: sa.Connection | None = None
        self._file: IO[str] | None = None  # SQLite: the open, locked leader file
        self._mutex = threading.Lock()

    def ensure(self) -> bool:
        """True when this process leads (taking the lead if it is free). SQLite: an exclusive lock on a file
        beside the database, held while this scheduler runs (the system frees it when the process dies)."""
        if self.engine.dialect.name != "postgresql":
            return self._ensure_file()
        with self._mutex:
            if self._conn is not None:
                try:
                    self._conn.execute(sa.select(1))
                    self._conn.commit()
                    return True
                except sa.exc.DBAPIError:
                    log.warning("lost the leader's connection; trying to take the lead again")
                    self._close()
            conn = self.engine.connect()
            try:
                got = bool(conn.execute(sa.select(sa.func.pg_try_advisory_lock(advisory_key(LEADER_LOCK)))).scalar())
                conn.commit()
            except BaseException:
                conn.close()
                raise
            if not got:
                conn.close()
                return False
            log.info("this scheduler leads")
            self._conn = conn
            return True

    def _ensure_file(self) -> bool:
        path = self.engine.url.database
        if not path or path == ":memory:" or path.startswith("file:"):
            return True
        with self._mutex:
            if self._file is not None:
                return True
            handle = open(f"{path}.leader-lock", "a")  # noqa: SIM115 - held open while this process leads
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            log.info("this scheduler leads")
            self._file = handle
            return True

    def release(self) -> None:
        if self._file is not None:
            with self._mutex:
                if self._file is not None:
                    fcntl.flock(self._file, fcntl.LOCK_UN)
                    self._file.close()
                    self._file = None
        with self._mutex:
            if self._conn is not None:
                try:
                    self._conn.execute(sa.select(sa.func.pg_advisory_unlock(advisory_key(LEADER_LOCK))))
                    self._conn.commit()
                finally:
                    self._close()

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()  # never hand a connection holding the lock back to the pool
            finally:
                self._conn.close()
                self._conn = None

    @property
    def leading(self) -> bool:
        return self.engine.dialect.name != "postgresql" or self._conn is not None


@dataclass
class Jobs:
    """What the clock starts. Jobs carry ids and settings, never sessions; each does nothing unless leading."""

    engine: sa.Engine
    campaign: Campaign
    settings: Settings
    leadership: Leadership
    clock: Callable[[], Clock] = field(default=lambda: SystemClock())

    def sweep(self) -> list[SweepReport]:
        """Sweep every day not swept yet, through today, in order (a missed day is caught up)."""
        if not self.leadership.ensure():
            return []
        clock = self.clock()
        try:
            reports = sweep(
                self.engine, context=Context(self.campaign, clock, self.settings), through=today(clock), again=False
            )
        except SweepBusy as exc:
            log.info("sweep skipped: %s", exc)
            return []
        except SweepRefused as exc:  # the clock went backwards (or ahead of the database): harmless, say so
            log.warning("sweep refused: %s", exc)
            return []
        for report in reports:
            log.info("swept %s: %d rows written", report.as_of, report.written)
        return reports

    def dispatch(self) -> object:
        if not self.leadership.ensure():
            return None
        from notifications.dispatch import dispatch_once

        return dispatch_once(self.engine, settings=self.settings, clock=self.clock())

    def digest(self) -> int:
        if not self.leadership.ensure():
            return 0
        from notifications.digest import write_digests

        return write_digests(self.engine, context=Context(self.campaign, self.clock(), self.settings))


def _at(time_text: str, settings: Settings) -> CronTrigger:
    hour, minute = time_text.split(":")
    return CronTrigger(hour=int(hour), minute=int(minute), timezone=settings.tz)


def register_jobs(scheduler: BaseScheduler, jobs: Jobs) -> None:
    """Every scheduled job of Dabiao, registered here and only here."""
    settings = jobs.settings
    common = {"max_instances": 1, "coalesce": True, "replace_existing": True}
    scheduler.add_job(
        jobs.sweep,
        _at(settings.sweep_time, settings),
        id="sweep",
        name="daily deadline sweep",
        misfire_grace_time=None,
        **common,
    )
    # at start, catch up the days missed while no scheduler ran
    scheduler.add_job(jobs.sweep, id="sweep-catch-up", name="catch up missed sweeps", **common)
    scheduler.add_job(
        jobs.dispatch,
        IntervalTrigger(seconds=settings.dispatch_interval_seconds, timezone=settings.tz),
        id="dispatch",
        name="outbox dispatch",
        **common,
    )
    scheduler.add_job(
        jobs.digest,
        _at(settings.digest_time, settings),
        id="digest",
        name="daily digest",
        misfire_grace_time=3600,
        **common,
    )


def make_jobs(engine: sa.Engine, *, campaign: Campaign, settings: Settings) -> Jobs:
    return Jobs(engine=engine, campaign=campaign, settings=settings, leadership=Leadership(engine))


def run_blocking(engine: sa.Engine, *, campaign: Campaign, settings: Settings) -> None:
    """`dabiao scheduler`: run the clock in this process until stopped."""
    jobs = make_jobs(engine, campaign=campaign, settings=settings)
    scheduler = BlockingScheduler(timezone=settings.tz)
    register_jobs(scheduler, jobs)

    def stop(signum: int, _frame: object) -> None:  # SIGTERM (service managers) stops it like Ctrl-C
        log.info("signal %d: stopping the scheduler", signum)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    try:
        scheduler.start()
    finally:
        jobs.leadership.release()


def start_background(engine: sa.Engine, *, campaign: Campaign, settings: Settings) -> tuple[BackgroundScheduler, Jobs]:
    """For `dabiao serve`: the same jobs on a background thread; stop with `scheduler.shutdown()` and
    `jobs.leadership.release()`."""
    jobs = make_jobs(engine, campaign=campaign, settings=settings)
    scheduler = BackgroundScheduler(timezone=settings.tz)
    register_jobs(scheduler, jobs)
    scheduler.start()
    return scheduler, jobs
