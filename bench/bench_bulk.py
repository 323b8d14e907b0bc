"""Bulk actions: a district verifying its applications in one call (`workflow.bulk.fire_many`), the city
certifying a list in one call, each firm still its own audited transition, against the same work done
as single `fire` calls in the same run (half the firms each way, alternating which half goes first).

    .venv/bin/python bench/bench_bulk.py [--firms 1000] [--backend sqlite,postgres]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from workflow.context import Context

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_engine import DAY, prepare
from bench.common import fresh_pg_database, machine, postgres_server


def run(url: str, firms: int) -> dict[str, float]:
    from sqlmodel import Session

    from states import Role
    from workflow.actors import Actor
    from workflow.bulk import BulkTarget, fire_many
    from workflow.campaign import load_campaign
    from workflow.clock import FixedClock
    from workflow.db import make_engine
    from workflow.engine import fire
    from workflow.settings import DEFAULT_CAMPAIGN

    campaign = load_campaign(DEFAULT_CAMPAIGN)
    engine = make_engine(url)
    clock = FixedClock.on(DAY)
    city = Actor(name="bench city", role=Role.city_bureau)
    with engine.connect() as conn:
        districts = dict(conn.exec_driver_sql("SELECT id, district_code FROM enterprises").all())

    def actor(role: str, firm: int) -> Actor:
        return Actor(name=f"bench {role}", role=Role(role), district_code=districts[firm], enterprise_id=firm)

    def single(firm_ids: list[int], trigger: str, role: str, data: dict[str, Any] | None = None) -> float:
        started = time.perf_counter()
        with Session(engine) as session:
            for n in firm_ids:
                fire(
                    session,
                    enterprise_id=n,
                    trigger=trigger,
                    actor=actor(role, n),
                    context=Context(campaign, clock),
                    payload=data,
                )
        return time.perf_counter() - started

    def bulk(firm_ids: list[int], trigger: str, who: Actor, data: dict[str, Any] | None = None) -> float:
        started = time.perf_counter()
        with Session(engine) as session:
            outcomes = fire_many(
                session,
                trigger=trigger,
                targets=[BulkTarget(n) for n in firm_ids],
                actor=who,
                context=Context(campaign, clock),
                payload=data,
            )
        assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:3]
        return time.perf_counter() - started

    ids = sorted(districts)
    by_district: dict[str, list[int]] = {}
    for n in ids:
        by_district.setdefault(districts[n], []).append(n)
    # set-up (not timed): every firm to `applied`, district by district as its bureau would
    for code, members in by_district.items():
        bureau = Actor(name="bench district", role=Role.district_bureau, district_code=code)
        bulk(members, "notify", bureau)
    for n in ids:
        with Session(engine) as session:
            for trigger in ("start_self_assessment", "submit_application"):
                fire(
                    session,
                    enterprise_id=n,
                    trigger=trigger,
                    actor=actor("enterprise", n),
                    context=Context(campaign, clock),
                )
    half_a, half_b = ids[::2], ids[1::2]
    timings: dict[str, float] = {}
    # verify: the district bureaus, each over its own firms (single) or in one call per district (bulk)
    opinion = {"opinion": "材料齐全"}
    timings["verify_single"] = single(half_a, "verify", "district_bureau", opinion)
    timings["verify_bulk"] = 0.0
    for code, members in by_district.items():
        bureau = Actor(name="bench district", role=Role.district_bureau, district_code=code)
        timings["verify_bulk"] += bulk([n for n in members if n in set(half_b)], "verify", bureau, opinion)
    for n in ids:  # audit and review, not timed
        with Session(engine) as session:
            fire(
                session,
                enterprise_id=n,
                trigger="pass_audit",
                actor=actor("district_bureau", n),
                context=Context(campaign, clock),
            )
            fire(
                session,
                enterprise_id=n,
                trigger="record_review",
                actor=actor("district_bureau", n),
                context=Context(campaign, clock),
                payload={"score": 82.5},
                team=True,  # the team's result, as workflow.pool records it (the team itself is not timed)
            )
    # certify: the city, over the whole list — bulk first this time
    timings["certify_bulk"] = bulk(half_b, "certify", city)
    timings["certify_single"] = single(half_a, "certify", "city_bureau")
    engine.dispose()
    per = {"verify": (len(half_a), len(half_b)), "certify": (len(half_a), len(half_b))}
    return {
        f"{step}_{kind}": n / timings[f"{step}_{kind}"]
        for step, (n_single, n_bulk) in per.items()
        for kind, n in (("single", n_single), ("bulk", n_bulk))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--firms", type=int, default=1000, help="firms in all (half single, half bulk)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backend", default="sqlite,postgres")
    args = parser.parse_args()
    out = [f"Machine: {machine()}", ""]
    for backend in args.backend.split(","):
        rounds = []
        for _ in range(args.rounds):
            if backend == "sqlite":
                with tempfile.TemporaryDirectory() as tmp:
                    url = f"sqlite:///{Path(tmp) / 'bulk.db'}"
                    prepare(url, args.firms)
                    rounds.append(run(url, args.firms))
            else:
                with postgres_server() as server, fresh_pg_database(server) as url:
                    prepare(url, args.firms)
                    rounds.append(run(url, args.firms))
        out.append(f"**{backend}**, {args.firms // 2} firms each way, {args.rounds} rounds (transitions/s, ratio):")
        for step in ("verify", "certify"):
            single = statistics.median(r[f"{step}_single"] for r in rounds)
            bulk = statistics.median(r[f"{step}_bulk"] for r in rounds)
            ratios = ", ".join(f"{r[f'{step}_bulk'] / r[f'{step}_single']:.2f}" for r in rounds)
            out.append(f"- {step}: single `fire` {single:,.0f}/s, one bulk call {bulk:,.0f}/s = {ratios}× single")
        out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
