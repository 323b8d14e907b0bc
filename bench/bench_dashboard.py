"""City dashboard speed on SQLite, as ratios against one raw GROUP BY over the same firms.

A synthetic city in the middle of the campaign (2023-03-15) is written set-based (INSERT … SELECT over a
recursive counter, no Python row loop, not through the importer) into a fresh database: firms in every
state, the events behind their history, open escalations, referrals, applications and an outbox. Then:
  * the baseline: `SELECT district_code, state, key_field, count(*) FROM enterprises GROUP BY …` through
    the raw sqlite3 module (the funnel's numbers, nothing else);
  * the city dashboard's queries as the page runs them (`workflow.dashboard.overview` for the whole city):
    cold (the first view of the day reads the campaign's history of starts, from the daily summary of
    `workflow.summary`) and warm (the history before today is cached per day; everything else is queried
    again on every view, the firms per district × field × state from the summary);
  * one district's dashboard, warm.
Each is run repeatedly, every run after one more run of the baseline (so both see the same load on a shared
machine); the median and the 95th percentile are printed, and their ratios to the baseline's.

    .venv/bin/python bench/bench_dashboard.py [--firms 100000] [--runs 30] [--keep PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from workflow.context import Context

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

AS_OF = dt.date(2023, 3, 15)


# Deterministic pseudo-random numbers in SQL: a multiplicative hash of the row number and a salt, in [0, 1).
def rnd(salt: int) -> str:
    return f"(((i * 2654435761 + {salt * 40503}) * {2 * salt + 97}) % 1000003) / 1000003.0"


def build(path: Path, firms: int) -> dict[str, int]:
    """Migrate a fresh database and fill it set-based; returns row counts."""
    from workflow.campaign import load_campaign, sync_districts
    from workflow.db import make_engine, migrate
    from workflow.settings import DEFAULT_CAMPAIGN

    campaign = load_campaign(DEFAULT_CAMPAIGN)
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.begin() as conn:
        sync_districts(conn, campaign)
    engine.dispose()

    # district by the campaign's weights (cumulative thresholds on one draw)
    cuts, total = [], 0.0
    for d in campaign.districts:
        total += d.weight
        cuts.append((round(total, 6), d.code))
    district = (
        "CASE " + " ".join(f"WHEN r1 < {c} THEN '{code}'" for c, code in cuts[:-1]) + f" ELSE '{cuts[-1][1]}' END"
    )
    # the campaign's share of started firms by group, and where the started ones stand
    state = (
        "CASE WHEN r4 >= (CASE WHEN key = 1 THEN 0.85 WHEN above = 1 THEN 0.5 ELSE 0.1 END) THEN 'mobilized' "
        "WHEN r5 < 0.30 THEN 'self_assessing' WHEN r5 < 0.55 THEN 'rectifying' WHEN r5 < 0.63 THEN 'applied' "
        "WHEN r5 < 0.70 THEN 'verified' WHEN r5 < 0.73 THEN 'reviewed' WHEN r5 < 0.95 THEN 'certified' "
        "ELSE 'closed' END"
    )
    # local campaign days as UTC instants (04:00 UTC is noon in Changzhou)
    started_day = "julianday('2022-03-01') + CAST(r6 * (julianday('2023-03-14') - julianday('2022-03-01')) AS INT)"
    since = f"strftime('%Y-%m-%d %H:%M:%f', {started_day}, '+4 hours')"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    conn.execute(
        f"""
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {firms}),
        draws AS (
            SELECT i, {rnd(1)} AS r1, {rnd(2)} AS r2, {rnd(3)} AS r3, {rnd(4)} AS r4, {rnd(5)} AS r5,
                   {rnd(6)} AS r6 FROM n
        ),
        shaped AS (
            SELECT i, r1, r4, r5, r6, CAST(r2 < 0.10 AS INT) AS key,
                   CAST(r3 < (CASE WHEN r2 < 0.10 THEN 0.25 ELSE 0.065 END) AS INT) AS above FROM draws
        )
        INSERT INTO enterprises (id, uscc, name, district_code, sector, key_field, above_size, principal, phone,
            email, lang, state, version, state_since, notified_at, event_count, chain_head, created_at, updated_at)
        SELECT i, printf('91320%013d', i), '常州基准' || i || '有限公司', {district},
               CASE WHEN key = 1 THEN 'chemical' ELSE 'machinery' END, key, above, '张三', '13900000000',
               'f' || i || '@example.com', 'zh-CN', {state}, 3,
               {since}, '2022-02-10 04:00:00.000000', 2, printf('%064d', i), '2022-01-04 04:00:00.000000', {since}
        FROM shaped
        """
    )
    # events: each firm's notice; a started firm's start (the day it left `mobilized`), the steps after it and,
    # for a certified firm, its certification — the rows the burn-down and the pace are read from
    steps = [  # (seq, trigger, from, to, which firms, days after the firm's day)
        (1, "notify", "mobilized", "mobilized", "1", "-20"),
        (2, "start_self_assessment", "mobilized", "self_assessing", "state NOT IN ('mobilized', 'closed')", "0"),
        (2, "close", "mobilized", "closed", "state = 'closed'", "0"),
        (
            3,
            "submit_application",
            "self_assessing",
            "applied",
            "state IN ('applied','verified','reviewed','certified')",
            "20",
        ),
        (4, "verify", "applied", "verified", "state IN ('verified','reviewed','certified')", "30"),
        (5, "pass_audit", "verified", "verified", "state IN ('verified','reviewed','certified')", "40"),
        (6, "record_review", "verified", "reviewed", "state IN ('reviewed','certified')", "60"),
        (7, "certify", "reviewed", "certified", "state = 'certified'", "70"),
    ]
    for seq, trigger, source, dest, where, offset in steps:
        conn.execute(
            f"""
            INSERT INTO events (enterprise_id, seq, trigger, actor, role, at, from_state, to_state, payload,
                                prev_hash, hash)
            SELECT id, {seq}, '{trigger}', 'bench', 'enterprise',
                   min(strftime('%Y-%m-%d %H:%M:%f', state_since, '{offset} days'), '2023-03-14 04:00:00.000'),
                   '{source}', '{dest}', '{{}}', printf('%064d', id), printf('%064x', id * {seq})
            FROM enterprises WHERE {where}
            """
        )
    conn.execute(  # the engine stamps the day a firm left `mobilized`: the start (or close) event's instant
        "UPDATE enterprises SET left_mobilized_at = (SELECT at FROM events WHERE enterprise_id = enterprises.id "
        "AND seq = 2) WHERE state <> 'mobilized'"
    )
    conn.execute(
        """
        INSERT INTO applications (enterprise_id, status, materials, submitted_at, verified_at, audit_passed_at,
                                  reviewed_at, review_score)
        SELECT id, state, '[]', state_since, CASE WHEN state <> 'applied' THEN state_since END,
               CASE WHEN state IN ('reviewed', 'certified') OR id % 2 = 0 AND state = 'verified' THEN state_since END,
               CASE WHEN state IN ('reviewed', 'certified') THEN state_since END,
               CASE WHEN state IN ('reviewed', 'certified') THEN 80.0 END
        FROM enterprises WHERE state IN ('applied', 'verified', 'reviewed', 'certified')
        """
    )
    conn.execute(
        """
        INSERT INTO certifications (enterprise_id, application_id, level, score, certified_at)
        SELECT a.enterprise_id, a.id, 'compliant', 80.0, ev.at
        FROM applications a JOIN events ev ON ev.enterprise_id = a.enterprise_id AND ev.trigger = 'certify'
        WHERE a.status = 'certified'
        """
    )
    # escalations: late firms at every step of the ladder, some of them already resolved
    conn.execute(
        """
        INSERT INTO escalations (dedupe_key, rule, subject_kind, subject_id, enterprise_id, district_code, step,
                                 deadline, days_overdue, status, detail, created_at)
        SELECT 'milestone:' || id || ':' || s.step, 'key_field_started', 'enterprise', id, id, district_code,
               s.step, '2022-12-31', 74, CASE WHEN id % 7 = 0 THEN 'resolved' ELSE 'open' END, '{}',
               '2023-01-01 04:00:00.000000'
        FROM enterprises JOIN (SELECT 'firm' AS step UNION ALL SELECT 'district' UNION ALL SELECT 'city') s
        WHERE key_field = 1 AND state = 'mobilized'
        """
    )
    conn.execute(
        """
        INSERT INTO referrals (dedupe_key, enterprise_id, district_code, grounds, status, detail, proposed_at,
                               proposed_by)
        SELECT 'referral:non_participating:enterprise:' || id, id, district_code, 'non_participating',
               CASE id % 4 WHEN 0 THEN 'proposed' WHEN 1 THEN 'confirmed' WHEN 2 THEN 'acknowledged' ELSE 'declined'
               END, '{}', '2023-02-01 04:00:00.000000', 'bench'
        FROM enterprises WHERE key_field = 1 AND state = 'mobilized' AND id % 3 = 0
        """
    )
    conn.execute(
        """
        INSERT INTO outbox (dedupe_key, kind, audience, enterprise_id, district_code, to_address, lang, context,
                            status, attempts, created_at)
        SELECT 'transition:' || enterprise_id || ':' || seq, 'mobilization_notice', 'enterprise', enterprise_id,
               NULL, 'f@example.com', 'zh-CN', '{}',
               CASE WHEN enterprise_id % 97 = 0 THEN 'failed' WHEN enterprise_id % 89 = 0 THEN 'pending' ELSE 'sent'
               END, 1, at
        FROM events WHERE seq = 1
        """
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    # the summary the triggers kept while the rows went in must equal a count over the firms
    kept = conn.execute(
        "SELECT district_code, key_field, above_size, state, firms FROM summary_states WHERE firms <> 0 "
        "ORDER BY 1, 2, 3, 4"
    ).fetchall()
    counted = conn.execute(
        "SELECT district_code, key_field, above_size, state, count(*) FROM enterprises GROUP BY 1, 2, 3, 4 "
        "ORDER BY 1, 2, 3, 4"
    ).fetchall()
    assert kept == counted, "the summary differs from the count over the firms"
    counts = {
        table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("enterprises", "events", "applications", "certifications", "escalations", "referrals", "outbox")
    }
    conn.close()
    return counts


def _timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def measure(path: Path, runs: int) -> dict[str, list[float]]:
    """In a fresh interpreter: the baseline and the dashboard's queries, each `runs` times."""
    from states import Role
    from workflow.actors import Actor
    from workflow.campaign import load_campaign
    from workflow.clock import FixedClock
    from workflow.dashboard import (
        HistoryCache,
        escalation_counts,
        firm_counts,
        outbox_health,
        overdue_counts,
        overview,
        read_history,
        referral_counts,
        worklist_counts,
    )
    from workflow.db import make_engine
    from workflow.settings import DEFAULT_CAMPAIGN

    campaign = load_campaign(DEFAULT_CAMPAIGN)
    clock = FixedClock.on(AS_OF)
    raw = sqlite3.connect(path)
    baseline = (
        "SELECT district_code, state, key_field, count(*) FROM enterprises GROUP BY district_code, state, key_field"
    )
    out: dict[str, list[float]] = {"baseline": _timed(lambda: raw.execute(baseline).fetchall(), runs)}

    def timed(fn: Callable[[], object], runs: int) -> list[float]:
        """Each run of `fn` follows one more run of the baseline, so that both see the same load."""
        mine = []
        for _ in range(runs):
            out["baseline"] += _timed(lambda: raw.execute(baseline).fetchall(), 1)
            mine += _timed(fn, 1)
        return mine

    engine = make_engine(f"sqlite:///{path}")
    city = Actor("city", Role.city_bureau)
    with engine.connect() as conn:
        cache = HistoryCache()
        out["city dashboard, cold (history read)"] = timed(
            lambda: (
                overview(conn, context=Context(campaign, clock), cache=None),
                worklist_counts(conn, actor=city),
            ),
            max(3, runs // 3),
        )
        overview(conn, context=Context(campaign, clock), cache=cache)
        out["city dashboard, warm (history cached)"] = timed(
            lambda: (
                overview(conn, context=Context(campaign, clock), cache=cache),
                worklist_counts(conn, actor=city),
            ),
            runs,
        )
        overview(conn, context=Context(campaign, clock), cache=cache, district="320412")
        out["district dashboard (武进区), warm"] = timed(
            lambda: overview(conn, context=Context(campaign, clock), cache=cache, district="320412"), runs
        )
        parts = {
            "  firm_counts (stages, above-size; summary)": lambda: firm_counts(conn),
            "  read_history (starts; summary)": lambda: read_history(conn, before=AS_OF, tz=clock.tz, certified=False),
            "  overdue + escalations": lambda: (overdue_counts(conn), escalation_counts(conn)),
            "  referrals + outbox": lambda: (referral_counts(conn), outbox_health(conn)),
            "  worklist_counts": lambda: worklist_counts(conn, actor=city),
        }
        for label, fn in parts.items():
            out[label] = timed(fn, max(3, runs // 3))
    engine.dispose()
    raw.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--firms", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
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
            print(
                f"built in {time.perf_counter() - started:.1f} s ({path.stat().st_size / 2**20:.0f} MB): "
                + ", ".join(f"{n:,} {table}" for table, n in counts.items())
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
