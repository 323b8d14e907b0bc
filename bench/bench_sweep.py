"""Deadline sweep speed and memory on SQLite and PostgreSQL, as ratios against one raw SQL statement that
finds the non-participating firms among the same firms, measured in the same run.

A synthetic city in the middle of the campaign (2023-03-15: key-field milestone passed, hazards open and
overdue, applications at every step) is written straight into a fresh database (the same rows on every
backend); a fresh interpreter then times, on that database:
  * the baseline: one raw statement through the driver (sqlite3, psycopg) listing the non-participating
    firms (id, district), best of 3;
  * the first sweep ever (every reminder, escalation step and referral the record calls for is written);
  * the next day's sweep (the daily case: the steps falling on that day, and what changed);
  * the same day swept again, best of 3 (everything evaluated, nothing left to write: the cost of looking);
  * the same day swept again with `full` (every rule over every subject, as after a change of the rules);
  * a second baseline: the raw driver writing the daily sweep's rows again (the cost of the writes alone);
and reports its own peak memory (ru_maxrss).

PostgreSQL is a throwaway cluster (initdb + pg_ctl) or the server named by DABIAO_BENCH_PG_URL, see
bench/common.py; without either it is skipped, saying so.

    .venv/bin/python bench/bench_sweep.py [--firms 100000,1000000] [--backend sqlite,postgres] [--seed 7]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import dbapi_url, fresh_pg_database, postgres_missing, postgres_server
from workflow.context import Context

AS_OF = dt.date(2023, 3, 15)
UTC_FMT = "%Y-%m-%d %H:%M:%S.%f"
BACKENDS = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
DRIVERS = {"sqlite": "sqlite3", "postgres": "psycopg"}  # the raw baselines' drivers
MEASURE_URL = "DABIAO_BENCH_SWEEP_URL"  # the database the measuring child opens

Row = tuple[object, ...]
ENTERPRISE_COLUMNS = (
    "uscc, name, district_code, sector, key_field, above_size, principal, phone, email, lang, state, version, "
    "state_since, notified_at, event_count, chain_head, created_at, updated_at"
)
HAZARD_COLUMNS = (
    "enterprise_id, source, description, severity, responsible_person, measures, funds, deadline, emergency_plan, "
    "status, reported_at"
)
APPLICATION_COLUMNS = (
    "enterprise_id, status, materials, submitted_at, verified_at, audit_passed_at, reviewed_at, review_score"
)


class City:
    """The synthetic city's rows, in the backends' own types (booleans, dates, aware UTC instants). The
    firms are generated while they are written, never held; their hazards and applications (a few per
    hundred firms) are collected on the way and written after them."""

    STARTED_STATES = (
        ["self_assessing"] * 30 + ["rectifying"] * 25 + ["applied"] * 8 + ["verified"] * 7
        + ["reviewed"] * 3 + ["certified"] * 22 + ["closed"] * 5
    )  # fmt: skip

    def __init__(self, firms: int, seed: int, districts: list[str], weights: list[float]) -> None:
        self.firms = firms
        self.rng = random.Random(seed)
        self.minutes = random.Random(seed + 1)  # the instants' minutes and seconds, apart from the city's draws
        self.districts, self.weights = districts, weights
        self.hazards: list[Row] = []
        self.applications: list[Row] = []
        self.non_participating = 0

    def instant(self, day: dt.date, hour: int = 4) -> dt.datetime:
        minute, second = self.minutes.randint(0, 59), self.minutes.randint(0, 59)
        return dt.datetime.combine(day, dt.time(hour, minute, second), tzinfo=dt.UTC)

    def tables(self) -> Iterator[tuple[str, str, Iterator[Row] | list[Row]]]:
        """(table, columns, rows) in writing order; the hazards and applications are complete once the
        firms' rows have been consumed."""
        from workflow.models import GENESIS_HASH

        yield "enterprises", ENTERPRISE_COLUMNS, self.enterprises(GENESIS_HASH)
        yield "hazards", HAZARD_COLUMNS, self.hazards
        yield "applications", APPLICATION_COLUMNS, self.applications

    def enterprises(self, genesis: str) -> Iterator[Row]:
        rng, instant = self.rng, self.instant
        for n in range(1, self.firms + 1):
            key = rng.random() < 0.10
            above = rng.random() < (0.25 if key else 0.065)
            share_started = 0.85 if key else 0.5 if above else 0.1
            state = rng.choice(self.STARTED_STATES) if rng.random() < share_started else "mobilized"
            if state == "mobilized" and (key or above):
                self.non_participating += key
            notified = state != "mobilized" or rng.random() < 0.98
            since = AS_OF - dt.timedelta(days=rng.randint(1, 300))
            if state == "rectifying":
                for _ in range(2):
                    deadline = AS_OF + dt.timedelta(days=rng.randint(-90, 60))
                    severity = "major" if rng.random() < 0.1 else "general"
                    self.hazards.append(
                        (n, "self", "隐患", severity, "李四", "整改", 1000, deadline, "预案", "open", instant(since))
                    )
            elif state in ("applied", "verified", "reviewed", "certified"):
                submitted = AS_OF - dt.timedelta(days=rng.randint(1, 40))
                step = dt.timedelta(days=rng.randint(1, 20))
                self.applications.append(
                    (
                        n,
                        state,
                        "[]",
                        instant(submitted),
                        instant(submitted + step) if state != "applied" else None,
                        instant(submitted + 2 * step) if state in ("reviewed", "certified") else None,
                        instant(submitted + 3 * step) if state in ("reviewed", "certified") else None,
                        80.0 if state in ("reviewed", "certified") else None,
                    )
                )
            yield (
                f"91320{n:013d}",
                f"常州基准{n}有限公司",
                rng.choices(self.districts, self.weights)[0],
                "chemical" if key else "machinery",
                key,
                above,
                "张三",
                "13900000000",
                f"f{n}@example.com" if rng.random() < 0.85 else None,
                "zh-CN",
                state,
                1,
                instant(since),
                instant(dt.date(2022, 2, 10), rng.randint(0, 23)) if notified else None,
                0,
                genesis,
                instant(dt.date(2022, 1, 4)),
                instant(since),
            )


def build(url: str, firms: int, seed: int) -> dict[str, int]:
    """Migrate a fresh database and fill it with `firms` firms mid-campaign (rows streamed, never listed)."""
    from workflow.campaign import load_campaign, sync_districts
    from workflow.db import make_engine, migrate
    from workflow.settings import DEFAULT_CAMPAIGN

    campaign = load_campaign(DEFAULT_CAMPAIGN)
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        sync_districts(conn, campaign)
    dialect = engine.dialect.name
    engine.dispose()

    city = City(firms, seed, [d.code for d in campaign.districts], [d.weight for d in campaign.districts])
    (write_sqlite if dialect == "sqlite" else write_postgres)(url, city)
    return {
        "firms": firms,
        "hazards": len(city.hazards),
        "applications": len(city.applications),
        "non_participating": city.non_participating,
    }


def sqlite_value(value: object) -> object:
    """As SQLAlchemy stores it on SQLite: instants as naive UTC text, dates as ISO text, booleans as 0/1."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime(UTC_FMT)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def write_sqlite(url: str, city: City) -> None:
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    for table, columns, rows in city.tables():
        marks = ", ".join("?" * len(columns.split(",")))
        conn.executemany(
            f"INSERT INTO {table} ({columns}) VALUES ({marks})", (tuple(map(sqlite_value, row)) for row in rows)
        )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def write_postgres(url: str, city: City) -> None:
    """One COPY per table in one transaction, rows handed to psycopg one by one as they are generated."""
    import psycopg

    with psycopg.connect(dbapi_url(url)) as conn, conn.cursor() as cur:
        for table, columns, rows in city.tables():
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    with psycopg.connect(dbapi_url(url), autocommit=True) as conn:
        conn.execute("ANALYZE")


def database_mb(url: str) -> float:
    if url.startswith("sqlite"):
        return Path(url.removeprefix("sqlite:///")).stat().st_size / 2**20
    import psycopg

    with psycopg.connect(dbapi_url(url)) as conn:
        return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]) / 2**20  # type: ignore[index]


def measure(url: str) -> dict[str, float]:
    """In a fresh interpreter: baseline, first sweep, next day's sweep, peak memory."""
    from deadlines.sweep import sweep
    from workflow.campaign import load_campaign
    from workflow.clock import FixedClock
    from workflow.db import make_engine
    from workflow.settings import DEFAULT_CAMPAIGN

    campaign = load_campaign(DEFAULT_CAMPAIGN)
    key_milestone = next(m.date for m in campaign.milestones if m.applies_to == "key_field")
    other_milestone = next(m.date for m in campaign.milestones if m.applies_to == "non_key_above_size")
    baseline, found = raw_baseline(url, key_milestone, other_milestone)

    engine = make_engine(url)
    timings: dict[str, float] = {"baseline": baseline, "non_participating": found}
    next_day = AS_OF + dt.timedelta(days=1)
    marks: dict[str, int] = {}
    runs = (
        ("first_sweep", AS_OF, 1, False),
        ("daily_sweep", next_day, 1, False),
        ("daily_rerun", next_day, 3, False),
        ("full_rerun", next_day, 3, True),
    )
    for label, day, repeat, full in runs:
        if label == "daily_sweep":  # where the day's rows begin, for the raw copy below
            marks = {table: last_id(engine, table) for table in ("escalations", "outbox")}
        best = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            [report] = sweep(engine, context=Context(campaign, FixedClock.on(day, hour=2)), through=day, full=full)
            best = min(best, time.perf_counter() - started)
        timings[label] = best
        timings[f"{label}_rows"] = report.written
        if label == "first_sweep" and engine.dialect.name == "sqlite":
            with engine.connect() as conn:  # its writes' checkpoint is its own, not the next day's
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    timings["raw_writes"], timings["raw_writes_rows"] = raw_copy(url, marks)
    timings["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return timings


BASELINE = (
    "SELECT id, district_code FROM enterprises WHERE state = 'mobilized' AND "
    "((key_field = {true} AND {p} > {p}) OR (key_field = {false} AND above_size = {true} AND {p} > {p}))"
)


def raw_baseline(url: str, key_milestone: dt.date, other_milestone: dt.date) -> tuple[float, int]:
    """The non-participating firms by one raw statement through the driver alone, best of 3."""
    if url.startswith("sqlite"):
        raw = sqlite3.connect(url.removeprefix("sqlite:///"))
        query = BASELINE.format(true=1, false=0, p="?")
        params: tuple[object, ...] = (AS_OF.isoformat(), key_milestone.isoformat())
        params += (AS_OF.isoformat(), other_milestone.isoformat())
    else:
        import psycopg

        raw = psycopg.connect(dbapi_url(url), autocommit=True)  # type: ignore[assignment]
        query = BASELINE.format(true="true", false="false", p="%s")
        params = (AS_OF, key_milestone, AS_OF, other_milestone)
    best, found = float("inf"), 0
    for _ in range(3):
        started = time.perf_counter()
        found = len(raw.execute(query, params).fetchall())
        best = min(best, time.perf_counter() - started)
    raw.close()
    return best, found


def last_id(engine: object, table: str) -> int:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table}").scalar())


RAW_COLUMNS = {
    "escalations": "rule, subject_kind, subject_id, enterprise_id, district_code, step, deadline, days_overdue, "
    "status, detail, created_at",
    "outbox": "kind, audience, enterprise_id, district_code, to_address, lang, context, status, attempts, "
    "next_attempt_at, created_at",
}


def raw_copy(url: str, marks: dict[str, int]) -> tuple[float, int]:
    """The second baseline: the rows the daily sweep wrote (escalation steps, reminders, notices), written
    again by the raw driver — one INSERT … SELECT per table with fresh dedupe keys, one transaction, the
    same indexes (and on SQLite the same checkpointing) — so the cost of the day's writes themselves is seen."""
    statement = (
        "INSERT INTO {table} (dedupe_key, {columns}) SELECT dedupe_key || ':raw', {columns} "
        "FROM {table} WHERE id > {p} AND dedupe_key NOT LIKE {p}"
    )
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("PRAGMA synchronous=NORMAL")
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        rows = sum(
            conn.execute(statement.format(table=t, columns=RAW_COLUMNS[t], p="?"), (since, "%:raw")).rowcount
            for t, since in marks.items()
        )
        conn.execute("COMMIT")
        took = time.perf_counter() - started
        conn.close()
        return took, rows
    import psycopg

    with psycopg.connect(dbapi_url(url)) as pg:
        started = time.perf_counter()
        rows = sum(
            pg.execute(statement.format(table=t, columns=RAW_COLUMNS[t], p="%s"), (since, "%:raw")).rowcount
            for t, since in marks.items()
        )
        pg.commit()
        took = time.perf_counter() - started
    return took, rows


def run(backend: str, url: str, firms: int, seed: int) -> list[str]:
    """Build the city into the empty database at `url`, measure it in a fresh interpreter, and report."""
    started = time.perf_counter()
    counts = build(url, firms, seed)
    out = [
        f"== {BACKENDS[backend]}, {firms:,} firms",
        f"built {counts['firms']:,} firms, {counts['hazards']:,} hazards, {counts['applications']:,} applications "
        f"in {time.perf_counter() - started:.1f} s ({database_mb(url):.0f} MB)",
    ]
    child = subprocess.run(
        [sys.executable, __file__, "--measure"], env={**os.environ, MEASURE_URL: url}, capture_output=True, text=True
    )
    if child.returncode:
        raise SystemExit(child.stderr)
    t = json.loads(child.stdout.strip().splitlines()[-1])
    base = t["baseline"]
    found = int(t["non_participating"])
    out.append(f"baseline: one raw SQL statement finding {found:,} non-participating firms: {base:.3f} s")
    labels = {
        "first_sweep": "first sweep (every step the record calls for)",
        "daily_sweep": "daily sweep (the next day: its steps and what changed)",
        "daily_rerun": "the same day again (every rule evaluated, nothing to write)",
        "full_rerun": "the same day again, full (every rule over every subject, nothing to write)",
    }
    for label, text in labels.items():
        rows = int(t[label + "_rows"])
        out.append(f"{text}: {t[label]:.3f} s, {rows:,} rows written = {t[label] / base:.1f}× the baseline")
    raw = t["raw_writes"]
    out.append(
        f"second baseline: raw {DRIVERS[backend]} writing the daily sweep's {int(t['raw_writes_rows']):,} rows again "
        f"(one INSERT … SELECT per table, one commit): {raw:.3f} s"
    )
    server = " (the server's own not counted)" if backend == "postgres" else ""
    out.append(f"peak memory of the measuring process: {t['peak_mb']:.0f} MB{server}")
    out.append(
        f"ratios: daily sweep / baseline {t['daily_sweep'] / base:.2f} (target ≤ 3); "
        f"daily sweep / (baseline + raw writes of its rows) {t['daily_sweep'] / (base + raw):.2f}; "
        f"evaluation (same day again) / baseline {t['daily_rerun'] / base:.2f}; "
        f"full evaluation / baseline {t['full_rerun'] / base:.2f}; peak {t['peak_mb']:.0f} MB"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--firms", default="100000", help="comma list of city sizes")
    parser.add_argument("--backend", default="sqlite,postgres", help="comma list of: " + ", ".join(BACKENDS))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # the child's entry
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(os.environ[MEASURE_URL])))
        return
    sizes = [int(size) for size in args.firms.split(",") if size]
    backends = [name for name in args.backend.split(",") if name]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown or not sizes or not backends:
        raise SystemExit(f"--backend takes a comma list of {', '.join(BACKENDS)}; --firms a comma list of sizes")
    with ExitStack() as stack:
        server = ""
        if "postgres" in backends:
            missing = postgres_missing()
            if missing:
                print(f"PostgreSQL skipped: {missing}", flush=True)
                backends.remove("postgres")
            else:
                server = stack.enter_context(postgres_server())
        blocks = 0
        for firms in sizes:
            for backend in backends:
                with ExitStack() as database:
                    if backend == "sqlite":
                        url = f"sqlite:///{Path(database.enter_context(tempfile.TemporaryDirectory())) / 'bench.db'}"
                    else:
                        url = database.enter_context(fresh_pg_database(server))
                    lines = run(backend, url, firms, args.seed)
                print("\n".join(([""] if blocks else []) + lines), flush=True)
                blocks += 1


if __name__ == "__main__":
    main()
