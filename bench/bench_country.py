"""A country's directory on PostgreSQL: the same synthetic mid-campaign city as the sweep benchmark, grown to
a country's size (about 4.2 million industrial legal entities), and at each size:
  * the directory loaded by COPY (firms, hazards, applications, certifications; one transaction, then ANALYZE);
  * the first sweep ever and the next day's sweep, against one raw statement finding the non-participating
    firms (bench_sweep's baseline);
  * the city dashboard (first view of the day: history read; warm: history cached) and one district's
    dashboard (warm), against a raw `GROUP BY district_code, state, key_field` through psycopg;
  * one page of the firm list (a district's key-field firms, page 1 with its total), against the raw SQL
    fetching the same rows and count;
then the fitted exponent k of time ∝ firms^k from the smallest to the largest size, and the curves drawn to
docs/growth.png. PostgreSQL is a throwaway cluster (initdb + pg_ctl) or DABIAO_BENCH_PG_URL (bench/common.py).

    .venv/bin/python bench/bench_country.py [--firms 10000,100000,1000000,4200000] [--runs 10]
        [--chart docs/growth.png|none]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_growth import draw, fit
from bench.bench_sweep import AS_OF, City, Row, database_mb, raw_baseline, write_postgres
from bench.common import dbapi_url, fresh_pg_database, postgres_missing, postgres_server
from workflow.context import Context

MEASURE_URL = "DABIAO_BENCH_COUNTRY_URL"
DISTRICT = "320412"  # 武进区, the largest district of the default campaign
GROUP_BY = "SELECT district_code, state, key_field, count(*) FROM enterprises GROUP BY district_code, state, key_field"
RAW_PAGE = (
    "SELECT e.id, e.uscc, e.name, e.district_code, d.name, e.sector, e.key_field, e.above_size, e.state, "
    "e.state_since, e.version, EXISTS (SELECT 1 FROM escalations x WHERE x.enterprise_id = e.id "
    "AND x.status = 'open') FROM enterprises e JOIN districts d ON d.code = e.district_code "
    "WHERE e.district_code = %s AND e.key_field ORDER BY e.id LIMIT 50"
)
RAW_TOTAL = "SELECT count(*) FROM enterprises WHERE district_code = %s AND key_field"


class CountryCity(City):
    """bench_sweep's city, with the day each started firm left `mobilized` stamped on it (as the engine
    does), so the dashboard's history has its rows."""

    def tables(self) -> Iterator[tuple[str, str, Iterator[Row] | list[Row]]]:
        for table, columns, rows in super().tables():
            if table == "enterprises":
                yield table, columns + ", left_mobilized_at", (self.stamped(row) for row in rows)
            else:
                yield table, columns, rows

    @staticmethod
    def stamped(row: Row) -> Row:
        return (*row, row[12] if row[10] != "mobilized" else None)  # state_since of a firm that left


def build(url: str, firms: int, seed: int) -> dict[str, float]:
    """Migrate a fresh database, then COPY the country in (rows streamed as they are generated)."""
    import psycopg

    from workflow.campaign import load_campaign, sync_districts
    from workflow.db import make_engine, migrate
    from workflow.settings import DEFAULT_CAMPAIGN

    campaign = load_campaign(DEFAULT_CAMPAIGN)
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        sync_districts(conn, campaign)
    engine.dispose()
    city = CountryCity(firms, seed, [d.code for d in campaign.districts], [d.weight for d in campaign.districts])
    started = time.perf_counter()
    write_postgres(url, city)  # COPY per table, one transaction, then ANALYZE
    with psycopg.connect(dbapi_url(url)) as conn:
        certified = conn.execute(
            "INSERT INTO certifications (enterprise_id, application_id, level, score, certified_at) "
            "SELECT enterprise_id, id, 'compliant', 80.0, reviewed_at FROM applications WHERE status = 'certified'"
        ).rowcount
    with psycopg.connect(dbapi_url(url), autocommit=True) as conn:
        conn.execute("ANALYZE certifications")
    return {
        "copy_s": time.perf_counter() - started,
        "hazards": len(city.hazards),
        "applications": len(city.applications),
        "certifications": certified,
    }


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def measure(url: str, runs: int) -> dict[str, object]:
    """In a fresh interpreter: the sweeps, the dashboards and the list page, each with its raw baseline."""
    import psycopg

    from deadlines.sweep import sweep
    from states import Role
    from workflow.actors import Actor
    from workflow.campaign import load_campaign
    from workflow.clock import FixedClock
    from workflow.dashboard import HistoryCache, overview
    from workflow.db import make_engine
    from workflow.queries import FirmFilter, list_firms
    from workflow.settings import DEFAULT_CAMPAIGN

    campaign = load_campaign(DEFAULT_CAMPAIGN)
    key_milestone = next(m.date for m in campaign.milestones if m.applies_to == "key_field")
    other_milestone = next(m.date for m in campaign.milestones if m.applies_to == "non_key_above_size")
    out: dict[str, object] = {}
    out["sweep_baseline"], out["non_participating"] = raw_baseline(url, key_milestone, other_milestone)
    engine = make_engine(url)
    for label, day in (("first_sweep", AS_OF), ("daily_sweep", AS_OF + dt.timedelta(days=1))):
        started = time.perf_counter()
        [report] = sweep(engine, context=Context(campaign, FixedClock.on(day, hour=2)), through=day)
        out[label] = time.perf_counter() - started
        out[f"{label}_rows"] = report.written

    day = AS_OF + dt.timedelta(days=2)
    context = Context(campaign, FixedClock.on(day))
    with psycopg.connect(dbapi_url(url), autocommit=True) as raw:
        raw.execute("ANALYZE")  # as the nightly maintenance would, after the sweeps' writes
        out["group_by"] = timed(lambda: raw.execute(GROUP_BY).fetchall(), runs)
        out["raw_page"] = timed(
            lambda: (raw.execute(RAW_TOTAL, (DISTRICT,)).fetchone(), raw.execute(RAW_PAGE, (DISTRICT,)).fetchall()),
            runs,
        )
    city = Actor("city", Role.city_bureau)
    page = FirmFilter(district=DISTRICT, key_field=True, page=1, page_size=50)
    with engine.connect() as conn:
        out["city_cold"] = timed(lambda: overview(conn, context=context, cache=None), max(3, runs // 3))
        cache = HistoryCache()
        overview(conn, context=context, cache=cache)
        out["city_warm"] = timed(lambda: overview(conn, context=context, cache=cache), runs)
        overview(conn, context=context, cache=cache, district=DISTRICT)
        out["district_warm"] = timed(lambda: overview(conn, context=context, cache=cache, district=DISTRICT), runs)
        out["list_page"] = timed(lambda: list_firms(conn, actor=city, filters=page), runs)
    engine.dispose()
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run(server: str, firms: int, seed: int, runs: int) -> tuple[list[str], dict[str, float]]:
    with fresh_pg_database(server) as url:
        built = build(url, firms, seed)
        size_mb = database_mb(url)
        child = subprocess.run(
            [sys.executable, __file__, "--measure", "--runs", str(runs)],
            env={**os.environ, MEASURE_URL: url},
            capture_output=True,
            text=True,
        )
        if child.returncode:
            raise SystemExit(child.stderr)
        t = json.loads(child.stdout.strip().splitlines()[-1])
    copy_s = built["copy_s"]
    base = float(t["sweep_baseline"])
    group_by = statistics.median(t["group_by"])
    lines = [
        f"== PostgreSQL, {firms:,} firms",
        f"COPY import: {firms:,} firms, {built['hazards']:,} hazards, {built['applications']:,} applications, "
        f"{built['certifications']:,} certifications in {copy_s:.1f} s ({firms / copy_s:,.0f} firms/s; "
        f"database {size_mb:,.0f} MB)",
        f"sweep baseline: one raw statement finding {int(t['non_participating']):,} non-participating firms: "
        f"{base:.3f} s",
    ]
    for label, text in (("first_sweep", "first sweep"), ("daily_sweep", "daily sweep (the next day)")):
        lines.append(
            f"{text}: {t[label]:.3f} s, {int(t[label + '_rows']):,} rows written = {t[label] / base:.1f}× the baseline"
        )
    lines.append(f"{'(median and p95 of repeated runs)':44} {'median':>10} {'p95':>10} {'×median':>8} {'×p95':>7}")
    rows = (
        ("raw GROUP BY (baseline of the dashboards)", "group_by", "group_by"),
        ("city dashboard, first view (history read)", "city_cold", "group_by"),
        ("city dashboard, warm (history cached)", "city_warm", "group_by"),
        ("district dashboard (武进区), warm", "district_warm", "group_by"),
        ("raw SQL of the list page (baseline)", "raw_page", "raw_page"),
        ("firm list, 武进区 key-field, page 1 + total", "list_page", "raw_page"),
    )
    for text, key, against in rows:
        values, base_values = t[key], t[against]
        median, high = statistics.median(values), p95(values)
        ratio, ratio95 = median / statistics.median(base_values), high / p95(base_values)
        lines.append(f"{text:44} {median * 1000:8.1f}ms {high * 1000:8.1f}ms {ratio:7.1f}× {ratio95:6.1f}×")
    lines.append(f"peak memory of the measuring process: {t['peak_mb']:.0f} MB (the server's own not counted)")
    figures = {
        "COPY import": copy_s,
        "first sweep": float(t["first_sweep"]),
        "daily sweep": float(t["daily_sweep"]),
        "city dashboard, first view": statistics.median(t["city_cold"]),
        "city dashboard, warm": statistics.median(t["city_warm"]),
        "district dashboard, warm": statistics.median(t["district_warm"]),
        "firm list page": statistics.median(t["list_page"]),
        "raw GROUP BY": group_by,
    }
    return lines, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--firms", default="10000,100000,1000000,4200000", help="comma list of sizes")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chart", default=str(Path(__file__).resolve().parents[1] / "docs" / "growth.png"))
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # the child's entry
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(os.environ[MEASURE_URL], args.runs)))
        return
    missing = postgres_missing()
    if missing:
        print(f"PostgreSQL skipped: {missing}")
        return
    sizes = [int(size) for size in args.firms.split(",") if size]
    done: list[int] = []
    results: dict[str, list[float]] = {}
    with postgres_server() as server:
        for firms in sizes:
            lines, figures = run(server, firms, args.seed, args.runs)
            print("\n".join(([""] if done else []) + lines), flush=True)
            done.append(firms)
            for label, seconds in figures.items():
                results.setdefault(label, []).append(seconds)
    if len(done) < 2:
        return
    print(f"\ngrowth from {done[0]:,} to {done[-1]:,} firms (PostgreSQL): time ∝ firms^k")
    print("| measure | " + " | ".join(f"{n:,}" for n in done) + " | fitted exponent k |")
    print("|---|" + "---|" * len(done) + "---|")
    for label, seconds in results.items():
        print(f"| {label} | " + " | ".join(f"{s:.3f} s" for s in seconds) + f" | {fit(done, seconds):.2f} |")
    if args.chart != "none":
        draw(Path(args.chart), done, results, title="Dabiao on PostgreSQL: time against firms (log-log)")


if __name__ == "__main__":
    main()
