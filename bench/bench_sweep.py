"""Deadline sweep speed and memory on SQLite, as ratios against one raw SQL statement that finds the
non-participating firms among the same firms, measured in the same run.

A synthetic city in the middle of the campaign (2023-03-15: key-field milestone passed, hazards open and
overdue, applications at every step) is written straight into a fresh database; a fresh interpreter then
times, on that database:
  * the baseline: one raw sqlite3 statement listing the non-participating firms (id, district), best of 3;
  * the first sweep ever (every reminder, escalation step and referral the record calls for is written);
  * the next day's sweep (the daily case: the steps falling on that day, and what changed);
  * the same day swept again, best of 3 (everything evaluated, nothing left to write: the cost of looking);
  * the same day swept again with `full` (every rule over every subject, as after a change of the rules);
  * a second baseline: raw sqlite3 writing the daily sweep's rows again (the cost of the writes alone);
and reports its own peak memory (ru_maxrss).

    .venv/bin/python bench/bench_sweep.py [--firms 100000] [--seed 7]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

AS_OF = dt.date(2023, 3, 15)
UTC_FMT = "%Y-%m-%d %H:%M:%S.%f"


def instant(day: dt.date, hour: int = 4) -> str:
    return dt.datetime.combine(day, dt.time(hour, random.randint(0, 59), random.randint(0, 59))).strftime(UTC_FMT)


def build(path: Path, firms: int, seed: int) -> dict[str, int]:
    """Migrate a fresh database and fill it with `firms` firms mid-campaign (rows streamed, never listed)."""
    from workflow.campaign import load_campaign, sync_districts
    from workflow.db import make_engine, migrate
    from workflow.models import GENESIS_HASH
    from workflow.settings import DEFAULT_CAMPAIGN

    campaign = load_campaign(DEFAULT_CAMPAIGN)
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.begin() as conn:
        sync_districts(conn, campaign)
    engine.dispose()

    rng = random.Random(seed)
    districts = [d.code for d in campaign.districts]
    weights = [d.weight for d in campaign.districts]
    started_states = ["self_assessing"] * 30 + ["rectifying"] * 25 + ["applied"] * 8 + ["verified"] * 7
    started_states += ["reviewed"] * 3 + ["certified"] * 22 + ["closed"] * 5
    counts = {"firms": firms, "hazards": 0, "applications": 0, "non_participating": 0}
    hazards: list[tuple[object, ...]] = []
    applications: list[tuple[object, ...]] = []

    def rows() -> Iterator[tuple[object, ...]]:
        for n in range(1, firms + 1):
            key = rng.random() < 0.10
            above = rng.random() < (0.25 if key else 0.065)
            share_started = 0.85 if key else 0.5 if above else 0.1
            state = rng.choice(started_states) if rng.random() < share_started else "mobilized"
            if state == "mobilized" and (key or above):
                counts["non_participating"] += key
            notified = state != "mobilized" or rng.random() < 0.98
            since = AS_OF - dt.timedelta(days=rng.randint(1, 300))
            if state == "rectifying":
                for _ in range(2):
                    deadline = AS_OF + dt.timedelta(days=rng.randint(-90, 60))
                    severity = "major" if rng.random() < 0.1 else "general"
                    hazards.append((n, severity, deadline.isoformat(), "open", instant(since)))
            elif state in ("applied", "verified", "reviewed", "certified"):
                submitted = AS_OF - dt.timedelta(days=rng.randint(1, 40))
                step = dt.timedelta(days=rng.randint(1, 20))
                applications.append(
                    (
                        n,
                        {"certified": "certified"}.get(state, state),
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
                rng.choices(districts, weights)[0],
                "chemical" if key else "machinery",
                int(key),
                int(above),
                "张三",
                "13900000000",
                f"f{n}@example.com" if rng.random() < 0.85 else None,
                "zh-CN",
                state,
                1,
                instant(since),
                instant(dt.date(2022, 2, 10), rng.randint(0, 23)) if notified else None,
                0,
                GENESIS_HASH,
                instant(dt.date(2022, 1, 4)),
                instant(since),
            )

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO enterprises (uscc, name, district_code, sector, key_field, above_size, principal, phone, "
        "email, lang, state, version, state_since, notified_at, event_count, chain_head, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows(),
    )
    conn.executemany(
        "INSERT INTO hazards (enterprise_id, source, description, severity, responsible_person, measures, funds, "
        "deadline, emergency_plan, status, reported_at) VALUES (?, 'self', '隐患', ?, '李四', '整改', 1000, ?, "
        "'预案', ?, ?)",
        hazards,
    )
    conn.executemany(
        "INSERT INTO applications (enterprise_id, status, materials, submitted_at, verified_at, audit_passed_at, "
        "reviewed_at, review_score) VALUES (?, ?, '[]', ?, ?, ?, ?, ?)",
        applications,
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    counts["hazards"], counts["applications"] = len(hazards), len(applications)
    return counts


def measure(path: Path) -> dict[str, float]:
    """In a fresh interpreter: baseline, first sweep, next day's sweep, peak memory."""
    from deadlines.sweep import sweep
    from workflow.campaign import load_campaign
    from workflow.clock import FixedClock
    from workflow.db import make_engine
    from workflow.settings import DEFAULT_CAMPAIGN

    campaign = load_campaign(DEFAULT_CAMPAIGN)
    key_milestone = next(m.date for m in campaign.milestones if m.applies_to == "key_field")
    other_milestone = next(m.date for m in campaign.milestones if m.applies_to == "non_key_above_size")
    raw = sqlite3.connect(path)
    baseline = float("inf")
    found = 0
    for _ in range(3):
        started = time.perf_counter()
        found = len(
            raw.execute(
                "SELECT id, district_code FROM enterprises WHERE state = 'mobilized' AND "
                "((key_field = 1 AND ? > ?) OR (key_field = 0 AND above_size = 1 AND ? > ?))",
                (AS_OF.isoformat(), key_milestone.isoformat(), AS_OF.isoformat(), other_milestone.isoformat()),
            ).fetchall()
        )
        baseline = min(baseline, time.perf_counter() - started)
    raw.close()

    engine = make_engine(f"sqlite:///{path}")
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
            [report] = sweep(engine, campaign=campaign, through=day, clock=FixedClock.on(day, hour=2), full=full)
            best = min(best, time.perf_counter() - started)
        timings[label] = best
        timings[f"{label}_rows"] = report.written
        if label == "first_sweep":
            with engine.connect() as conn:  # its writes' checkpoint is its own, not the next day's
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    timings["raw_writes"], timings["raw_writes_rows"] = raw_copy(path, marks)
    timings["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return timings


def last_id(engine: object, table: str) -> int:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table}").scalar())


def raw_copy(path: Path, marks: dict[str, int]) -> tuple[float, int]:
    """The second baseline: the rows the daily sweep wrote (escalation steps, reminders, notices), written
    again by raw sqlite3 — one INSERT … SELECT per table with fresh dedupe keys, one transaction, the same
    indexes and checkpointing — so the cost of the day's writes themselves is seen."""
    columns = {
        "escalations": "rule, subject_kind, subject_id, enterprise_id, district_code, step, deadline, days_overdue, "
        "status, detail, created_at",
        "outbox": "kind, audience, enterprise_id, district_code, to_address, lang, context, status, attempts, "
        "next_attempt_at, created_at",
    }
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=NORMAL")
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    rows = 0
    for table, since in marks.items():
        rows += conn.execute(
            f"INSERT INTO {table} (dedupe_key, {columns[table]}) SELECT dedupe_key || ':raw', {columns[table]} "
            f"FROM {table} WHERE id > ? AND dedupe_key NOT LIKE '%:raw'",
            (since,),
        ).rowcount
    conn.execute("COMMIT")
    took = time.perf_counter() - started
    conn.close()
    return took, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--firms", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the child's entry
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        started = time.perf_counter()
        counts = build(path, args.firms, args.seed)
        print(
            f"built {counts['firms']:,} firms, {counts['hazards']:,} hazards, {counts['applications']:,} applications "
            f"in {time.perf_counter() - started:.1f} s ({path.stat().st_size / 2**20:.0f} MB)"
        )
        child = subprocess.run([sys.executable, __file__, "--measure", str(path)], capture_output=True, text=True)
        if child.returncode:
            raise SystemExit(child.stderr)
        t = json.loads(child.stdout.strip().splitlines()[-1])
    base = t["baseline"]
    found = int(t["non_participating"])
    print(f"baseline: one raw SQL statement finding {found:,} non-participating firms: {base:.3f} s")
    labels = {
        "first_sweep": "first sweep (every step the record calls for)",
        "daily_sweep": "daily sweep (the next day: its steps and what changed)",
        "daily_rerun": "the same day again (every rule evaluated, nothing to write)",
        "full_rerun": "the same day again, full (every rule over every subject, nothing to write)",
    }
    for label, text in labels.items():
        rows = int(t[label + "_rows"])
        print(f"{text}: {t[label]:.3f} s, {rows:,} rows written = {t[label] / base:.1f}× the baseline")
    raw = t["raw_writes"]
    print(
        f"second baseline: raw sqlite3 writing the daily sweep's {int(t['raw_writes_rows']):,} rows again "
        f"(one INSERT … SELECT per table, one commit): {raw:.3f} s"
    )
    print(f"peak memory of the measuring process: {t['peak_mb']:.0f} MB")
    print(
        f"ratios: daily sweep / baseline {t['daily_sweep'] / base:.2f} (target ≤ 3); "
        f"daily sweep / (baseline + raw writes of its rows) {t['daily_sweep'] / (base + raw):.2f}; "
        f"evaluation (same day again) / baseline {t['daily_rerun'] / base:.2f}; "
        f"full evaluation / baseline {t['full_rerun'] / base:.2f}; peak {t['peak_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
