"""HTTP: `dabiao serve --workers N` on PostgreSQL, loaded from this (second) process over loopback by a bounded
load generator (a fixed number of requests, a time limit, C concurrent connections) mixing reads of a firm
with transitions (notify, then close, each firm's in order); against the same number of reads sent to a bare
FastAPI endpoint doing one query (bench/bare_app.py) under the same workers, in the same run. Afterwards every
firm's state must equal the replay of its events, the audit chain must verify, and every acknowledged
transition must be in the log.

    .venv/bin/python bench/bench_http.py [--requests 20000] [--firms 2000] [--workers 2] [--concurrency 16]
        [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.commands.serve import WORKER_STARTUP_S
from bench.bench_engine import prepare
from bench.common import _free_port, fresh_pg_database, machine, postgres_server

ROOT = Path(__file__).resolve().parents[1]


def city_token(url: str) -> str:
    from sqlmodel import Session

    from states import Role
    from workflow.accounts import NewUser, create_user, issue_token
    from workflow.clock import SystemClock
    from workflow.db import make_engine
    from workflow.settings import Settings

    engine = make_engine(url)
    clock = SystemClock()
    with Session(engine) as session:
        user = create_user(
            session,
            new=NewUser(
                username="bench_city", password="bench horse battery", role=Role.city_bureau, display_name="市局"
            ),
            clock=clock,
        )
        token, _ = issue_token(session, user_id=user, clock=clock, settings=Settings(token_ttl_minutes=600))
    engine.dispose()
    return token


def firm_names(url: str) -> dict[int, str]:
    """Each firm's name: closing a firm is confirmed with it, as an officer types it on the page."""
    import sqlalchemy as sa

    from workflow.db import make_engine
    from workflow.tables import ENTERPRISES

    engine = make_engine(url)
    with engine.connect() as conn:
        names = {int(i): str(n) for i, n in conn.execute(sa.select(ENTERPRISES.c.id, ENTERPRISES.c.name))}
    engine.dispose()
    return names


def serve(argv: list[str], url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DABIAO_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    log = Path(tempfile.gettempdir()) / f"dabiao-bench-http-{port}.log"
    with log.open("wb") as out:  # the server's own output, shown if it does not come up
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.terminate()
    raise SystemExit(f"server did not start: {argv}\n{log.read_text(errors='replace')[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def plans(
    requests: int, firms: int, concurrency: int, writes: float, seed: int, first: int = 1
) -> list[list[tuple[str, int]]]:
    """Each connection's own list of (kind, firm) over the firms `first` … `first + firms - 1`: reads of any
    of them; transitions only on the firms this connection owns, notify before close, so no two connections
    race on one firm's version."""
    rng = random.Random(seed)
    lists: list[list[tuple[str, int]]] = [[] for _ in range(concurrency)]
    last = first + firms - 1
    steps = {k: iter([("notify", f) for f in range(first + k, last + 1, concurrency)]) for k in range(concurrency)}
    pending: dict[int, list[tuple[str, int]]] = {k: [] for k in range(concurrency)}
    for n in range(requests):
        k = n % concurrency
        if rng.random() < writes:
            if pending[k] and rng.random() < 0.5:
                lists[k].append(pending[k].pop(0))
                continue
            step = next(steps[k], None)
            if step is not None:
                lists[k].append(step)
                pending[k].append(("close", step[1]))
                continue
        lists[k].append(("read", rng.randint(first, last)))
    return lists


async def load(
    base: str,
    lists: list[list[tuple[str, int]]],
    token: str | None,
    limit: float,
    bare: bool,
    names: dict[int, str] | None = None,
) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    acknowledged: list[tuple[int, str]] = []
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + limit
    versions: dict[int, int] = {}

    async def worker(client: httpx.AsyncClient, todo: list[tuple[str, int]]) -> None:
        for kind, firm in todo:
            if time.monotonic() > deadline:
                statuses[-1] += 1  # not sent: the time limit came first
                continue
            started = time.perf_counter()
            try:
                if kind == "read":
                    path = f"/firm/{firm}" if bare else f"/api/enterprises/{firm}"
                    response = await client.get(path, headers=headers)
                else:
                    body: dict[str, Any] = {"version": versions.get(firm, 1)}
                    if kind == "close":  # destructive: confirmed with the firm's name
                        body["data"] = {"reason": "企业搬迁"}
                        body["confirm_name"] = (names or {}).get(firm, "")
                    url = f"/api/enterprises/{firm}/transitions/{kind}"
                    response = await client.post(url, json=body, headers=headers)
            except httpx.TransportError:
                statuses[0] += 1  # no answer: the connection dropped
                continue
            if kind != "read" and response.status_code == 200:
                versions[firm] = response.json()["version"]
                acknowledged.append((firm, kind))
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] += 1

    # a connection idle for uvicorn's keep-alive time (5 s) is closed by the server; the client lets it go first
    # (else a request sent as the server closes it is lost: both servers get the same client)
    limits = httpx.Limits(max_connections=len(lists), max_keepalive_connections=len(lists), keepalive_expiry=2.0)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client, todo) for todo in lists))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "elapsed": elapsed,
        "done": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "statuses": dict(statuses),
        "acknowledged": acknowledged,
        "latencies": latencies,
    }


def pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several rounds' loads as one: requests over the summed time, percentiles of all latencies."""
    latencies = sorted(x for run in runs for x in run["latencies"])
    statuses: Counter[int] = Counter()
    for run in runs:
        statuses.update(run["statuses"])
    return {
        "rps": sum(run["done"] for run in runs) / sum(run["elapsed"] for run in runs),
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "statuses": dict(statuses),
        "acknowledged": [item for run in runs for item in run["acknowledged"]],
    }


def check(url: str, acknowledged: list[tuple[int, str]]) -> tuple[int, int, bool]:
    """(firms whose state is not the replay of their events, acknowledged transitions missing, chain ok)."""
    import sqlalchemy as sa

    from workflow.audit import verify_chain
    from workflow.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        mismatched = conn.execute(
            sa.text(
                "SELECT count(*) FROM enterprises e LEFT JOIN LATERAL (SELECT to_state, seq FROM events v "
                "WHERE v.enterprise_id = e.id ORDER BY seq DESC LIMIT 1) last ON true "
                "WHERE e.state <> coalesce(last.to_state, 'mobilized') OR e.event_count <> coalesce(last.seq, 0)"
            )
        ).scalar_one()
        logged = set(conn.execute(sa.text('SELECT enterprise_id, "trigger" FROM events')).all())
        report = verify_chain(conn)
    engine.dispose()
    missing = sum(1 for item in acknowledged if tuple(item) not in logged)
    return int(mismatched), missing, report.ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000, help="per server and round")
    parser.add_argument("--firms", type=int, default=2000, help="per round (each round acts on its own firms)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--writes", type=float, default=0.2, help="share of transitions in the mix")
    parser.add_argument("--rounds", type=int, default=3, help="bare and Dabiao loads taken in turn, this many times")
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds per load")
    args = parser.parse_args()
    rounds = [
        plans(args.requests, args.firms, args.concurrency, args.writes, seed=7 + r, first=1 + r * args.firms)
        for r in range(args.rounds)
    ]
    out = [f"Machine: {machine()}", ""]
    with postgres_server() as server, fresh_pg_database(server) as url:
        prepare(url, args.firms * args.rounds)
        names = firm_names(url)
        token = city_token(url)
        bare_port, dabiao_port = _free_port(), _free_port()
        uvicorn = [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--port", str(bare_port)]
        # both servers stay up; their loads take turns, so a machine shared with other work weighs on both alike
        # the same patience with a worker that starts or answers its supervisor slowly as `dabiao serve` has
        health = ["--timeout-worker-healthcheck", str(WORKER_STARTUP_S)]
        bare = serve([*uvicorn, "--workers", str(args.workers), *health, "--log-level", "warning"], url, bare_port)
        try:
            command = [str(ROOT / ".venv/bin/dabiao"), "serve", "--port", str(dabiao_port)]
            dabiao = serve([*command, "--workers", str(args.workers)], url, dabiao_port)
            try:
                baselines, results = [], []
                for lists in rounds:
                    reads_only = [[("read", firm) for _, firm in todo] for todo in lists]
                    base = f"http://127.0.0.1:{bare_port}"
                    baselines.append(asyncio.run(load(base, reads_only, None, args.time_limit, bare=True)))
                    base = f"http://127.0.0.1:{dabiao_port}"
                    results.append(asyncio.run(load(base, lists, token, args.time_limit, bare=False, names=names)))
            finally:
                stop(dabiao)
        finally:
            stop(bare)
        baseline, result = pooled(baselines), pooled(results)
        mismatched, missing, chain_ok = check(url, result["acknowledged"])
    five = sum(n for code, n in result["statuses"].items() if code >= 500)
    unanswered = result["statuses"].get(0, 0)
    transitions = sum(1 for lists in rounds for todo in lists for kind, _ in todo if kind != "read")
    per_round = ", ".join(f"{r['rps'] / b['rps']:.2f}" for b, r in zip(baselines, results, strict=True))
    out += [
        f"{args.rounds} rounds of {args.requests:,} requests per server over {args.concurrency} connections to "
        f"{args.workers} worker processes each; to Dabiao {transitions:,} of them transitions (notify, close), the "
        f"rest reads of a firm; {args.firms:,} firms a round. The bare server gets the same reads without the "
        "transitions; the two servers' loads take turns.",
        "",
        "| server | requests/s | p50 ms | p99 ms | statuses |",
        "|---|---|---|---|---|",
        f"| bare FastAPI, one query (baseline) | {baseline['rps']:,.0f} | {baseline['p50']:.1f} | "
        f"{baseline['p99']:.1f} | {baseline['statuses']} |",
        f"| `dabiao serve` | {result['rps']:,.0f} | {result['p50']:.1f} | {result['p99']:.1f} | {result['statuses']} |",
        "",
        f"Ratio: Dabiao serves {result['rps'] / baseline['rps']:.2f}× the baseline's requests/s (by round: "
        f"{per_round}; target ≥ 0.6), p99 {result['p99'] / baseline['p99']:.2f}× the baseline's (target ≤ 2), p50 "
        f"{result['p50'] / baseline['p50']:.2f}×; 5xx: {five}; no answer: {unanswered}; firms whose state differs "
        f"from the replay of their "
        f"events: {mismatched}; acknowledged transitions missing from the log: {missing}; audit chain "
        f"{'verified' if chain_ok else 'BROKEN'}.",
    ]
    print("\n".join(out))
    if five or unanswered or mismatched or missing or not chain_ok:
        raise SystemExit("HTTP run failed its checks")


if __name__ == "__main__":
    main()
