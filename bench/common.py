"""Helpers the benchmarks (and the replica tests) share: the machine's description, throwaway PostgreSQL
clusters (one server, or a primary with its streaming standby), fresh databases."""

from __future__ import annotations

import contextlib
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
from dataclasses import dataclass
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


def _as_postgres() -> list[str]:
    """The prefix that runs a server binary as the postgres user when we are root (initdb refuses root)."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@dataclass
class Cluster:
    """A throwaway PostgreSQL cluster in its own folder on its own port (the benchmarks' and the replica
    tests' servers; never the shared one)."""

    folder: Path
    port: int
    options: str = "-c fsync=on -c max_connections=200"

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def server(self) -> str:
        """The URL without a database name."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"

    def run(self, binary: str, *args: str) -> None:
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
        done = subprocess.run([*_as_postgres(), str(PG_BIN / binary), *args], timeout=300, **quiet)  # type: ignore[call-overload]
        if done.returncode:
            raise RuntimeError(f"{binary} {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 {self.options}"
        self.run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    @classmethod
    def folder_for(cls, prefix: str) -> Path:
        folder = Path(tempfile.mkdtemp(prefix=prefix))
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
        os.chmod(folder, 0o755)
        return folder

    @classmethod
    def initdb(cls, prefix: str = "dabiao-bench-pg-", options: str | None = None) -> Cluster:
        """A new cluster (initdb, trust authentication for the local user postgres), not started."""
        cluster = cls(cls.folder_for(prefix), _free_port(), *([options] if options is not None else []))
        cluster.run("initdb", "-D", str(cluster.data), "-U", "postgres", "-A", "trust", "-N")
        return cluster

    def standby(self, prefix: str = "dabiao-standby-pg-") -> Cluster:
        """A streaming hot standby of this (started) cluster: `pg_basebackup -R` (it writes the
        primary_conninfo and standby.signal), not started."""
        standby = Cluster(self.folder_for(prefix), _free_port(), self.options)
        standby.run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-D", str(standby.data),
            "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        return standby

    def remove(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):  # not running
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


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
    cluster = Cluster.initdb()
    cluster.start()
    try:
        yield cluster.server
    finally:
        cluster.remove()


def standby_missing() -> str | None:
    """Why `primary_and_standby` can give no pair here, or None when it can."""
    needed = ("initdb", "pg_ctl", "pg_basebackup")
    absent = [name for name in needed if not (PG_BIN / name).exists()]
    return f"no {', '.join(absent)} in {PG_BIN} (DABIAO_BENCH_PG_BIN)" if absent else None


@contextmanager
def primary_and_standby(options: str = "-c max_connections=100") -> Iterator[tuple[Cluster, Cluster]]:
    """A throwaway primary and its streaming hot standby, both started, removed after (always clusters of
    our own, even when DABIAO_BENCH_PG_URL names a server: the tests stop and pause the standby)."""
    missing = standby_missing()
    if missing:
        raise RuntimeError(missing)
    primary = Cluster.initdb("dabiao-primary-pg-", options)
    standby: Cluster | None = None
    try:
        primary.start()
        standby = primary.standby()
        standby.start()
        yield primary, standby
    finally:
        if standby is not None:
            standby.remove()
        primary.remove()


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
