"""Task-list speed on SQLite, as ratios against a raw query of the same rows.

The synthetic city of bench_dashboard (INSERT … SELECT, no Python row loop) with, besides, one firm in a
hundred still `mobilized`, never notified and without an e-mail address (an undeliverable notice). Then:
  * the baseline: through the raw sqlite3 module, a district's applications waiting for verification, the
    oldest 50 (`SELECT … FROM applications JOIN enterprises … ORDER BY submitted_at LIMIT 50`);
  * `deadlines.tasks.task_list` as the page runs it (counts of every kind, one page with due dates) for a
    district bureau, the support center and the city bureau, with a two-word search, overdue only, sorted by
    due date, and page 20 of the district's list.
Each is run repeatedly; the median is printed with its ratio to the baseline.

    .venv/bin/python bench/bench_tasks.py [--firms 100000] [--runs 10] [--keep PATH]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_dashboard import AS_OF, build, timed

DISTRICT = "320412"  # 武进区


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--firms", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--keep", type=Path, help="build here (or reuse a database already built here)")
    args = parser.parse_args()

    from deadlines.tasks import TaskFilter, task_list
    from states import Role
    from workflow.actors import Actor
    from workflow.campaign import load_campaign
    from workflow.clock import FixedClock
    from workflow.db import make_engine
    from workflow.settings import DEFAULT_CAMPAIGN

    path = args.keep or Path(tempfile.mkdtemp(prefix="dabiao-bench-tasks-")) / "tasks.db"
    if not path.exists():
        build(path, args.firms)
        raw = sqlite3.connect(path, isolation_level=None)
        raw.execute(
            "UPDATE enterprises SET email = NULL, notified_at = NULL WHERE state = 'mobilized' AND id % 100 = 0"
        )
        raw.execute("ANALYZE")
        raw.close()
    firms = sqlite3.connect(path).execute("SELECT count(*) FROM enterprises").fetchone()[0]

    raw = sqlite3.connect(path)
    baseline_sql = (
        "SELECT a.id, e.id, e.uscc, e.name, e.district_code, e.sector, e.key_field, e.version, a.submitted_at "
        "FROM applications a JOIN enterprises e ON e.id = a.enterprise_id "
        "WHERE a.status = 'applied' AND e.state = 'applied' AND e.district_code = ? "
        "ORDER BY a.submitted_at, a.id LIMIT 50"
    )
    baseline = statistics.median(timed(lambda: raw.execute(baseline_sql, (DISTRICT,)).fetchall(), args.runs * 3))

    campaign = load_campaign(DEFAULT_CAMPAIGN)
    clock = FixedClock.on(AS_OF)
    engine = make_engine(f"sqlite:///{path}")
    district = Actor(name="bench", role=Role.district_bureau, district_code=DISTRICT)
    center = Actor(name="bench", role=Role.support_center)
    city = Actor(name="bench", role=Role.city_bureau)
    cases = [
        ("district bureau, default view", district, TaskFilter()),
        ("district bureau, verification tab", district, TaskFilter(kind="verification")),
        ("district bureau, two-word search", district, TaskFilter(q="常州 基准1")),
        ("district bureau, overdue, by due date", district, TaskFilter(overdue=True, sort="due")),
        ("district bureau, page 20 of 20 rows", district, TaskFilter(page=20, page_size=20)),
        ("support center, default view", center, TaskFilter()),
        ("city bureau, default view", city, TaskFilter()),
        ("city bureau, undeliverable tab", city, TaskFilter(kind="undeliverable")),
    ]
    print(f"firms: {firms:,}; as of {AS_OF}; median of {args.runs} runs")
    print(f"baseline (raw sqlite3, 50 oldest applications of a district): {baseline * 1000:.2f} ms")
    with engine.connect() as conn:
        for label, actor, filters in cases:

            def run(actor: Actor = actor, filters: TaskFilter = filters) -> object:
                return task_list(conn, actor=actor, campaign=campaign, clock=clock, filters=filters)

            listing = run()
            took = statistics.median(timed(run, args.runs))
            print(
                f"  {label:<40} {took / baseline:8.1f}× baseline  "
                f"(tab total {listing['total']:,}, {len(listing['items'])} rows)"
            )
    engine.dispose()


if __name__ == "__main__":
    main()
