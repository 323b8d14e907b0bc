"""Engine throughput: firms driven through the seven user steps of the main path (notify → … → certify), each
step one `fire` (state, version check, hash-chained event, outbox rows for the steps that mail), as ratios
against baselines measured in the same run on the same machine:
  * raw: the DBAPI driver alone doing, per step, the version-checked UPDATE, the event INSERT and an outbox
    INSERT in one transaction (sqlite3 / psycopg, on the same schema, its triggers included — those of the
    sweeps and of the dashboards' summary) — the limit; also measured with the summary's triggers dropped,
    to show what keeping the summary costs each transition;
  * SpiffWorkflow: a BPMN process with the same seven user tasks, its serialized state written to SQLite
    after each step in its own transaction — the peer.
Each contestant gets a fresh copy of the same database; the rounds alternate and are repeated, and the
ratios of each round are reported (median and spread).

    .venv/bin/python bench/bench_engine.py [--firms 300] [--rounds 3] [--backend sqlite,postgres,spiff]
    .venv/bin/python bench/bench_engine.py --profile sqlite     # pyinstrument/cProfile of the engine run
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workflow.context import Context

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import itertools

from bench.common import dbapi_url, fresh_pg_database, machine, postgres_server

DAY = dt.date(2022, 7, 1)  # inside the evaluation window
NOW = dt.datetime(2022, 7, 1, 4, 0, tzinfo=dt.UTC)
# (trigger, role, payload, mails) — the seven user steps of a non-key firm's main path.
STEPS: list[tuple[str, str, dict[str, Any] | None, bool]] = [
    ("notify", "district_bureau", None, True),
    ("start_self_assessment", "enterprise", None, False),
    ("submit_application", "enterprise", None, True),
    ("verify", "district_bureau", {"opinion": "材料齐全"}, False),
    ("pass_audit", "district_bureau", None, True),
    ("record_review", "district_bureau", {"score": 82.5}, False),
    ("certify", "city_bureau", None, True),
]
DEST = ["mobilized", "self_assessing", "applied", "verified", "verified", "reviewed", "certified"]


# ---- data ------------------------------------------------------------------------------------------


def prepare(url: str, firms: int) -> None:
    """Migrate and fill: `firms` mobilized non-key firms, each with a self-assessment on record and the
    dossier's files (a self-assessment report and an application form)."""
    import sqlalchemy as sa

    from workflow.campaign import load_campaign, sync_districts
    from workflow.db import make_engine, migrate
    from workflow.settings import DEFAULT_CAMPAIGN
    from workflow.tables import ENTERPRISES, EVIDENCE_FILES, SELF_ASSESSMENTS

    campaign = load_campaign(DEFAULT_CAMPAIGN)
    engine = make_engine(url)
    migrate(engine)
    districts = [d.code for d in campaign.districts]
    with engine.begin() as conn:
        sync_districts(conn, campaign)
        conn.execute(
            sa.insert(ENTERPRISES),
            [
                {
                    "uscc": f"91320{n:013d}",
                    "name": f"常州基准{n}机械有限公司",
                    "district_code": districts[n % len(districts)],
                    "sector": "machinery",
                    "key_field": False,
                    "above_size": True,
                    "principal": "张三",
                    "phone": "13900000000",
                    "email": f"f{n}@example.com",
                    "state": "mobilized",
                    "version": 1,
                    "state_since": NOW,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for n in range(1, firms + 1)
            ],
        )
        conn.execute(
            sa.insert(SELF_ASSESSMENTS),
            [
                {"enterprise_id": n, "total_score": 80.0, "recorded_at": NOW, "recorded_by": "bench"}
                for n in range(1, firms + 1)
            ],
        )
        conn.execute(
            sa.insert(EVIDENCE_FILES),
            [
                {
                    "sha256": f"{n:064x}",
                    "enterprise_id": n,
                    "kind": kind,
                    "filename": f"{kind}.pdf",
                    "content_type": "application/pdf",
                    "size": 100,
                    "uploaded_at": NOW,
                    "uploaded_by": "bench",
                }
                for n in range(1, firms + 1)
                for kind in ("self_assessment_report", "application_form")
            ],
        )
    engine.dispose()


# ---- contestants -----------------------------------------------------------------------------------


def run_engine(url: str, firms: int) -> float:
    """Seconds for `fire` to take every firm along the seven steps."""
    from sqlmodel import Session

    from states import Role
    from workflow.actors import Actor
    from workflow.campaign import load_campaign
    from workflow.clock import FixedClock
    from workflow.db import make_engine
    from workflow.engine import fire, load_firm

    campaign = load_campaign(DEFAULT_CAMPAIGN())
    engine = make_engine(url)
    clock = FixedClock.on(DAY)
    with engine.connect() as conn:
        scopes = {n: load_firm(conn, enterprise_id=n).district_code for n in range(1, firms + 1)}
    with Session(engine) as session:
        started = time.perf_counter()
        for n in range(1, firms + 1):
            for trigger, role, payload, _ in STEPS:
                actor = Actor(name=f"bench {role}", role=Role(role), district_code=scopes[n], enterprise_id=n)
                fire(
                    session,
                    enterprise_id=n,
                    trigger=trigger,
                    actor=actor,
                    context=Context(campaign, clock),
                    payload=payload,
                    team=trigger == "record_review",  # the team's result, as workflow.pool records it
                )
        elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def DEFAULT_CAMPAIGN() -> Path:
    from workflow.settings import DEFAULT_CAMPAIGN as path

    return path


def _raw_rows(n: int, version: int, step: int) -> tuple[dict[str, Any], str, str]:
    trigger, role, payload, _ = STEPS[step]
    prev = hashlib.sha256(f"{n}:{step}".encode()).hexdigest()
    body = json.dumps({"n": n, "trigger": trigger, "role": role, "payload": payload or {}}, sort_keys=True)
    return {"trigger": trigger, "role": role, "payload": json.dumps(payload or {})}, prev, body


def run_raw_sqlite(path: Path, firms: int, *, sweep_triggers: bool = True, summary_triggers: bool = True) -> float:
    """Seconds for raw sqlite3 to do the same writes: UPDATE … WHERE version = ?, event, outbox, one
    transaction per step. Without `sweep_triggers`, the database triggers that record changes for the
    sweeps (migration 0004) are dropped first; without `summary_triggers`, those that keep the dashboards'
    summary (migration 0010): the difference is what they cost each transition."""
    conn = sqlite3.connect(path, isolation_level=None)
    dropped = ([] if sweep_triggers else ["%sweep_changes%"]) + ([] if summary_triggers else ["%summary_%"])
    for pattern in dropped:
        names = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND sql LIKE ?", (pattern,))
        for (name,) in names.fetchall():
            conn.execute(f"DROP TRIGGER {name}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    at = NOW.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    started = time.perf_counter()
    for n in range(1, firms + 1):
        head = "0" * 64
        for step in range(len(STEPS)):
            values, _, body = _raw_rows(n, step + 1, step)
            digest = hashlib.sha256((head + body).encode()).hexdigest()
            conn.execute("BEGIN IMMEDIATE")
            cur = conn.execute(
                "UPDATE enterprises SET state = ?, version = ?, event_count = ?, chain_head = ?, updated_at = ? "
                "WHERE id = ? AND version = ?",
                (DEST[step], step + 2, step + 1, digest, at, n, step + 1),
            )
            assert cur.rowcount == 1
            conn.execute(
                'INSERT INTO events (enterprise_id, seq, "trigger", actor, role, at, from_state, to_state, payload, '
                "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    n,
                    step + 1,
                    values["trigger"],
                    "raw",
                    values["role"],
                    at,
                    "x",
                    DEST[step],
                    values["payload"],
                    head,
                    digest,
                ),
            )
            conn.execute(
                "INSERT INTO outbox (dedupe_key, kind, audience, enterprise_id, to_address, lang, context, status, "
                "attempts, next_attempt_at, created_at) "
                "VALUES (?, ?, 'enterprise', ?, ?, 'zh-CN', ?, 'pending', 0, ?, ?)",
                (f"raw:{n}:{step}", values["trigger"], n, f"f{n}@example.com", body, at, at),
            )
            conn.execute("COMMIT")
            head = digest
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def run_raw_postgres(url: str, firms: int, *, summary_triggers: bool = True) -> float:
    """The same writes through psycopg alone, one connection, one transaction per step (without
    `summary_triggers`, those that keep the dashboards' summary are dropped first)."""
    import psycopg
    from psycopg.types.json import Json

    conn = psycopg.connect(dbapi_url(url))
    if not summary_triggers:
        for name in ("update", "insert", "delete"):
            conn.execute(f"DROP TRIGGER summary_{name} ON enterprises")
        conn.commit()
    started = time.perf_counter()
    for n in range(1, firms + 1):
        head = "0" * 64
        for step in range(len(STEPS)):
            values, _, body = _raw_rows(n, step + 1, step)
            digest = hashlib.sha256((head + body).encode()).hexdigest()
            cur = conn.execute(
                "UPDATE enterprises SET state = %s, version = %s, event_count = %s, chain_head = %s, updated_at = %s "
                "WHERE id = %s AND version = %s",
                (DEST[step], step + 2, step + 1, digest, NOW, n, step + 1),
            )
            assert cur.rowcount == 1
            conn.execute(
                'INSERT INTO events (enterprise_id, seq, "trigger", actor, role, at, from_state, to_state, payload, '
                "prev_hash, hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    n,
                    step + 1,
                    values["trigger"],
                    "raw",
                    values["role"],
                    NOW,
                    "x",
                    DEST[step],
                    Json(STEPS[step][2] or {}),
                    head,
                    digest,
                ),
            )
            conn.execute(
                "INSERT INTO outbox (dedupe_key, kind, audience, enterprise_id, to_address, lang, context, status, "
                "attempts, next_attempt_at, created_at) "
                "VALUES (%s, %s, 'enterprise', %s, %s, 'zh-CN', %s, 'pending', 0, %s, %s)",
                (f"raw:{n}:{step}", values["trigger"], n, f"f{n}@example.com", Json({"body": body}), NOW, NOW),
            )
            conn.commit()
            head = digest
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


BPMN_PROCESS = "dabiao_main_path"


def bpmn_xml() -> bytes:
    """The main path as BPMN 2.0: start, the seven user tasks in sequence, end."""
    ids = ["start", *(s[0] for s in STEPS), "end"]
    tasks = "".join(f'<bpmn:userTask id="{s[0]}" name="{s[0]}"/>' for s in STEPS)
    flows = "".join(
        f'<bpmn:sequenceFlow id="flow{i}" sourceRef="{a}" targetRef="{b}"/>'
        for i, (a, b) in enumerate(itertools.pairwise(ids))
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="dabiao" '
        'targetNamespace="http://bpmn.io/schema/bpmn">'
        f'<bpmn:process id="{BPMN_PROCESS}" isExecutable="true"><bpmn:startEvent id="start"/>{tasks}'
        f'<bpmn:endEvent id="end"/>{flows}</bpmn:process></bpmn:definitions>'
    ).encode()


def run_spiff(path: Path, firms: int) -> float:
    """Seconds for SpiffWorkflow to run each firm's process through the seven user tasks, its serialized
    state persisted to SQLite (one transaction) after each step."""
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.bpmn.parser import BpmnParser
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.util.task import TaskState

    parser = BpmnParser()
    parser.add_bpmn_str(bpmn_xml())
    spec = parser.get_spec(BPMN_PROCESS)
    serializer = BpmnWorkflowSerializer()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS spiff_workflows (id INTEGER PRIMARY KEY, state TEXT NOT NULL)")
    steps = 0
    started = time.perf_counter()
    for n in range(1, firms + 1):
        workflow = BpmnWorkflow(spec)
        workflow.do_engine_steps()
        conn.execute("INSERT INTO spiff_workflows (id, state) VALUES (?, ?)", (n, serializer.serialize_json(workflow)))
        for trigger, role, payload, _ in STEPS:
            [task] = workflow.get_tasks(state=TaskState.READY, manual=True)
            assert task.task_spec.name == trigger
            task.data.update({"actor": f"bench {role}", **(payload or {})})
            task.run()
            workflow.do_engine_steps()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE spiff_workflows SET state = ? WHERE id = ?", (serializer.serialize_json(workflow), n))
            conn.execute("COMMIT")
            steps += 1
        assert workflow.is_completed()
    elapsed = time.perf_counter() - started
    conn.close()
    assert steps == firms * len(STEPS)
    return elapsed


# ---- checks ----------------------------------------------------------------------------------------


def check_engine_result(url: str, firms: int) -> None:
    """After the engine's run: every firm certified, the audit chain intact, one outbox row per mail."""
    import sqlalchemy as sa

    from workflow.audit import verify_chain
    from workflow.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        states = dict(conn.execute(sa.text("SELECT state, count(*) FROM enterprises GROUP BY state")).all())
        outbox = conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar()
        report = verify_chain(conn)
    engine.dispose()
    assert states == {"certified": firms}, states
    assert outbox == firms * sum(1 for s in STEPS if s[3]), outbox
    assert report.ok and report.events_checked == firms * len(STEPS), report


# ---- the run -----------------------------------------------------------------------------------------


def measure_sqlite(firms: int, rounds: int, spiff: bool) -> list[dict[str, float]]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template.db"
        prepare(f"sqlite:///{template}", firms)
        for r in range(rounds):
            row: dict[str, float] = {}
            contestants: list[tuple[str, Callable[[Path], float]]] = [
                ("raw", lambda p: run_raw_sqlite(p, firms)),
                ("raw_untriggered", lambda p: run_raw_sqlite(p, firms, sweep_triggers=False)),
                ("raw_unsummarised", lambda p: run_raw_sqlite(p, firms, summary_triggers=False)),
                ("engine", lambda p: run_engine(f"sqlite:///{p}", firms)),
            ]
            if spiff:
                contestants.append(("spiff", lambda p: run_spiff(p, firms)))
            for name, run in contestants if r % 2 == 0 else reversed(contestants):
                copy = Path(tmp) / f"{name}-{r}.db"
                shutil.copy(template, copy)
                row[name] = firms * len(STEPS) / run(copy)
                if name == "engine" and r == 0:
                    check_engine_result(f"sqlite:///{copy}", firms)
                copy.unlink()
            results.append(row)
    return results


def measure_postgres(firms: int, rounds: int) -> list[dict[str, float]]:
    results = []
    with postgres_server() as server:
        for r in range(rounds):
            row: dict[str, float] = {}
            order = ["raw", "raw_unsummarised", "engine"]
            for name in order if r % 2 == 0 else reversed(order):
                with fresh_pg_database(server) as url:
                    prepare(url, firms)
                    if name.startswith("raw"):
                        summarised = name == "raw"
                        row[name] = firms * len(STEPS) / run_raw_postgres(url, firms, summary_triggers=summarised)
                    else:
                        row[name] = firms * len(STEPS) / run_engine(url, firms)
                        if r == 0:
                            check_engine_result(url, firms)
            results.append(row)
    return results


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} (rounds: {', '.join(f'{v:.2f}' for v in values)})"


def report(backend: str, rows: list[dict[str, float]], firms: int) -> list[str]:
    lines = [f"**{backend}**, {firms} firms × {len(STEPS)} steps, {len(rows)} rounds:", ""]
    lines.append("| contestant | transitions/s (median) | ratio |")
    lines.append("|---|---|---|")
    raw = [r["raw"] for r in rows]
    engine = [r["engine"] for r in rows]
    lines.append(f"| raw driver (limit) | {statistics.median(raw):,.0f} | 1 |")
    if "raw_untriggered" in rows[0]:
        untriggered = [r["raw_untriggered"] for r in rows]
        cost = spread([r["raw"] / r["raw_untriggered"] for r in rows])
        lines.append(
            f"| raw, sweep_changes triggers dropped | {statistics.median(untriggered):,.0f} | raw = {cost}× this |"
        )
    if "raw_unsummarised" in rows[0]:
        unsummarised = [r["raw_unsummarised"] for r in rows]
        cost = spread([r["raw"] / r["raw_unsummarised"] for r in rows])
        lines.append(f"| raw, summary triggers dropped | {statistics.median(unsummarised):,.0f} | raw = {cost}× this |")
    lines.append(
        f"| `fire` | {statistics.median(engine):,.0f} | {spread([r['engine'] / r['raw'] for r in rows])} of raw |"
    )
    if "spiff" in rows[0]:
        spiff = [r["spiff"] for r in rows]
        lines.append(
            f"| SpiffWorkflow + SQLite | {statistics.median(spiff):,.0f} | `fire` = "
            f"{spread([r['engine'] / r['spiff'] for r in rows])}× Spiff |"
        )
    return [*lines, ""]


def profile(backend: str, firms: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if backend == "sqlite":
            url = f"sqlite:///{Path(tmp) / 'p.db'}"
            prepare(url, firms)
            _profile_run(url, firms)
        else:
            with postgres_server() as server, fresh_pg_database(server) as url:
                prepare(url, firms)
                _profile_run(url, firms)


def _profile_run(url: str, firms: int) -> None:
    try:
        from pyinstrument import Profiler
    except ImportError:
        import cProfile

        cProfile.runctx("run_engine(url, firms)", globals(), {"url": url, "firms": firms}, sort="cumulative")
        return
    profiler = Profiler(interval=0.0002)
    profiler.start()
    run_engine(url, firms)
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--firms", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", default="sqlite,postgres,spiff", help="comma list of sqlite, postgres, spiff")
    parser.add_argument("--profile", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    if args.profile:
        profile(args.profile, args.firms)
        return
    wanted = set(args.backend.split(","))
    out = [f"Machine: {machine()}", ""]
    if "sqlite" in wanted:
        out += report("SQLite", measure_sqlite(args.firms, args.rounds, "spiff" in wanted), args.firms)
    if "postgres" in wanted:
        out += report("PostgreSQL", measure_postgres(args.firms, args.rounds), args.firms)
    print("\n".join(out))


if __name__ == "__main__":
    main()
