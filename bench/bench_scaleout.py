"""Scale-out in one run on this machine: two API processes (`dabiao serve`), two schedulers (`dabiao
scheduler`, one leads by advisory lock) and two dispatchers (`dabiao dispatch --loop`) on one PostgreSQL,
with the bounded mixed load of bench_http.py spread over both API processes; mail goes to an SMTP sink
that records every delivery. Then, with everything stopped: no message delivered twice, every outbox row
sent was delivered, every acknowledged transition is in the log, every firm's state is the replay of its
events, the audit chain verifies, and each sweep day ran once.

With the PostgreSQL binaries at hand (and DABIAO_BENCH_PG_URL not set) the PostgreSQL is a throwaway primary
with a streaming hot standby (`pg_basebackup -R`), and the API processes read dashboards, lists and task lists
from the standby (DABIAO_READ_DATABASE_URL): beside the mixed load, readers open the city dashboard, firm list
pages and task lists through both API processes; the run says how many of those reads the standby answered
(the `X-Data-As-Of` header), their latency, and how far the standby fell behind.

    .venv/bin/python bench/bench_scaleout.py [--requests 3000] [--firms 300] [--no-standby]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_engine import prepare
from bench.bench_http import check, city_token, firm_names, load, plans, stop
from bench.common import _free_port, fresh_pg_database, machine, postgres_server, primary_and_standby, standby_missing

ROOT = Path(__file__).resolve().parents[1]
DABIAO = str(ROOT / ".venv" / "bin" / "dabiao")


def wait_for(port: int, path: str = "/healthz") -> None:
    import httpx

    deadline = time.monotonic() + 300  # six processes start at once on a machine that may be busy
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"nothing answers on port {port}")


# what the list readers open, in turn (pages with the session cookie, the API with the bearer token)
LIST_READS = (
    "/dashboard",
    "/firms?page={page}",
    "/api/enterprises?page={page}",
    "/work",
    "/api/worklists/verification",
    "/api/escalations",
)


def reader_token(url: str) -> str:
    """A second city-bureau account for the list readers: the mixed load writes with the first, and a caller
    who writes reads the primary until the standby holds the write."""
    from sqlmodel import Session

    from states import Role
    from workflow.accounts import NewUser, create_user, issue_token
    from workflow.clock import SystemClock
    from workflow.db import make_engine
    from workflow.settings import Settings

    engine, clock = make_engine(url), SystemClock()
    with Session(engine) as session:
        new = NewUser(
            username="bench_reader", password="bench reader battery", role=Role.city_bureau, display_name="市局"
        )
        user = create_user(session, new=new, clock=clock)
        token, _ = issue_token(session, user_id=user, clock=clock, settings=Settings(token_ttl_minutes=600))
    engine.dispose()
    return token


@contextmanager
def databases(standby: bool) -> Iterator[tuple[str, str | None]]:
    """(the primary's database URL, the standby's or None)."""
    if standby:
        with primary_and_standby() as (primary, replica), fresh_pg_database(primary.server) as url:
            yield url, f"{replica.server}/{url.rsplit('/', 1)[1]}"
        return
    with postgres_server() as server, fresh_pg_database(server) as url:
        yield url, None


async def read_lists(bases: list[str], token: str, pages: int, until: threading.Event) -> dict[str, Any]:
    """List and dashboard reads, one reader per API process, until `until` is set."""
    import httpx

    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    from_standby = 0

    async def reader(base: str, offset: int) -> None:
        nonlocal from_standby
        n = offset
        cookies = {"dabiao_session": token}
        async with httpx.AsyncClient(base_url=base, timeout=30, cookies=cookies) as client:
            while not until.is_set():
                path = LIST_READS[n % len(LIST_READS)].format(page=1 + n % pages)
                n += 1
                started = time.perf_counter()
                response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] += 1
                from_standby += bool(response.headers.get("x-data-as-of"))

    await asyncio.gather(*(reader(base, k) for k, base in enumerate(bases)))
    latencies.sort()
    return {
        "done": len(latencies),
        "from_standby": from_standby,
        "statuses": statuses,
        "p50": latencies[len(latencies) // 2] * 1000 if latencies else 0.0,
        "p95": latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))] * 1000 if latencies else 0.0,
    }


def watch_lag(url: str, replica: str, until: threading.Event) -> list[float]:
    """The standby's lag, measured as the app measures it, every half second until `until` is set."""
    from workflow.db import Reads, make_engine

    reads = Reads(make_engine(url), make_engine(replica), max_lag_seconds=3600)
    lags: list[float] = []
    while not until.wait(0.5):
        fresh = reads.measure()
        if fresh.lag_seconds is not None:
            lags.append(fresh.lag_seconds)
    reads.dispose()
    reads.primary.dispose()
    return lags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--firms", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=12)
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--no-standby", action="store_true", help="one PostgreSQL, no hot standby")
    args = parser.parse_args()
    import sqlalchemy as sa

    from workflow.db import make_engine

    no_standby = "--no-standby given" if args.no_standby else standby_missing()
    if not no_standby and os.environ.get("DABIAO_BENCH_PG_URL"):
        no_standby = "DABIAO_BENCH_PG_URL names one server"
    with tempfile.TemporaryDirectory() as tmp, databases(not no_standby) as (url, replica):
        prepare(url, args.firms)
        names = firm_names(url)
        token, reader = city_token(url), reader_token(url)
        sink_port, deliveries = _free_port(), Path(tmp) / "deliveries.txt"
        deliveries.touch()
        env = {
            **os.environ,
            "DABIAO_DATABASE_URL": url,
            "DABIAO_SMTP_HOST": "127.0.0.1",
            "DABIAO_SMTP_PORT": str(sink_port),
            "DABIAO_DISPATCH_INTERVAL_SECONDS": "1",
            "DABIAO_MAIL_DIR": str(Path(tmp) / "mail"),
        }
        api_env = {**env, **({"DABIAO_READ_DATABASE_URL": replica} if replica else {})}
        sink_argv = [sys.executable, str(ROOT / "bench" / "smtp_sink.py"), str(sink_port), str(deliveries)]
        sink = subprocess.Popen(sink_argv, stdout=subprocess.DEVNULL)
        ports = [_free_port(), _free_port()]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        serve = [DABIAO, "serve", "--no-scheduler", "--port"]
        processes = [
            *(subprocess.Popen([*serve, str(p)], env=api_env, **quiet) for p in ports),  # type: ignore[call-overload]
            *(subprocess.Popen([DABIAO, "scheduler"], env=env, **quiet) for _ in range(2)),  # type: ignore[call-overload]
            *(subprocess.Popen([DABIAO, "dispatch", "--loop"], env=env, **quiet) for _ in range(2)),  # type: ignore[call-overload]
        ]
        try:
            for port in ports:
                wait_for(port)
            lists = plans(args.requests, args.firms, args.concurrency, 0.3, seed=11)
            halves = [lists[0::2], lists[1::2]]

            bases = [f"http://127.0.0.1:{p}" for p in ports]
            done = threading.Event()
            lags: list[float] = []
            if replica:
                watcher = threading.Thread(target=lambda: lags.extend(watch_lag(url, replica, done)), daemon=True)
                watcher.start()

            async def both() -> tuple[list[dict[str, object]], dict[str, Any]]:
                async def mixed() -> list[dict[str, object]]:
                    try:
                        return list(
                            await asyncio.gather(
                                *(
                                    load(base, half, token, args.time_limit, bare=False, names=names)
                                    for base, half in zip(bases, halves, strict=True)
                                )
                            )
                        )
                    finally:
                        done.set()

                loaded, listed = await asyncio.gather(
                    mixed(), read_lists(bases, reader, max(1, args.firms // 50), done)
                )
                return loaded, listed

            started = time.perf_counter()
            results, listed = asyncio.run(both())
            elapsed = time.perf_counter() - started
            if replica:
                watcher.join(10)
            engine = make_engine(url)
            deadline = time.monotonic() + 120  # the dispatchers drain the outbox
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    waiting = conn.execute(
                        sa.text("SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')")
                    ).scalar_one()
                if not waiting:
                    break
                time.sleep(1)
        finally:
            for process in processes:
                stop(process)
            stop(sink)
        with engine.connect() as conn:
            sent = conn.execute(sa.text("SELECT count(*) FROM outbox WHERE status = 'sent'")).scalar_one()
            outbox = dict(conn.execute(sa.text("SELECT status, count(*) FROM outbox GROUP BY status")).all())
            sweeps = conn.execute(sa.text("SELECT count(*), count(DISTINCT as_of) FROM sweep_runs")).one()
        engine.dispose()
        acknowledged = [item for r in results for item in r["acknowledged"]]  # type: ignore[attr-defined]
        mismatched, missing, chain_ok = check(url, acknowledged)
        lines = [line for line in deliveries.read_text().splitlines() if line]
    counts = Counter(lines)
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    statuses: Counter[int] = Counter()
    for r in results:
        statuses.update(r["statuses"])  # type: ignore[arg-type]
    five = sum(n for code, n in statuses.items() if code >= 500)
    print(f"Machine: {machine()}\n")
    where = "a PostgreSQL primary with a streaming hot standby" if replica else f"one PostgreSQL ({no_standby})"
    list_five = sum(n for code, n in listed["statuses"].items() if code >= 500)
    five += list_five
    print(
        f"2 API processes, 2 schedulers, 2 dispatchers on {where}; {sum(len(x) for x in lists):,} requests "
        f"({len(acknowledged):,} transitions acknowledged) in {elapsed:.1f} s over {args.concurrency} connections; "
        f"statuses {dict(statuses)}."
    )
    print(
        f"Outbox {outbox}; messages delivered {len(lines):,} ({len(counts):,} distinct), duplicates {duplicates}; "
        f"sent rows not delivered {max(0, sent - len(counts))}; acknowledged transitions missing {missing}; "
        f"firms not equal to their replay {mismatched}; chain {'verified' if chain_ok else 'BROKEN'}; "
        f"sweep runs {sweeps[0]} over {sweeps[1]} day(s)."
    )
    share = listed["from_standby"] / listed["done"] if listed["done"] else 0.0
    print(
        f"Beside it, {listed['done']:,} dashboard, list and task-list reads ({', '.join(LIST_READS)}): "
        f"statuses {dict(listed['statuses'])}; **{share:.2f} of them answered by the standby** "
        f"({listed['from_standby']:,}); p50 {listed['p50']:.0f} ms, p95 {listed['p95']:.0f} ms."
    )
    if replica:
        worst = max(lags, default=0.0)
        lagging = sum(1 for lag in lags if lag > 0) / len(lags) if lags else 0.0
        print(
            f"The standby's lag, measured {len(lags)} times: behind at {lagging:.2f} of the measurements, "
            f"at most {worst:.2f} s (reads fall back to the primary beyond DABIAO_REPLICA_MAX_LAG_SECONDS)."
        )
    if duplicates or five or missing or mismatched or not chain_ok or sent > len(counts) or sweeps[0] != sweeps[1]:
        raise SystemExit("scale-out run failed its checks")


if __name__ == "__main__":
    main()
