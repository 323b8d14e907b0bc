"""Several dispatchers at once: rows are claimed so that every message is delivered once (PostgreSQL with
FOR UPDATE SKIP LOCKED; SQLite by taking turns)."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
import sqlalchemy as sa

from notifications.dispatch import JOURNAL, DispatchReport, dispatch_once
from tests.conftest import _truncate_all
from tests.smtp_helpers import running_smtp
from workflow.campaign import Campaign
from workflow.clock import FixedClock
from workflow.db import make_engine
from workflow.tables import OUTBOX

NOW = dt.datetime(2022, 7, 1, 4, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _fresh_journal() -> None:
    JOURNAL.clear()


def fill_outbox(engine: sa.Engine, count: int) -> None:
    rows: list[dict[str, Any]] = [
        {
            "dedupe_key": f"race:{n}",
            "kind": "application_received",
            "audience": "enterprise",
            "to_address": f"firm{n:04d}@example.com",
            "lang": "zh-CN" if n % 2 else "en",
            "context": {
                "enterprise_name": f"常州竞速{n}机械有限公司",
                "uscc": "91320412MA1XXXXXX0",
                "district_name": "武进区",
                "principal": "张三",
                "at": NOW.isoformat(),
            },
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": NOW,
            "created_at": NOW,
        }
        for n in range(count)
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(OUTBOX), rows)


def test_two_dispatchers_racing_over_1000_messages_deliver_each_once(
    engine: sa.Engine, db_url: str, campaign: Campaign
) -> None:
    fill_outbox(engine, 1000)
    reports: dict[str, list[DispatchReport]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    with running_smtp() as smtp:
        settings = smtp.settings(dispatch_batch=20)
        start = threading.Barrier(2)

        def dispatcher(name: str) -> None:
            own = make_engine(db_url)  # each dispatcher has its own engine and connections
            try:
                start.wait()
                for _ in range(200):  # 50 batches of 20 would do it alone
                    report = dispatch_once(own, settings=settings, clock=FixedClock(NOW), campaign=campaign)
                    reports[name].append(report)
                    if report.claimed == 0:
                        return
                raise AssertionError(f"dispatcher {name} never ran out of messages: some go out again and again")
            except BaseException as exc:
                errors.append(exc)
            finally:
                own.dispose()

        threads = [threading.Thread(target=dispatcher, args=(name,)) for name in reports]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

    assert errors == []
    sent = {name: sum(r.sent for r in runs) for name, runs in reports.items()}
    assert sum(sent.values()) == 1000
    assert all(n > 0 for n in sent.values()), sent  # both really took part
    received = smtp.inbox.messages
    assert len(received) == 1000
    assert max(smtp.inbox.copies_by_message_id().values()) == 1
    assert sorted(m.rcpt_tos[0] for m in received) == [f"firm{n:04d}@example.com" for n in range(1000)]
    with engine.connect() as conn:
        statuses: dict[str, int] = dict(
            conn.execute(sa.select(OUTBOX.c.status, sa.func.count()).group_by(OUTBOX.c.status)).all()
        )
    assert statuses == {"sent": 1000}


@pytest.mark.postgres
def test_a_row_locked_by_another_transaction_is_skipped_not_waited_for(pg_schema_url: str, campaign: Campaign) -> None:
    """PostgreSQL only: SKIP LOCKED is PostgreSQL's (SQLite claimers take turns on the write lock)."""
    db_url = pg_schema_url
    engine = make_engine(db_url)
    _truncate_all(engine, campaign)
    fill_outbox(engine, 3)
    with engine.connect() as conn:
        first = int(conn.execute(sa.select(sa.func.min(OUTBOX.c.id))).scalar_one())
    outcome: list[DispatchReport] = []

    with running_smtp() as smtp, engine.connect() as locker:
        held = locker.begin()
        locker.execute(sa.select(OUTBOX.c.id).where(OUTBOX.c.id == first).with_for_update())
        dispatcher_engine = make_engine(db_url)
        worker = threading.Thread(
            target=lambda: outcome.append(
                dispatch_once(dispatcher_engine, settings=smtp.settings(), clock=FixedClock(NOW), campaign=campaign)
            )
        )
        worker.start()
        worker.join(timeout=30)
        finished = not worker.is_alive()
        held.rollback()
        worker.join()
        dispatcher_engine.dispose()

    assert finished, "the dispatcher waited for the locked row instead of skipping it"
    assert outcome[0].sent == 2
    with engine.connect() as conn:
        assert conn.execute(sa.select(OUTBOX.c.status).where(OUTBOX.c.id == first)).scalar_one() == "pending"
    engine.dispose()
