"""Helpers for killing real `dabiao` processes at the worst moment: wait until a subprocess is inside its
write transaction, then SIGKILL it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from workflow.db import make_engine

DABIAO = str(Path(sys.executable).parent / "dabiao")
ROOT = Path(__file__).resolve().parents[2]


def dabiao(
    db_url: str, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DABIAO, "--database-url", db_url, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )


def start(argv: list[str], *, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})}, cwd=ROOT
    )


def writing(db_url: str, table: str) -> bool:
    """Does another connection hold an open write transaction (SQLite: the write lock; PostgreSQL: a row
    lock on `table`)?"""
    if db_url.startswith("sqlite"):
        probe = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError as exc:
            return "locked" in str(exc)
        finally:
            probe.close()
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            held = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks WHERE relation = CAST(:t AS regclass) "
                    "AND mode = 'RowExclusiveLock' AND pid <> pg_backend_pid()"
                ),
                {"t": table},
            ).scalar()
        return bool(held)
    finally:
        engine.dispose()


def kill_when(
    proc: subprocess.Popen[bytes], ready: Callable[[], bool], *, after: float = 0.0, within: float = 120
) -> bool:
    """SIGKILL `proc` `after` seconds once `ready()` holds; False when it ended first (nothing to interrupt)."""
    give_up = time.monotonic() + within
    while not ready():
        if proc.poll() is not None:
            return False
        assert time.monotonic() < give_up, "the process never reached the point to kill it at"
        time.sleep(0.002)
    time.sleep(after)
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return proc.returncode == -signal.SIGKILL
