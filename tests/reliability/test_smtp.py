"""The SMTP server down for a while and then back, and answering with temporary (4xx) and permanent (5xx)
errors: every message reaches its receiver exactly once, or is recorded failed with the server's answer."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import sqlalchemy as sa

from notifications.dispatch import JOURNAL, dispatch_once
from tests.reliability.conftest import Ledger, backend_of
from tests.smtp_helpers import running_smtp
from workflow.campaign import Campaign
from workflow.clock import FixedClock
from workflow.tables import OUTBOX

COUNT = 60
BOUNCE = {f"firm{n}@example.com" for n in range(0, COUNT, 12)}  # 5 permanent refusals
GREYLIST = {f"firm{n}@example.com" for n in range(3, COUNT, 6)}  # 10 temporary refusals


def add_messages(engine: sa.Engine, now: dt.datetime) -> None:
    rows = [
        {
            "dedupe_key": f"test:smtp:{n}",
            "kind": "mobilization_notice",
            "audience": "enterprise",
            "to_address": f"firm{n}@example.com",
            "lang": "zh-CN" if n % 2 else "en",
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
            "next_attempt_at": now,
            "created_at": now,
        }
        for n in range(COUNT)
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(OUTBOX), rows)


def test_smtp_down_then_back_with_temporary_and_permanent_refusals(
    engine: sa.Engine, db_url: str, campaign: Campaign, ledger: Ledger
) -> None:
    JOURNAL.clear()
    clock = FixedClock.on(dt.date(2022, 3, 1))
    add_messages(engine, clock.now())
    passes = 0
    with running_smtp(started=False) as smtp:
        settings = smtp.settings(dispatch_batch=25, outbox_backoff_seconds=60, outbox_backoff_max_seconds=600)

        def run_for(minutes: int) -> None:
            nonlocal passes
            for _ in range(minutes):
                dispatch_once(engine, settings=settings, clock=clock, campaign=campaign)
                passes += 1
                clock.advance(dt.timedelta(minutes=1))

        run_for(30)  # down for half an hour: nothing leaves, nothing is given up
        with engine.connect() as conn:
            waiting = Counter(conn.execute(sa.select(OUTBOX.c.status)).scalars())
        assert waiting == {"pending": COUNT} and smtp.inbox.messages == []

        smtp.start()  # back, but greylisting some and bouncing others
        for address in BOUNCE:
            smtp.inbox.refuse[address] = "550 5.1.1 mailbox unavailable"
        for address in GREYLIST:
            smtp.inbox.refuse[address] = "451 4.7.1 greylisted, try again later"
        run_for(30)
        for address in GREYLIST:
            del smtp.inbox.refuse[address]
        run_for(60)
        smtp.stop()  # down again, briefly, with nothing left to send
        run_for(5)
        received = smtp.inbox.messages

    with engine.connect() as conn:
        rows = conn.execute(sa.select(OUTBOX.c.to_address, OUTBOX.c.status, OUTBOX.c.last_error)).all()
    status = {r.to_address: r.status for r in rows}
    assert {a for a, s in status.items() if s == "failed"} == BOUNCE
    assert all(r.last_error.startswith("550") for r in rows if r.status == "failed")
    assert {a for a, s in status.items() if s == "sent"} == set(status) - BOUNCE
    per_address = Counter(m.rcpt_tos[0] for m in received)
    assert set(per_address) == set(status) - BOUNCE and set(per_address.values()) == {1}  # each exactly once
    assert set(Counter(m.message_id for m in received).values()) == {1}
    ledger.record(
        "SMTP",
        f"aiosmtpd down 30 min, then back answering 451 (greylisting, 10 recipients) and 550 (5 recipients), "
        f"then down again; {COUNT} mails",
        backend=backend_of(db_url),
        tries=passes,
        detail=f"{len(per_address)} delivered exactly once (greylisted ones after the refusal lifted), 5 recorded "
        "`failed` with the 550 answer, none given up while the server was down",
    )
