"""kill -9 in the middle of a directory import, a bulk of transitions, a dispatch batch and the campaign's
sweeps: after a restart nothing is half-written, nothing is lost, nothing happens twice, the audit chain holds."""

from __future__ import annotations

import datetime as dt
import random
import time
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from notifications.dispatch import JOURNAL, dispatch_once
from tests.deadline_helpers import bulk_firms, forget_sweeps, snapshot
from tests.factories import make_firm
from tests.reliability.conftest import Ledger, backend_of
from tests.reliability.faults import DABIAO, dabiao, kill_when, start, writing
from tests.smtp_helpers import running_smtp
from workflow.campaign import Campaign
from workflow.clock import FixedClock
from workflow.tables import ENTERPRISES, EVENTS, OUTBOX

DIRECTORY_ROWS = 5_000
KILLS = 20  # kill -9 landed inside the write, per test and backend


def firm_rows(engine: sa.Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(ENTERPRISES).order_by(ENTERPRISES.c.uscc)).all()]


def test_directory_import_killed_mid_write_leaves_nothing_half_written(
    engine: sa.Engine, db_url: str, tmp_path: Path, ledger: Ledger
) -> None:
    first, second = tmp_path / "directory.csv", tmp_path / "directory-2.csv"
    assert (
        dabiao(db_url, "generate-directory", "--count", str(DIRECTORY_ROWS), "--seed", "8", "-o", str(first)).returncode
        == 0
    )
    rng = random.Random(8)
    killed = attempts = 0
    while killed < KILLS // 2 and attempts < KILLS * 2:  # a first import, killed inside its transaction
        attempts += 1
        proc = start([DABIAO, "--database-url", db_url, "import-directory", str(first)])
        if kill_when(proc, lambda: writing(db_url, "enterprises"), after=rng.uniform(0, 0.1)):
            rows = len(firm_rows(engine))
            assert rows in (0, DIRECTORY_ROWS)  # not one firm of the file, or (killed after commit) all
            if rows == DIRECTORY_ROWS:
                break  # committed just before the kill: the second phase goes on from here
            killed += 1
    done = dabiao(db_url, "import-directory", str(first))
    assert done.returncode == 0, done.stderr
    before = firm_rows(engine)
    assert len(before) == DIRECTORY_ROWS

    # a second file changes every principal: killed mid-way, not one firm shows the new name
    text = first.read_text(encoding="utf-8-sig").splitlines()
    header = text[0].split(",")
    column = next(i for i, h in enumerate(header) if h in ("主要负责人", "principal"))
    lines = [text[0]]
    for line in text[1:]:
        cells = line.split(",")
        cells[column] = "新负责人"
        lines.append(",".join(cells))
    second.write_text("\n".join(lines) + "\n", encoding="utf-8")
    while killed < KILLS and attempts < KILLS * 4:
        attempts += 1
        proc = start([DABIAO, "--database-url", db_url, "import-directory", str(second)])
        if kill_when(proc, lambda: writing(db_url, "enterprises"), after=rng.uniform(0, 0.1)):
            with engine.connect() as conn:
                renamed = conn.execute(sa.select(sa.func.count()).where(ENTERPRISES.c.principal == "新负责人")).scalar()
            assert renamed in (0, DIRECTORY_ROWS)  # no firm shows the new name, or (killed after commit) all
            if renamed == DIRECTORY_ROWS:
                break
            killed += 1
            assert firm_rows(engine) == before
    done = dabiao(db_url, "import-directory", str(second))
    assert done.returncode == 0, done.stderr
    with engine.connect() as conn:
        principals = Counter(conn.execute(sa.select(ENTERPRISES.c.principal)).scalars())
    assert principals == {"新负责人": DIRECTORY_ROWS}
    assert killed >= KILLS  # each counted kill landed inside the transaction
    ledger.record(
        "kill -9",
        f"`dabiao import-directory` ({DIRECTORY_ROWS:,} rows, new and changed) killed inside its transaction",
        backend=backend_of(db_url),
        tries=killed,
        detail="after each kill inside the transaction: no row of the file written, no changed row; "
        "a rerun imports it all",
    )


def events_and_firms(
    engine: sa.Engine, ids: range
) -> tuple[dict[int, list[sa.Row[object]]], dict[int, sa.Row[object]]]:
    with engine.connect() as conn:
        events: dict[int, list[sa.Row[object]]] = {i: [] for i in ids}
        for e in conn.execute(sa.select(EVENTS).where(EVENTS.c.enterprise_id.in_(ids)).order_by(EVENTS.c.seq)):
            events[e.enterprise_id].append(e)
        firms = {f.id: f for f in conn.execute(sa.select(ENTERPRISES).where(ENTERPRISES.c.id.in_(ids)))}
    return events, firms


def check_all_or_nothing(engine: sa.Engine, ids: range) -> int:
    """Every firm: version, event count, state and outbox agree with its events. Returns the events seen."""
    events, firms = events_and_firms(engine, ids)
    with engine.connect() as conn:
        mails = set(conn.execute(sa.select(OUTBOX.c.dedupe_key).where(OUTBOX.c.enterprise_id.in_(ids))).scalars())
    expected_mails = set()
    for firm_id in ids:
        firm, history = firms[firm_id], events[firm_id]
        assert [e.seq for e in history] == list(range(1, len(history) + 1))
        assert firm.version == 1 + len(history) and firm.event_count == len(history)
        assert firm.state == (history[-1].to_state if history else "mobilized")
        assert (firm.notified_at is not None) == any(e.trigger == "notify" for e in history)
        expected_mails |= {
            f"transition:{firm_id}:{e.seq}:mobilization_notice" for e in history if e.trigger == "notify"
        }
    assert mails == expected_mails
    return sum(len(h) for h in events.values())


def test_bulk_transitions_killed_are_each_fully_there_or_absent(engine: sa.Engine, db_url: str, ledger: Ledger) -> None:
    firms = [make_firm(engine, key_field=n % 2 == 0) for n in range(1200)]
    ids = range(firms[0], firms[-1] + 1)
    rng = random.Random(9)
    kills, start_at = 0, ids.start
    script = ["-m", "tests.reliability.fire_many", db_url]
    while kills < KILLS:
        if start_at > ids.stop - 1:  # every firm done before enough kills (a fast machine): more firms
            more = [make_firm(engine, key_field=n % 2 == 0) for n in range(600)]
            ids = range(ids.start, more[-1] + 1)
        proc = start([DABIAO.removesuffix("dabiao") + "python", *script, str(start_at), str(ids.stop - 1)])
        if kill_when(proc, lambda: writing(db_url, "events"), after=rng.uniform(0.0, 0.15)):
            kills += 1
        check_all_or_nothing(engine, ids)
        events, _ = events_and_firms(engine, ids)
        # resume after the last firm fully done; a firm half-way (notified, not started) finishes below
        start_at = next((i for i in ids if len(events[i]) < 2), ids.stop)
        if start_at <= ids.stop - 1 and len(events[start_at]) == 1:
            done = dabiao(db_url, "fire", firms_uscc(engine, start_at), "start_self_assessment", "--role", "enterprise",
                          "--as-of", "2022-03-10")  # fmt: skip
            assert done.returncode == 0, done.stderr
            start_at += 1
    if start_at <= ids.stop - 1:
        rest = start([DABIAO.removesuffix("dabiao") + "python", *script, str(start_at), str(ids.stop - 1)])
        assert rest.wait(timeout=300) == 0
    total = check_all_or_nothing(engine, ids)
    assert total == 2 * len(ids)
    assert kills >= KILLS
    verified = dabiao(db_url, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    ledger.record(
        "kill -9",
        f"a script firing {2 * len(ids):,} transitions (notify, start self-assessment) killed while writing",
        backend=backend_of(db_url),
        tries=kills,
        detail=f"each firm's version, event count, state and mail agree with its events; {total} events; "
        "`dabiao audit verify` passes",
    )


def firms_uscc(engine: sa.Engine, firm_id: int) -> str:
    with engine.connect() as conn:
        return str(conn.execute(sa.select(ENTERPRISES.c.uscc).where(ENTERPRISES.c.id == firm_id)).scalar_one())


def test_dispatch_killed_mid_batch_loses_no_mail_and_resends_only_with_the_same_message_id(
    engine: sa.Engine, db_url: str, campaign: Campaign, ledger: Ledger
) -> None:
    JOURNAL.clear()
    count = 2_000
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "dedupe_key": f"test:kill:{n}",
            "kind": "mobilization_notice",
            "audience": "enterprise",
            "enterprise_id": None,
            "to_address": f"firm{n}@example.com",
            "lang": "zh-CN",
            "context": {
                "enterprise_name": f"常州测试{n}有限公司",
                "uscc": "91320412MA1XXXXXX0",
                "district_name": "武进区",
                "principal": "张三",
                "trigger": "notify",
                "at": now.isoformat(),
            },
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now - dt.timedelta(minutes=1),
            "created_at": now,
        }
        for n in range(count)
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(OUTBOX), rows)
    with running_smtp() as smtp:
        settings = smtp.settings(dispatch_batch=100, dispatch_interval_seconds=1)
        env = {
            "DABIAO_SMTP_HOST": "127.0.0.1",
            "DABIAO_SMTP_PORT": str(smtp.port),
            "DABIAO_MAIL_FROM": settings.mail_from,
            "DABIAO_PUBLIC_URL": settings.public_url,
            "DABIAO_DISPATCH_BATCH": "100",
            "DABIAO_DISPATCH_INTERVAL_SECONDS": "1",
        }
        kills = 0
        for target in range(40, 40 + 80 * KILLS, 80):
            proc = start([DABIAO, "--database-url", db_url, "dispatch", "--loop"], env=env)
            kills += kill_when(proc, lambda t=target: len(smtp.inbox.messages) >= t)
        # restart after the killed passes' leases ran out: a later clock
        later = FixedClock(now + dt.timedelta(minutes=10))
        for _ in range(20):
            if dispatch_once(engine, settings=settings, clock=later, campaign=campaign).claimed == 0:
                break
        copies = smtp.inbox.copies_by_message_id()
    with engine.connect() as conn:
        outbox = conn.execute(sa.select(OUTBOX.c.status, OUTBOX.c.message_id)).all()
    assert Counter(r.status for r in outbox) == {"sent": count}
    assert set(copies) == {r.message_id for r in outbox}  # every message arrived, under its own Message-ID
    assert len(smtp.inbox.messages) == sum(copies.values())
    resent = sum(n - 1 for n in copies.values())
    assert resent <= 20 * kills  # at most one recording step's worth per kill (RECORD_EVERY)
    assert kills == KILLS
    ledger.record(
        "kill -9",
        f"`dabiao dispatch --loop` to a real aiosmtpd, {count} mails, killed mid-batch",
        backend=backend_of(db_url),
        tries=kills,
        detail=f"{count} distinct Message-IDs received, all rows `sent`; {resent} resent after a kill with the "
        "same Message-ID (at-least-once between SMTP accept and the database record, as documented)",
    )


SWEEP_DAY = "2023-11-02"


def sweep_to_the_end(db_url: str) -> None:
    """`dabiao sweep` to the end (waiting out a killed run's lock on PostgreSQL)."""
    give_up = time.monotonic() + 60
    while True:
        done = dabiao(db_url, "sweep", "--as-of", SWEEP_DAY, timeout=300)
        if done.returncode == 0:
            return
        assert "sweep_busy" in done.stderr + done.stdout and time.monotonic() < give_up, done.stderr + done.stdout
        time.sleep(0.2)


def test_sweep_killed_mid_write_leaves_each_rule_whole_or_absent(
    engine: sa.Engine, db_url: str, ledger: Ledger
) -> None:
    bulk_firms(engine, 1000, seed=41, key_field=True)  # never notified, never started
    bulk_firms(engine, 1000, seed=42, key_field=False, notified=True)  # above size, never started
    sweep_to_the_end(db_url)
    clean = snapshot(engine)
    per_rule = Counter(r[1] for r in clean["escalations"])
    assert len(clean["escalations"]) > 2000
    rng = random.Random(43)
    kills = attempts = partial_states = 0
    while kills < KILLS and attempts < KILLS * 3:
        attempts += 1
        forget_sweeps(engine)
        proc = start([DABIAO, "--database-url", db_url, "sweep", "--as-of", SWEEP_DAY])
        if not kill_when(proc, lambda: writing(db_url, "escalations"), after=rng.uniform(0, 0.4)):
            continue
        kills += 1
        seen = snapshot(engine)
        for table, rows in seen.items():
            assert {repr(r) for r in rows} <= {repr(r) for r in clean[table]}, table  # only what a clean sweep writes
        rules = Counter(r[1] for r in seen["escalations"])
        assert all(rules[rule] == per_rule[rule] for rule in rules)  # each rule whole, or absent
        partial_states += 0 < len(seen["escalations"]) < len(clean["escalations"])
        sweep_to_the_end(db_url)  # run again: ends exactly where one clean run ends
        assert snapshot(engine) == clean
    assert kills >= KILLS
    ledger.record(
        "kill -9",
        f"`dabiao sweep` over 2,000 firms ({len(clean['escalations']):,} escalations) killed while writing, "
        "then run again",
        backend=backend_of(db_url),
        tries=kills,
        detail=f"after each kill every rule's rows were all there or absent ({partial_states} kills left some "
        "rules done, others not); each rerun ended equal to one clean sweep",
    )
