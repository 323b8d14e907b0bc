"""Every list people wait on, at the size of a city or a province, as ratios against the raw SQL that fetches
the same rows, on SQLite and on PostgreSQL.

The synthetic city of bench_dashboard.py (firms in every state, applications, open escalations, referrals,
written set-based) is built once in SQLite; for PostgreSQL it is copied into a fresh database (COPY) and
vacuumed. Each case runs the service the page and the API call (`workflow.queries.list_firms`, the task
lists, `deadlines.escalations.list_escalations`, `deadlines.referrals.list_referrals` + `count_referrals`)
and, interleaved with it run by run, hand-written SQL through the bare driver (sqlite3, psycopg) that
fetches the same rows and the same total: the firm list's cases count and fetch a page, the jumps with
OFFSET, the pages after a known row with a keyset WHERE. The median and the 95th percentile of each are
printed, with their ratios (service / raw).

The task lists are measured through `TASK_LISTS` below: a name → function of (connection, actor, clock)
returning the rows a person sees; point it at another service to measure that one against the same raw SQL.

    .venv/bin/python bench/bench_pages.py [--firms 100000] [--runs 15] [--backends sqlite,postgresql]
                                          [--keep PATH] [--without-list-indexes]
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_dashboard import AS_OF, build, p95
from bench.common import dbapi_url, fresh_pg_database, machine, postgres_missing, postgres_server

HOME = "320412"  # 武进区, the district officer's
PAGE = 20  # rows a page in the deep-page cases; the default page (50) elsewhere
DEEP = 5_000  # the page a jump goes to
COPIED = ("enterprises", "applications", "escalations", "referrals")
LIST_INDEXES = (  # migration 0010_lists (the trigram index is PostgreSQL's)
    "ix_enterprises_name_id",
    "ix_enterprises_state_since_id",
    "ix_enterprises_district_id",
    "ix_enterprises_district_name_id",
    "ix_enterprises_name_trgm",
)


# ---- the database ---------------------------------------------------------------------------------


def copy_to_postgres(source: Path, url: str) -> None:
    """Migrate a fresh PostgreSQL database and COPY the listed tables of the SQLite city into it."""
    import psycopg

    from workflow.campaign import load_campaign, sync_districts
    from workflow.db import make_engine, migrate
    from workflow.settings import DEFAULT_CAMPAIGN

    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        sync_districts(conn, load_campaign(DEFAULT_CAMPAIGN))
    engine.dispose()
    lite = sqlite3.connect(source)
    with psycopg.connect(dbapi_url(url)) as pg:
        pg.execute("SET TIME ZONE 'UTC'")
        for table in COPIED:
            columns = [r[1] for r in lite.execute(f"PRAGMA table_info({table})")]
            types = {r[1]: r[2].upper() for r in lite.execute(f"PRAGMA table_info({table})")}
            flags = [i for i, c in enumerate(columns) if types[c] == "BOOLEAN"]
            names = ", ".join(columns)
            with pg.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in lite.execute(f"SELECT {names} FROM {table}"):
                    if flags:
                        row = tuple(bool(v) if i in flags and v is not None else v for i, v in enumerate(row))
                    copy.write_row(row)
            pg.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        pg.commit()
    lite.close()
    with psycopg.connect(dbapi_url(url), autocommit=True) as pg:
        pg.execute("VACUUM ANALYZE")  # the visibility map lets the jumps read their index only


def drop_list_indexes(url: str) -> None:
    import sqlalchemy as sa

    from workflow.db import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        for name in LIST_INDEXES:
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()


# ---- the cases ------------------------------------------------------------------------------------


@dataclass
class Raw:
    """Hand-written SQL through the bare driver: the statements run one after the other, `?` for a value."""

    statements: list[tuple[str, tuple[Any, ...]]]


def task_lists() -> dict[str, Callable[..., Any]]:
    """The task lists measured, by the name each office sees. Replace the functions to measure another
    service against the same raw SQL (each returns what the page lists)."""
    from workflow.queries import worklist

    def one(name: str) -> Callable[..., Any]:
        return lambda conn, actor, clock: worklist(conn, actor=actor, name=name, clock=clock)["items"]

    return {name: one(name) for name in ("verification", "audit", "review", "certification")}


TASK_LISTS: dict[str, Callable[..., Any]] = {}


def cases(conn: Any, raw: Any, backend: str) -> list[tuple[str, Callable[[], Any], Raw]]:
    """Each case: a label, the service call, and the raw SQL fetching the same rows (and total)."""
    from deadlines.escalations import list_escalations
    from deadlines.referrals import count_referrals, list_referrals, referral_order
    from states import Role, State
    from workflow.actors import Actor
    from workflow.campaign import load_campaign
    from workflow.clock import FixedClock
    from workflow.queries import FirmFilter, list_firms
    from workflow.settings import DEFAULT_CAMPAIGN

    load_campaign(DEFAULT_CAMPAIGN)
    clock = FixedClock.on(AS_OF)
    city = Actor("city", Role.city_bureau)
    center = Actor("center", Role.support_center)
    district = Actor("wujin", Role.district_bureau, district_code=HOME)
    true, false = ("1", "0") if backend == "sqlite" else ("true", "false")
    overdue = "EXISTS (SELECT 1 FROM escalations x WHERE x.enterprise_id = e.id AND x.status = 'open')"
    cols = (
        "e.id, e.uscc, e.name, e.district_code, d.name, e.sector, e.key_field, e.above_size, e.state, "
        f"e.state_since, e.version, {overdue}"
    )
    state_rank = "CASE e.state " + " ".join(f"WHEN '{s.value}' THEN {n}" for n, s in enumerate(State)) + " END"

    def firms(where: str, order: str, *, limit: int = 50, offset: int = 0, seek: str = "", args: tuple[Any, ...] = ()):
        page = f"SELECT {cols} FROM enterprises e JOIN districts d ON d.code = e.district_code WHERE {where}"
        page += f" {seek} ORDER BY {order} LIMIT {limit}" + (f" OFFSET {offset}" if offset else "")
        return Raw([(f"SELECT count(*) FROM enterprises e WHERE {where}", ()), (page, args)])

    def listed(actor: Actor, **filters: Any) -> Callable[[], Any]:
        f = FirmFilter(**filters)
        return lambda: list_firms(conn, actor=actor, filters=f)

    def last_of(actor: Actor, **filters: Any) -> int:
        found = list_firms(conn, actor=actor, filters=FirmFilter(**filters))["last_id"]
        assert found is not None, filters
        return int(found)

    def key_of(firm_id: int, *columns: str) -> tuple[Any, ...]:
        return tuple(raw.execute(f"SELECT {', '.join(columns)} FROM enterprises WHERE id = {firm_id}").fetchone())

    out: list[tuple[str, Callable[[], Any], Raw]] = []
    add = out.append
    # page 5,000 of 20 (the 100,000th firm on), or halfway through a smaller city; a district's page 2,000
    total = raw.execute("SELECT count(*) FROM enterprises").fetchone()[0]
    deep = min(DEEP, total // PAGE // 2)
    in_home = raw.execute(f"SELECT count(*) FROM enterprises WHERE district_code = '{HOME}'").fetchone()[0]
    home_deep = min(2_000, in_home // PAGE // 2)
    deep_offset = (deep - 1) * PAGE
    add(("firms: city, page 1", listed(city), firms("1=1", "e.id")))
    add(
        (
            "firms: city, district + field + state",
            listed(city, district=HOME, key_field=True, state="mobilized"),
            firms(f"e.district_code = '{HOME}' AND e.key_field = {true} AND e.state = 'mobilized'", "e.id"),
        )
    )
    add(
        (
            f"firms: city, page {deep:,} (jump)",
            listed(city, page=deep, page_size=PAGE),
            firms("1=1", "e.id", limit=PAGE, offset=deep_offset),
        )
    )
    after = last_of(city, page=deep, page_size=PAGE)
    add(
        (
            f"firms: city, page {deep + 1:,} (next: keyset)",
            listed(city, page=deep + 1, page_size=PAGE, after=after),
            firms("1=1", "e.id", limit=PAGE, seek="AND e.id > ?", args=(after,)),
        )
    )
    add(("firms: city, by name, page 1", listed(city, sort="name"), firms("1=1", "e.name, e.id")))
    add(
        (
            f"firms: city, by name desc, page {deep:,} (jump)",
            listed(city, sort="-name", page=deep, page_size=PAGE),
            firms("1=1", "e.name DESC, e.id DESC", limit=PAGE, offset=deep_offset),
        )
    )
    after = last_of(city, sort="name", page=deep, page_size=PAGE)
    (name,) = key_of(after, "name")
    add(
        (
            f"firms: city, by name, page {deep + 1:,} (keyset)",
            listed(city, sort="name", page=deep + 1, page_size=PAGE, after=after),
            firms(
                "1=1",
                "e.name, e.id",
                limit=PAGE,
                seek="AND e.name >= ? AND (e.name > ? OR e.id > ?)",
                args=(name, name, after),
            ),
        )
    )
    add(
        (
            "firms: city, newest in state first, page 1",
            listed(city, sort="-state_since"),
            firms("1=1", "e.state_since DESC, e.id DESC"),
        )
    )
    add(("firms: city, by state, page 1", listed(city, sort="state"), firms("1=1", f"{state_rank}, e.id")))
    add(
        (
            "firms: city, overdue first, page 1",
            listed(city, sort="-overdue"),
            firms("1=1", f"CASE WHEN {overdue} THEN 1 ELSE 0 END DESC, e.id DESC"),
        )
    )
    home = f"e.district_code = '{HOME}'"
    add(("firms: district, by name, page 1", listed(district, sort="name"), firms(home, "e.name, e.id")))
    add(
        (
            f"firms: district, by name, page {home_deep:,} (jump)",
            listed(district, sort="name", page=home_deep, page_size=PAGE),
            firms(home, "e.name, e.id", limit=PAGE, offset=(home_deep - 1) * PAGE),
        )
    )
    add(
        (
            "search: one word of a name",
            listed(city, q="基准77777"),
            firms("e.name LIKE '%基准77777%'", "e.id"),
        )
    )
    add(
        (
            "search: two words",
            listed(city, q="基准 77777"),
            firms(
                "e.name LIKE '%基准%' AND (e.name LIKE '%77777%' OR e.uscc >= '77777' AND e.uscc < '77777\x7f')",
                "e.id",
            ),
        )
    )
    code = raw.execute("SELECT uscc FROM enterprises WHERE id = 424242 % (SELECT max(id) FROM enterprises)")
    code = code.fetchone()[0]
    add(("search: a credit code", listed(city, q=code), firms(f"e.uscc = '{code}'", "e.id")))

    # the task lists, each office's, oldest first (at most 200)
    def team(a: str) -> str:
        return (
            f"(SELECT count(*) FROM review_assignments r WHERE r.application_id = {a}.id AND r.status = 'active'), "
            f"(SELECT count(DISTINCT v.reviewer_id) FROM reviews v WHERE v.application_id = {a}.id "
            "AND v.reviewer_id IS NOT NULL)"
        )

    def tasks(where: str, since: str) -> Raw:
        sql = (
            f"SELECT a.id, e.id, e.uscc, e.name, e.district_code, e.key_field, e.version, a.review_score, "
            f"a.{since}, {team('a')} FROM applications a JOIN enterprises e ON e.id = a.enterprise_id "
            f"WHERE {where} ORDER BY a.{since}, a.id LIMIT 200"
        )
        return Raw([(sql, ())])

    lists = TASK_LISTS or task_lists()
    nonkey_home = f"e.key_field = {false} AND e.district_code = '{HOME}'"
    for label, actor, name, raw_list in (
        ("district", district, "verification", tasks(f"a.status = 'applied' AND {home}", "submitted_at")),
        (
            "district",
            district,
            "audit",
            tasks(f"a.status = 'verified' AND a.audit_passed_at IS NULL AND {nonkey_home}", "verified_at"),
        ),
        (
            "district",
            district,
            "review",
            tasks(f"a.status = 'verified' AND a.audit_passed_at IS NOT NULL AND {nonkey_home}", "audit_passed_at"),
        ),
        (
            "support center",
            center,
            "audit",
            tasks(f"a.status = 'verified' AND a.audit_passed_at IS NULL AND e.key_field = {true}", "verified_at"),
        ),
        (
            "support center",
            center,
            "review",
            tasks(
                f"a.status = 'verified' AND a.audit_passed_at IS NOT NULL AND e.key_field = {true}", "audit_passed_at"
            ),
        ),
        ("city", city, "certification", tasks("a.status = 'reviewed'", "reviewed_at")),
    ):
        fn = lists[name]
        add((f"task list: {label}, {name}", lambda fn=fn, actor=actor: fn(conn, actor, clock), raw_list))

    esc = (
        "SELECT x.*, e.uscc, e.name, d.name FROM escalations x JOIN enterprises e ON e.id = x.enterprise_id "
        "JOIN districts d ON d.code = x.district_code WHERE x.status = 'open' {} ORDER BY x.id LIMIT 501"
    )
    add(
        (
            "escalations: city, open",
            lambda: list_escalations(conn, actor=city, status="open", limit=501),
            Raw([(esc.format(""), ())]),
        )
    )
    add(
        (
            "escalations: district, open",
            lambda: list_escalations(conn, actor=district, district=HOME, status="open", limit=501),
            Raw([(esc.format(f"AND x.district_code = '{HOME}'"), ())]),
        )
    )

    from workflow.campaign import load_campaign as _campaign

    campaign = _campaign(DEFAULT_CAMPAIGN)
    ref = (
        "SELECT r.*, e.uscc, e.name, e.state, e.state_since, d.name FROM referrals r "
        "JOIN enterprises e ON e.id = r.enterprise_id JOIN districts d ON d.code = r.district_code "
        "WHERE {} ORDER BY {} LIMIT 50"
    )
    ref_count = "SELECT count(*) FROM referrals r JOIN enterprises e ON e.id = r.enterprise_id WHERE {}"
    for label, actor, where, sort, order in (
        ("city, by district", city, "1=1", "district", "r.district_code, r.id"),
        ("city, newest first", city, "1=1", "-proposed_at", "r.proposed_at DESC, r.id DESC"),
        ("district, by name", district, f"r.district_code = '{HOME}'", "name", "e.name, r.id"),
    ):

        def service(actor: Actor = actor, sort: str = sort) -> Any:
            return (
                list_referrals(conn, actor=actor, campaign=campaign, order=referral_order(sort), limit=50),
                count_referrals(conn, actor=actor),
            )

        add(
            (
                f"referrals: {label}, page 1",
                service,
                Raw([(ref_count.format(where), ()), (ref.format(where, order), ())]),
            )
        )
    return out


def measure(url: str, runs: int, only: str = "") -> dict[str, Any]:
    """In a fresh interpreter: every case `runs` times, the raw SQL and the service interleaved."""
    from workflow.db import make_engine

    backend = "sqlite" if url.startswith("sqlite") else "postgresql"
    if backend == "sqlite":
        raw: Any = sqlite3.connect(url.removeprefix("sqlite:///"))
        mark = "?"
    else:
        import psycopg

        raw = psycopg.connect(dbapi_url(url), autocommit=True)
        mark = "%s"
    engine = make_engine(url)
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for label, service, sql in cases(conn, raw, backend):
            if only not in label:
                continue
            statements = [(text.replace("?", mark), args) for text, args in sql.statements]

            def bare(statements: list[tuple[str, tuple[Any, ...]]] = statements) -> None:
                for text, args in statements:
                    (raw.execute(text, args) if args else raw.execute(text)).fetchall()

            bare()
            service()  # warm both: the measured runs read a warm cache, as a busy office's pages do
            times: dict[str, list[float]] = {"raw": [], "service": []}
            for _ in range(runs):
                for name, fn in (("raw", bare), ("service", service)):
                    started = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - started)
                conn.rollback()
            out[label] = times
    engine.dispose()
    raw.close()
    return out


def report(backend: str, timings: dict[str, Any]) -> list[str]:
    lines = [
        f"{backend}: median and 95th percentile; ratio = the service's / the raw SQL's (target ≤ 2)",
        f"{'':50} {'raw':>9} {'service':>9} {'×median':>8} {'raw p95':>9} {'svc p95':>9} {'×p95':>6}",
    ]
    for label, t in timings.items():
        rm, sm = statistics.median(t["raw"]), statistics.median(t["service"])
        r95, s95 = p95(t["raw"]), p95(t["service"])
        mark = "" if sm / rm <= 2 and s95 / r95 <= 2 else "  > 2×"
        lines.append(
            f"{label:50} {rm * 1000:7.1f}ms {sm * 1000:7.1f}ms {sm / rm:7.2f}× "
            f"{r95 * 1000:7.1f}ms {s95 * 1000:7.1f}ms {s95 / r95:5.2f}×{mark}"
        )
    return lines


def child(url: str, runs: int, only: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--measure", url, "--runs", str(runs), "--only", only],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(done.stderr[-4000:])
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--firms", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--keep", type=Path, help="build (or reuse) the SQLite city at this path and keep it")
    parser.add_argument(
        "--without-list-indexes", action="store_true", help="drop migration 0010_lists' indexes first (before)"
    )
    parser.add_argument("--only", default="", help="measure only the cases whose label contains this text")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child's entry: a database URL
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.runs, args.only)))
        return
    backends = [b for b in args.backends.split(",") if b]
    print(f"{machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "pages.db"
        if not path.exists():
            started = time.perf_counter()
            counts = build(path, args.firms)
            print(
                f"built in {time.perf_counter() - started:.0f} s: "
                + ", ".join(f"{n:,} {table}" for table, n in counts.items() if table in COPIED)
            )
        if args.without_list_indexes:
            print("without the list indexes (migration 0010_lists dropped): the figures before them")
        if "sqlite" in backends:
            url = f"sqlite:///{path}"
            if args.without_list_indexes:
                drop_list_indexes(url)
            print("\n".join(report("SQLite", child(url, args.runs, args.only))))
        if "postgresql" in backends:
            missing = postgres_missing()
            if missing:
                print(f"PostgreSQL skipped: {missing}")
                return
            with postgres_server() as server, fresh_pg_database(server) as url:
                started = time.perf_counter()
                copy_to_postgres(path, url)
                print(f"copied to PostgreSQL in {time.perf_counter() - started:.0f} s")
                if args.without_list_indexes:
                    drop_list_indexes(url)
                print("\n".join(report("PostgreSQL", child(url, args.runs, args.only))))


if __name__ == "__main__":
    main()
