"""Escalations by case on SQLite, as ratios against one raw GROUP BY over the same escalations.

The synthetic city of bench_dashboard.py (firms in every state, key-field firms late at the firm, district and
city steps), plus hazard escalations: every fifth open firm has two overdue hazards climbing to the district
step (four rows, one case). Then, each run repeatedly:
  * the baseline: `SELECT district_code, status, count(*) FROM escalations GROUP BY …` through the raw sqlite3
    module (one pass over the table, nothing else);
  * the single rows as `GET /api/escalations` lists them (500, the city);
  * the cases as the escalations page asks for them (`deadlines.escalations.list_cases`): the city's first page
    sorted by days overdue, sorted by firm, a district's first page and its last;
  * a batch 签收 of 100 cases by a district (each run another 100).
The median and the 95th percentile are printed, and their ratios to the baseline.

    .venv/bin/python bench/bench_escalations.py [--firms 100000] [--runs 10] [--keep PATH]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_dashboard import AS_OF, build, p95, timed

DISTRICT = "320412"  # 武进区


def add_hazard_cases(path: Path) -> int:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute(
        """
        INSERT INTO escalations (dedupe_key, rule, subject_kind, subject_id, enterprise_id, district_code, step,
                                 deadline, days_overdue, status, detail, created_at)
        SELECT 'hazard_deadline:hazard:' || (e.id * 2 + h.n) || ':' || s.step, 'hazard_deadline', 'hazard',
               e.id * 2 + h.n, e.id, e.district_code, s.step, date('2023-01-01', '+' || (e.id % 60) || ' days'),
               30, 'open', '{}', '2023-02-01 04:00:00.000000'
        FROM enterprises e
        JOIN (SELECT 0 AS n UNION ALL SELECT 1) h
        JOIN (SELECT 'firm' AS step UNION ALL SELECT 'district') s
        WHERE e.id % 5 = 0 AND e.state NOT IN ('closed', 'certified')
        """
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    total = int(conn.execute("SELECT count(*) FROM escalations").fetchone()[0])
    conn.close()
    return total


def measure(path: Path, runs: int) -> dict[str, list[float]]:
    """In a fresh interpreter: the baseline and the case queries, each `runs` times."""
    from sqlmodel import Session

    from deadlines.escalations import acknowledge_cases, list_cases, list_escalations
    from states import Role
    from workflow.actors import Actor
    from workflow.clock import FixedClock
    from workflow.db import make_engine

    raw = sqlite3.connect(path)
    baseline = "SELECT district_code, status, count(*) FROM escalations GROUP BY district_code, status"
    out: dict[str, list[float]] = {"baseline": timed(lambda: raw.execute(baseline).fetchall(), runs)}
    raw.close()
    engine = make_engine(f"sqlite:///{path}")
    city = Actor("city", Role.city_bureau)
    district = Actor("wujin", Role.district_bureau, district_code=DISTRICT)
    clock = FixedClock.on(AS_OF)
    with engine.connect() as conn:
        out["single rows, 500 (GET /api/escalations)"] = timed(
            lambda: list_escalations(conn, actor=city, status="open", limit=500), runs
        )
        out["cases: city, by days overdue, page 1"] = timed(
            lambda: list_cases(conn, actor=city, as_of=AS_OF, limit=100), runs
        )
        out["cases: city, by firm, page 1"] = timed(
            lambda: list_cases(conn, actor=city, as_of=AS_OF, sort="firm", limit=100), runs
        )
        out["cases: 武进区, by days overdue, page 1"] = timed(
            lambda: list_cases(conn, actor=district, as_of=AS_OF, limit=100), runs
        )
        total = list_cases(conn, actor=district, as_of=AS_OF, limit=1).total
        out["cases: 武进区, last page"] = timed(
            lambda: list_cases(conn, actor=district, as_of=AS_OF, limit=100, offset=max(0, total - 100)), runs
        )
        batches = [
            [
                (c.enterprise_id, c.rule)
                for c in list_cases(conn, actor=district, as_of=AS_OF, limit=100, offset=n).items
            ]
            for n in range(0, 100 * runs, 100)
        ]
    picked = iter(batches)

    def acknowledge() -> None:
        with Session(engine) as session:
            acknowledge_cases(session, cases=next(picked), actor=district, clock=clock)

    out["batch 签收 of 100 cases (武进区)"] = timed(acknowledge, min(runs, len(batches)))
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--firms", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the database at this path and keep it")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the child's entry
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.runs)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "bench.db"
        if not path.exists():
            started = time.perf_counter()
            counts = build(path, args.firms)
            escalations = add_hazard_cases(path)
            print(
                f"built in {time.perf_counter() - started:.1f} s: {counts['enterprises']:,} firms, "
                f"{escalations:,} escalation rows"
            )
        child = subprocess.run(
            [sys.executable, __file__, "--measure", str(path), "--runs", str(args.runs)],
            capture_output=True,
            text=True,
            check=True,
        )
        timings = json.loads(child.stdout.strip().splitlines()[-1])
    base = statistics.median(timings["baseline"])
    base95 = p95(timings["baseline"])
    print(f"as of {AS_OF}; median and 95th percentile of repeated runs, and their ratio to the baseline's")
    print(f"{'':44} {'median':>10} {'p95':>10} {'×median':>9} {'×p95':>8}")
    for label, values in timings.items():
        median, high = statistics.median(values), p95(values)
        print(f"{label:44} {median * 1000:8.1f}ms {high * 1000:8.1f}ms {median / base:8.1f}× {high / base95:7.1f}×")


if __name__ == "__main__":
    main()
