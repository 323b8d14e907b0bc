"""The firm list's XLSX export, streamed, against a bare export of the same rows, on SQLite.

A directory of N firms is written set-based into a fresh database. Then, each in a process of its own (so
that each peak memory is its own):
  * the baseline: the same columns fetched with the raw sqlite3 module and appended, as they come, to a bare
    write-only openpyxl sheet (no title, widths, typed dates, labels or neutralising);
  * the export as the city's page makes it: `workflow.firm_page.firm_export_rows` (scope and filters),
    `api.pages.exports.firm_cells` (labels in the sheet's language) and `deadlines.export.write_xlsx` (title row,
    fitted widths, frozen header, autofilter, typed dates, text-safe cells), streamed.
Printed: the time of each (median of --runs) and the ratio, the peak resident memory of each process
(ru_maxrss) and the export's peak Python allocations (tracemalloc, a run of its own); the target is a flat
memory, at most 200 MB for 100,000 firms.

    .venv/bin/python bench/bench_export.py [--firms 100000] [--runs 3] [--keep PATH]
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

COLUMNS = (
    "SELECT e.id, e.uscc, e.name, d.name, e.sector, e.key_field, e.above_size, e.state, e.state_since, "
    "e.principal, e.phone FROM enterprises e JOIN districts d ON d.code = e.district_code ORDER BY e.id"
)


def rnd(salt: int) -> str:
    return f"(((i * 2654435761 + {salt * 40503}) * {2 * salt + 97}) % 1000003) / 1000003.0"


def build(path: Path, firms: int) -> None:
    from workflow.campaign import load_campaign, sync_districts
    from workflow.db import make_engine, migrate
    from workflow.settings import DEFAULT_CAMPAIGN

    campaign = load_campaign(DEFAULT_CAMPAIGN)
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.begin() as conn:
        sync_districts(conn, campaign)
    engine.dispose()
    codes = [d.code for d in campaign.districts]
    district = "CASE " + " ".join(f"WHEN i % {len(codes)} = {n} THEN '{c}'" for n, c in enumerate(codes)) + " END"
    sectors = [s.code for s in campaign.sectors]
    sector = "CASE " + " ".join(f"WHEN i % {len(sectors)} = {n} THEN '{s}'" for n, s in enumerate(sectors)) + " END"
    states = ["mobilized", "self_assessing", "rectifying", "applied", "verified", "certified"]
    state = "CASE " + " ".join(f"WHEN i % {len(states)} = {n} THEN '{s}'" for n, s in enumerate(states)) + " END"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    conn.execute(
        f"""
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {firms})
        INSERT INTO enterprises (id, uscc, name, district_code, sector, key_field, above_size, principal, phone,
            email, lang, state, version, state_since, event_count, chain_head, created_at, updated_at)
        SELECT i, printf('91320%013d', i), '常州市基准' || i || '精密机械制造有限公司', {district}, {sector},
               CAST({rnd(1)} < 0.1 AS INT), CAST({rnd(2)} < 0.2 AS INT), '张三', '0519-8' || printf('%07d', i),
               'f' || i || '@example.com', 'zh-CN', {state}, 1,
               strftime('%Y-%m-%d %H:%M:%f', julianday('2022-03-01') + CAST({rnd(3)} * 400 AS INT), '+2 hours'),
               0, printf('%064d', i), '2022-01-04 04:00:00.000000', '2022-01-04 04:00:00.000000'
        FROM n
        """
    )
    conn.execute("COMMIT")
    conn.close()


def baseline(db: Path, out: Path) -> int:
    """The same rows, raw, appended to a bare write-only sheet."""
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("firms")
    conn = sqlite3.connect(db)
    count = 0
    for row in conn.execute(COLUMNS):
        sheet.append(row)
        count += 1
    book.save(out)
    conn.close()
    return count


def export(db: Path, out: Path) -> int:
    """The city's firm list export, as the page writes it."""
    import datetime as dt

    from api.pages.exports import FIRM_COLUMNS, firm_cells, firm_filters
    from deadlines.export import Export, write_xlsx
    from states import Role
    from workflow.actors import Actor
    from workflow.campaign import load_campaign
    from workflow.clock import SHANGHAI
    from workflow.db import make_engine
    from workflow.firm_page import firm_export_rows
    from workflow.queries import FirmFilter
    from workflow.settings import DEFAULT_CAMPAIGN

    campaign = load_campaign(DEFAULT_CAMPAIGN)
    engine = make_engine(f"sqlite:///{db}")
    filters = FirmFilter(page_size=50)
    made = Export(
        what_zh="企业名录",
        what_en="Firm directory",
        slug="firms",
        as_of=dt.datetime(2023, 6, 1, 10, 30, tzinfo=SHANGHAI),
        by="市应急管理局",
        filters=firm_filters(filters, campaign),
    )
    with engine.connect() as conn:
        rows = firm_export_rows(conn, actor=Actor(name="city", role=Role.city_bureau), filters=filters)
        count = write_xlsx(out, export=made, columns=FIRM_COLUMNS, rows=firm_cells(rows, campaign=campaign))
    engine.dispose()
    return count


def measure(kind: str, db: Path, traced: bool) -> None:
    """One run in this process: prints seconds, rows, peak RSS (MB) and, when traced, tracemalloc's peak (MB)."""
    import tracemalloc

    import openpyxl  # noqa: F401  # imported before tracing: the modules are not the export's allocations

    import api.pages.exports  # noqa: F401
    import workflow.firm_page  # noqa: F401

    if traced:
        tracemalloc.start()
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        count = (export if kind == "export" else baseline)(db, Path(folder) / "out.xlsx")
        seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20 if traced else None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"seconds": seconds, "rows": count, "rss_mb": rss, "traced_mb": peak}))


def run(kind: str, db: Path, traced: bool = False) -> dict[str, float]:
    argv = [sys.executable, __file__, "--measure", kind, "--db", str(db)] + (["--traced"] if traced else [])
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--firms", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="keep the database at PATH")
    parser.add_argument("--measure", choices=("export", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.db, args.traced)
        return
    with tempfile.TemporaryDirectory() as folder:
        db = args.keep or Path(folder) / "export.db"
        db.unlink(missing_ok=True)
        started = time.perf_counter()
        build(db, args.firms)
        built = time.perf_counter() - started
        print(f"firm list export (XLSX, streamed), SQLite, {args.firms:,} firms (database built in {built:.0f} s)")
        base = [run("baseline", db) for _ in range(args.runs)]
        ours = [run("export", db) for _ in range(args.runs)]
        traced = run("export", db, traced=True)
        assert all(r["rows"] == args.firms for r in base + ours), "every firm written"
        b = statistics.median(r["seconds"] for r in base)
        e = statistics.median(r["seconds"] for r in ours)
        base_rss, our_rss = max(r["rss_mb"] for r in base), max(r["rss_mb"] for r in ours)
        print(f"  baseline (raw sqlite3 + bare write-only openpyxl): median {b:.2f} s, peak RSS {base_rss:.0f} MB")
        print(f"  export (the page's query, cells and shared writer): median {e:.2f} s, peak RSS {our_rss:.0f} MB")
        print(f"  ratio export / baseline: {e / b:.2f}× (medians of {args.runs} runs)")
        print(f"  export's peak Python allocations (tracemalloc): {traced['traced_mb']:.1f} MB")
        verdict = "met" if our_rss <= 200 else "NOT met"
        print(f"  target: peak memory ≤ 200 MB at 100,000 firms — {verdict} at {args.firms:,} firms")


if __name__ == "__main__":
    main()
