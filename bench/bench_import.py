"""Directory import speed on SQLite: a synthetic directory imported into a fresh database, against a raw
sqlite3 executemany of the same rows measured in the same run.

    .venv/bin/python bench/bench_import.py [--rows 60000] [--seed 7] [--xlsx]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from workflow.campaign import Campaign, load_campaign, sync_districts
from workflow.clock import SystemClock
from workflow.context import Context
from workflow.db import make_engine, migrate
from workflow.directory import import_directory, read_directory
from workflow.generator import write_directory
from workflow.models import GENESIS_HASH
from workflow.settings import DEFAULT_CAMPAIGN


def fresh_database(path: Path, campaign: Campaign) -> str:
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        sync_districts(conn, campaign)
    engine.dispose()
    return url


def raw_insert(path: Path, directory: Path, campaign: Campaign) -> float:
    """Seconds for one sqlite3 executemany of the already-parsed rows (the floor for any importer)."""
    rows = read_directory(directory, campaign)
    now = "2022-01-04 04:00:00.000000"
    params = [
        (
            *(r.uscc, r.name, r.district_code, r.sector, int(r.key_field), int(r.above_size)),
            *(r.principal, r.phone, r.email, "zh-CN", "mobilized", 1, now, 0, GENESIS_HASH, now, now),
        )
        for r in rows
    ]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO enterprises (uscc, name, district_code, sector, key_field, above_size, principal, "
        "phone, email, lang, state, version, state_since, event_count, chain_head, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params,
    )
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--xlsx", action="store_true", help="import an XLSX file instead of CSV")
    args = parser.parse_args()
    campaign = load_campaign(DEFAULT_CAMPAIGN)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        directory = work / ("directory.xlsx" if args.xlsx else "directory.csv")
        write_directory(directory, count=args.rows, seed=args.seed, campaign=campaign)

        started = time.perf_counter()
        read_directory(directory, campaign)
        read_s = time.perf_counter() - started

        engine = make_engine(fresh_database(work / "import.db", campaign))
        started = time.perf_counter()
        report = import_directory(engine, directory, context=Context(campaign, SystemClock()))
        import_s = time.perf_counter() - started
        started = time.perf_counter()
        again = import_directory(engine, directory, context=Context(campaign, SystemClock()))
        again_s = time.perf_counter() - started
        engine.dispose()
        assert report.inserted == args.rows and again.unchanged == args.rows, (report, again)

        fresh_database(work / "raw.db", campaign)
        raw_s = raw_insert(work / "raw.db", directory, campaign)

    print(f"{args.rows:,} rows from {directory.suffix[1:].upper()}")
    print(f"  read + check only        {read_s:7.2f} s  {args.rows / read_s:10,.0f} rows/s")
    print(f"  import (fresh database)  {import_s:7.2f} s  {args.rows / import_s:10,.0f} rows/s")
    print(f"  re-import (unchanged)    {again_s:7.2f} s  {args.rows / again_s:10,.0f} rows/s")
    print(f"  raw sqlite3 executemany  {raw_s:7.2f} s  {args.rows / raw_s:10,.0f} rows/s")
    print(f"  import / raw insert      {import_s / raw_s:7.1f} x")


if __name__ == "__main__":
    main()
