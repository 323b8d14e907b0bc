"""Scale-out in one run on this machine: two API processes (`dabiao serve`), two schedulers (`dabiao
scheduler`, one leads by advisory lock) and two dispatchers (`dabiao dispatch --loop`) on one PostgreSQL,
with the bounded mixed load of bench_http.py spread over both API processes; mail goes to an SMTP sink
that records every delivery. Then, with everything stopped: no message delivered twice, every outbox row
sent was delivered, every acknowledged transition is in the log, every firm's state is the replay of its
events, the audit chain verifies, and each sweep day ran once.

    .venv/bin/python bench/bench_scaleout.py [--requests 3000] [--firms 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_engine import prepare
from bench.bench_http import check, city_token, load, plans, stop
from bench.common import _free_port, fresh_pg_database, machine, postgres_server

ROOT = Path(__file__).resolve().parents[1]
DABIAO = str(ROOT / ".venv" / "bin" / "dabiao")


def wait_for(port: int, path: str = "/healthz") -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"nothing answers on port {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--firms", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=12)
    parser.add_argument("--time-limit", type=float, default=120.0)
    args = parser.parse_args()
    import sqlalchemy as sa

    from workflow.db import make_engine

    with tempfile.TemporaryDirectory() as tmp, postgres_server() as server, fresh_pg_database(server) as url:
        prepare(url, args.firms)
        token = city_token(url)
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
        sink_argv = [sys.executable, str(ROOT / "bench" / "smtp_sink.py"), str(sink_port), str(deliveries)]
        sink = subprocess.Popen(sink_argv, stdout=subprocess.DEVNULL)
        ports = [_free_port(), _free_port()]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        processes = [
            *(subprocess.Popen([DABIAO, "serve", "--port", str(p), "--no-scheduler"], env=env, **quiet) for p in ports),  # type: ignore[call-overload]
            *(subprocess.Popen([DABIAO, "scheduler"], env=env, **quiet) for _ in range(2)),  # type: ignore[call-overload]
            *(subprocess.Popen([DABIAO, "dispatch", "--loop"], env=env, **quiet) for _ in range(2)),  # type: ignore[call-overload]
        ]
        try:
            for port in ports:
                wait_for(port)
            lists = plans(args.requests, args.firms, args.concurrency, 0.3, seed=11)
            halves = [lists[0::2], lists[1::2]]

            async def both() -> list[dict[str, object]]:
                return list(
                    await asyncio.gather(
                        *(
                            load(f"http://127.0.0.1:{p}", half, token, args.time_limit, bare=False)
                            for p, half in zip(ports, halves, strict=True)
                        )
                    )
                )

            started = time.perf_counter()
            results = asyncio.run(both())
            elapsed = time.perf_counter() - started
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
    print(
        f"2 API processes, 2 schedulers, 2 dispatchers on one PostgreSQL; {sum(len(x) for x in lists):,} requests "
        f"({len(acknowledged):,} transitions acknowledged) in {elapsed:.1f} s over {args.concurrency} connections; "
        f"statuses {dict(statuses)}."
    )
    print(
        f"Outbox {outbox}; messages delivered {len(lines):,} ({len(counts):,} distinct), duplicates {duplicates}; "
        f"sent rows not delivered {max(0, sent - len(counts))}; acknowledged transitions missing {missing}; "
        f"firms not equal to their replay {mismatched}; chain {'verified' if chain_ok else 'BROKEN'}; "
        f"sweep runs {sweeps[0]} over {sweeps[1]} day(s)."
    )
    if duplicates or five or missing or mismatched or not chain_ok or sent > len(counts) or sweeps[0] != sweeps[1]:
        raise SystemExit("scale-out run failed its checks")


if __name__ == "__main__":
    main()
