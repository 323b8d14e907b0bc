"""Outbox dispatch speed: N messages through `dispatch_once` (claim, render, compose, send over one SMTP
connection per batch, record) to a local aiosmtpd sink, against a bare aiosmtplib loop sending the same
messages, already rendered, over one connection, measured in the same run.

    .venv/bin/python bench/bench_mail.py [--messages 10000] [--batch 200] [--database-url postgresql+psycopg://…]

The sink runs in its own process, so it does not share the interpreter lock with the sender being measured.
Without --database-url the outbox is a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiosmtplib
import sqlalchemy as sa

from notifications.dispatch import JOURNAL, dispatch_once
from notifications.message import compose, envelope_sender, message_id_for
from notifications.render import Renderer
from workflow.campaign import Campaign, load_campaign, sync_districts
from workflow.clock import FixedClock
from workflow.db import make_engine, migrate
from workflow.settings import DEFAULT_CAMPAIGN, Settings
from workflow.tables import OUTBOX

NOW = dt.datetime(2022, 7, 1, 4, 0, tzinfo=dt.UTC)
MAIL_FROM = "dabiao@changzhou.example.com"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def sink(port: int) -> Iterator[None]:
    """aiosmtpd's Sink handler (accepts and drops every message) in a child process."""
    command = [sys.executable, "-m", "aiosmtpd", "-n", "-u", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("the aiosmtpd sink did not start")
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def database(url: str | None, campaign: Campaign) -> Iterator[sa.Engine]:
    if url is None:
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
            migrate(engine)
            with engine.begin() as conn:
                sync_districts(conn, campaign)
            yield engine
            engine.dispose()
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    scoped = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = make_engine(scoped.render_as_string(hide_password=False))
    try:
        migrate(engine)
        with engine.begin() as conn:
            sync_districts(conn, campaign)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def outbox_rows(count: int) -> list[dict[str, Any]]:
    return [
        {
            "dedupe_key": f"bench:{n}",
            "kind": "deadline_reminder",
            "audience": "enterprise",
            "to_address": f"firm{n:05d}@example.com",
            "lang": "en" if n % 5 == 0 else "zh-CN",
            "context": {
                "rule": "key_field_started",
                "deadline": "2022-12-31",
                "days_left": 30,
                "enterprise_name": f"常州市第{n}精细化工有限公司",
                "uscc": "91320412MA1XXXXXX0",
                "district_name": "武进区",
            },
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": NOW,
            "created_at": NOW,
        }
        for n in range(count)
    ]


def prepared_messages(rows: list[dict[str, Any]], renderer: Renderer) -> list[tuple[str, bytes]]:
    """The same messages dispatch sends, rendered ahead of time (the bare loop only sends)."""
    out = []
    for n, row in enumerate(rows, start=1):
        rendered = renderer.render(row["kind"], row["lang"], row["context"], audience=row["audience"])
        data = compose(
            rendered,
            mail_from=MAIL_FROM,
            to=row["to_address"],
            to_name=None,
            message_id=message_id_for(row["dedupe_key"], "changzhou.example.com"),
            date=NOW,
            lang=row["lang"],
            kind=row["kind"],
            outbox_id=n,
        )
        out.append((row["to_address"], data))
    return out


async def bare_loop(port: int, messages: list[tuple[str, bytes]]) -> float:
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
    started = time.perf_counter()
    await smtp.connect()
    sender = envelope_sender(MAIL_FROM)
    for recipient, data in messages:
        await smtp.sendmail(sender, [recipient], data)
    await smtp.quit()
    return time.perf_counter() - started


def run_dispatch(engine: sa.Engine, settings: Settings, campaign: Campaign, count: int) -> float:
    clock = FixedClock(NOW)
    sent = 0
    started = time.perf_counter()
    while True:
        report = dispatch_once(engine, settings=settings, clock=clock, campaign=campaign)
        sent += report.sent
        if report.claimed == 0:
            break
    elapsed = time.perf_counter() - started
    if sent != count:
        raise RuntimeError(f"dispatch sent {sent} of {count}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=Settings().dispatch_batch, help="dispatch_batch")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (a scratch schema is made and dropped)")
    args = parser.parse_args()

    campaign = load_campaign(DEFAULT_CAMPAIGN)
    port = free_port()
    settings = Settings(
        smtp_host="127.0.0.1", smtp_port=port, mail_from=MAIL_FROM, dispatch_batch=args.batch, smtp_timeout_seconds=30
    )
    rows = outbox_rows(args.messages)
    renderer = Renderer(tz=settings.tz, public_url=settings.public_url, campaign=campaign)
    messages = prepared_messages(rows, renderer)

    with sink(port), database(args.database_url, campaign) as engine:
        with engine.begin() as conn:
            conn.execute(sa.insert(OUTBOX), rows)
        JOURNAL.clear()
        bare = asyncio.run(bare_loop(port, messages))
        dispatched = run_dispatch(engine, settings, campaign, args.messages)

    n = args.messages
    print(f"{n:,} messages to aiosmtpd on 127.0.0.1 ({engine.dialect.name}, batch {args.batch})")
    print(f"  bare aiosmtplib loop, one connection, pre-rendered: {n / bare:9,.0f} msg/s  ({bare:.2f} s)")
    print(f"  dabiao dispatch (claim, render, send, record):      {n / dispatched:9,.0f} msg/s  ({dispatched:.2f} s)")
    print(f"  ratio dispatch / bare: {bare / dispatched:.2f}")


if __name__ == "__main__":
    main()
