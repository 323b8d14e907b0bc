"""Helpers the benchmarks share: the machine's description, a throwaway PostgreSQL, fresh databases."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_BIN = Path(os.environ.get("DABIAO_BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))


def machine() -> str:
    """One line naming the machine: CPU model, cores, memory, OS, Python."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores{mem}, {system}, Python {platform.python_version()}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_missing() -> str | None:
    """Why `postgres_server` can give no server here, or None when it can (a benchmark may then skip it)."""
    if os.environ.get("DABIAO_BENCH_PG_URL") or (PG_BIN / "initdb").exists():
        return None
    return f"no PostgreSQL binaries in {PG_BIN} and DABIAO_BENCH_PG_URL not set"


@contextmanager
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server URL (without a database name) that the benchmark may load as it likes:
    `DABIAO_BENCH_PG_URL` when set, else a throwaway cluster started here (initdb + pg_ctl) and removed after."""
    given = os.environ.get("DABIAO_BENCH_PG_URL")
    if given:
        yield given.rstrip("/")
        return
    missing = postgres_missing()
    if missing:
        raise SystemExit(f"{missing}: set DABIAO_BENCH_PG_URL or DABIAO_BENCH_PG_BIN")
    folder = Path(tempfile.mkdtemp(prefix="dabiao-bench-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root
        shutil.chown(folder, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run(
        [*as_postgres, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"], check=True, **quiet
    )  # type: ignore[call-overload]
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200"
    subprocess.run(
        [
            *as_postgres,
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(folder / "log"),
            "-w",
            "start",
        ],
        check=True,
        **quiet,  # type: ignore[arg-type]
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], **quiet)  # type: ignore[call-overload]
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def fresh_pg_database(server: str) -> Iterator[str]:
    """A new, empty database on `server`, dropped afterwards."""
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{server}/{name}"
    finally:
        for _ in range(10):
            try:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                break
            except psycopg.Error:
                time.sleep(0.5)


def dbapi_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")
