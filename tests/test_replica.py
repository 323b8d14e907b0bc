"""Reads from a hot standby: a real primary and its streaming standby, started here (`initdb`,
`pg_basebackup -R`, `pg_ctl`; one pair for the module). Dashboards, lists, exports and task lists read the
standby; a writer reads its own write from the primary; a standby that lags says how fresh it is
(数据截至 HH:MM:SS); one too far behind, stopped or unreachable is not read, and nobody gets a 5xx."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.app import create_app
from bench.common import Cluster, primary_and_standby, standby_missing
from states import Role
from tests.api_helpers import HOME, World
from tests.factories import make_firm
from tests.test_pages_access import Browser
from workflow.campaign import Campaign, sync_districts
from workflow.clock import FixedClock
from workflow.db import Reads, make_engine, migrate
from workflow.settings import Settings

SHANGHAI = dt.timezone(dt.timedelta(hours=8))  # the app's zone (Asia/Shanghai, no summer time): pages' times

# The local settings under test, small so the module runs in seconds: "lags" beyond half a second, not read
# at all beyond ten seconds; measured every 0.2 s; after a failure the standby is left alone for five seconds.
NOTICE, MAX_LAG, CHECK, RETRY = 0.5, 10.0, 0.2, 5.0

# what the pages and the API say when they read a lagging standby
AS_OF_ZH, AS_OF_EN, AS_OF_HEADER = "数据截至", "Data as of", "x-data-as-of"


@dataclass
class Pair:
    primary: Cluster
    standby: Cluster
    world: World
    reads: Reads

    @property
    def engine(self) -> sa.Engine:
        return self.world.engine

    def replica_sql(self, sql: str) -> Any:
        engine = sa.create_engine(f"{self.standby.server}/dabiao")
        try:
            with engine.connect() as conn:
                return conn.exec_driver_sql(sql).all()
        finally:
            engine.dispose()

    def caught_up(self, timeout: float = 30) -> None:
        """Wait until the standby has replayed everything the primary wrote (as the app measures it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fresh = self.reads.measure()
            if fresh.usable and fresh.lag_seconds == 0:
                return
            time.sleep(0.1)
        raise AssertionError(f"the standby did not catch up: {self.reads.measure()}")

    @contextmanager
    def replay_paused(self) -> Iterator[dt.datetime]:
        """The standby stops replaying (it still receives the WAL): it falls behind from now. Yields when."""
        self.caught_up()
        self.replica_sql("SELECT pg_wal_replay_pause()")
        try:
            yield dt.datetime.now(dt.UTC)
        finally:
            self.replica_sql("SELECT pg_wal_replay_resume()")


@pytest.fixture(scope="module")
def pair(campaign: Campaign, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    missing = standby_missing()
    if missing:
        pytest.skip(f"cannot start a primary and a streaming standby: {missing}")
    with primary_and_standby("-c fsync=off -c max_connections=60") as (primary, standby):
        admin = sa.create_engine(f"{primary.server}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql("CREATE DATABASE dabiao")
        admin.dispose()
        engine = make_engine(f"{primary.server}/dabiao")
        migrate(engine)
        with engine.begin() as conn:
            sync_districts(conn, campaign)
        settings = Settings(
            database_url=f"{primary.server}/dabiao",
            read_database_url=f"{standby.server}/dabiao",
            replica_lag_notice_seconds=NOTICE,
            replica_max_lag_seconds=MAX_LAG,
            replica_check_seconds=CHECK,
            replica_retry_seconds=RETRY,
            data_dir=tmp_path_factory.mktemp("replica") / "data",
            login_delay_seconds=0,
            login_delay_max_seconds=0,
            cookie_secure=False,  # TestClient speaks plain http
        )
        clock = FixedClock.on(dt.date(2022, 7, 1))
        app = create_app(settings=settings, campaign=campaign, engine=engine, clock=clock)
        world = World(TestClient(app), engine, campaign, clock, settings)
        world.add_user("city", Role.city_bureau)
        world.add_user("wujin", Role.district_bureau, district_code=HOME)
        reads = app.state.context.reads
        assert isinstance(reads, Reads)
        pair = Pair(primary, standby, world, reads)
        pair.caught_up(timeout=60)
        yield pair
        reads.dispose()
        engine.dispose()


def names_in(response: Any) -> str:
    assert response.status_code == 200, response.text[:500]
    return str(response.text)


def shown_times(text: str) -> list[str]:
    """The HH:MM:SS of "数据截至 HH:MM:SS" / "Data as of HH:MM:SS" on a page."""
    return re.findall(rf"(?:{AS_OF_ZH}|{AS_OF_EN}) (\d\d:\d\d:\d\d)", text)


def test_lists_read_the_standby_and_say_how_fresh_it_is_when_it_lags(pair: Pair) -> None:
    city = Browser(pair.world, "city")
    api = pair.world.as_("city")
    before = make_firm(pair.engine, district=HOME, name="常州副本前机械有限公司")
    pair.caught_up()
    first = city.get("/firms")
    assert "常州副本前机械有限公司" in names_in(first)
    assert first.headers.get(AS_OF_HEADER), "a page read from the standby carries X-Data-As-Of"
    assert shown_times(first.text) == [], "a standby that keeps up is not said to lag"
    # dashboards, task lists and exports read the standby too, and answer
    for path in ("/dashboard", f"/districts/{HOME}", "/work", "/escalations", "/referrals", "/firms.xlsx"):
        answer = city.get(path)
        assert answer.status_code == 200 and answer.headers.get(AS_OF_HEADER), path
    health = pair.world.client.get("/api/ops/health", headers=api).json()
    assert health["replica"]["read"] is True and health["replica"]["lag_seconds"] < NOTICE, health
    with pair.replay_paused():
        ((replayed,),) = pair.replica_sql("SELECT pg_last_xact_replay_timestamp()")  # the standby's own word
        make_firm(pair.engine, district=HOME, name="常州副本后机械有限公司")
        time.sleep(NOTICE + 0.7)  # behind by more than "lags", less than the most it may lag
        pair.reads.measure()
        for path, words in (("/firms", AS_OF_ZH), ("/firms?lang=en", AS_OF_EN)):
            page = names_in(city.get(path))
            assert words in page
            assert "常州副本前机械有限公司" in page and "常州副本后机械有限公司" not in page, "read from the standby"
            times = shown_times(page)
            assert times == [replayed.astimezone(SHANGHAI).strftime("%H:%M:%S")]
        listed = pair.world.client.get("/api/enterprises", params={"district": HOME}, headers=api)
        assert listed.status_code == 200 and listed.headers.get(AS_OF_HEADER)
        assert {f["name"] for f in listed.json()["items"]} >= {"常州副本前机械有限公司"}
        assert "常州副本后机械有限公司" not in {f["name"] for f in listed.json()["items"]}
    assert before


def test_a_writer_reads_its_own_write_and_sign_in_never_waits_for_the_standby(pair: Pair) -> None:
    firm = make_firm(pair.engine, district=HOME, name="常州自己写机械有限公司")
    other = make_firm(pair.engine, district=HOME, name="常州令牌写机械有限公司")
    for firm_id in (firm, other):  # the district bureau notifies both (version 1 → 2)
        notified = pair.world.client.post(
            f"/api/enterprises/{firm_id}/transitions/notify", json={"version": 1}, headers=pair.world.as_("wujin")
        )
        assert notified.status_code == 200, notified.text
    pair.world.add_user(f"boss{firm}", Role.enterprise, enterprise_id=firm)
    pair.world.add_user(f"boss{other}", Role.enterprise, enterprise_id=other)
    reader = Browser(pair.world, "city")
    writer = Browser(pair.world, f"boss{firm}")
    token, city = pair.world.sign_in(f"boss{other}"), pair.world.sign_in("city")
    assessing = f"/firms?district={HOME}&state=self_assessing"
    make_firm(pair.engine, district=HOME)  # the standby's last commit before it pauses: after every sign-in
    with pair.replay_paused():
        time.sleep(NOTICE + 0.2)
        pair.reads.measure()
        # a page's form, then the page after it
        answer = writer.post(f"/firms/{firm}/transitions/start_self_assessment", {"version": "2"})
        assert answer.status_code == 303, answer.text[:500]
        assert "常州自己写机械有限公司" in names_in(writer.get(assessing)), "the writer sees its own write"
        assert "常州自己写机械有限公司" not in names_in(reader.get(assessing)), "the others read the standby"
        # the API without cookies: the process remembers which token wrote
        bare = TestClient(pair.world.client.app)
        wrote = bare.post(
            f"/api/enterprises/{other}/transitions/start_self_assessment", json={"version": 2}, headers=token
        )
        assert wrote.status_code == 200, wrote.text
        bare.cookies.clear()
        mine = bare.get("/api/enterprises", headers=token)
        assert [f["state"] for f in mine.json()["items"]] == ["self_assessing"], "a token that wrote reads the primary"
        theirs = TestClient(pair.world.client.app).get(
            "/api/enterprises", params={"state": "self_assessing"}, headers=city
        )
        assert theirs.headers.get(AS_OF_HEADER) and theirs.json()["items"] == [], "another token reads the standby"
        # a new account signs in and is recognised at once: sign-in and tokens are always the primary's
        pair.world.add_user("newcomer", Role.city_bureau)
        fresh = TestClient(pair.world.client.app).get("/api/enterprises", headers=pair.world.sign_in("newcomer"))
        assert fresh.status_code == 200, fresh.text


def test_a_standby_too_far_behind_is_not_read(pair: Pair) -> None:
    city = Browser(pair.world, "city")
    with pair.replay_paused():
        make_firm(pair.engine, district=HOME, name="常州落后太多机械有限公司")
        time.sleep(MAX_LAG + 1)
        fresh = pair.reads.measure()
        assert not fresh.usable and fresh.lag_seconds is not None and fresh.lag_seconds > MAX_LAG, fresh
        page = city.get("/firms")
        assert "常州落后太多机械有限公司" in names_in(page), "read from the primary"
        assert not page.headers.get(AS_OF_HEADER) and shown_times(page.text) == []
    pair.caught_up()
    again = city.get("/firms")
    assert "常州落后太多机械有限公司" in names_in(again) and again.headers.get(AS_OF_HEADER), "the standby again"


def test_a_stopped_standby_falls_back_to_the_primary_without_errors(pair: Pair) -> None:
    city = Browser(pair.world, "city")
    api = pair.world.as_("city")
    pair.caught_up()
    assert city.get("/firms").headers.get(AS_OF_HEADER)
    failures = pair.reads.failures
    pair.standby.stop("fast")
    try:
        make_firm(pair.engine, district=HOME, name="常州副本停机机械有限公司")
        first = city.get("/firms")
        assert "常州副本停机机械有限公司" in names_in(first) and not first.headers.get(AS_OF_HEADER)
        tripped = pair.reads.failures
        assert tripped > failures, "the failed standby opened the circuit"
        statuses = []
        for path in ("/firms", "/dashboard", "/work", "/firms.xlsx"):
            statuses.append(city.get(path).status_code)
        for path in ("/api/enterprises", "/api/escalations", "/api/worklists/certification"):
            statuses.append(pair.world.client.get(path, headers=api).status_code)
        assert statuses == [200] * 7
        health = pair.world.client.get("/api/ops/health", headers=api).json()
        assert health["replica"]["read"] is False and health["replica"]["reason"], health
        assert pair.reads.failures == tripped, "while the circuit is open nobody tries the standby"
    finally:
        pair.standby.start()
    deadline = time.monotonic() + RETRY + 30
    while time.monotonic() < deadline:  # the circuit closes after RETRY seconds and the standby is read again
        if city.get("/firms").headers.get(AS_OF_HEADER):
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"the standby was not read again: {pair.reads.measure()}")


def test_an_unreachable_standby_is_tried_once_then_left_alone(pair: Pair) -> None:
    nowhere = make_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/dabiao", connect_args={"connect_timeout": 2}
    )
    reads = Reads(pair.engine, nowhere, max_lag_seconds=MAX_LAG, check_seconds=CHECK, retry_seconds=60)
    assert not reads.measure().usable and reads.failures == 1
    for _ in range(3):
        with reads.reading() as read:
            assert read.bind is pair.engine and not read.replica
    assert reads.failures == 1
    nowhere.dispose()


def _closed_port() -> int:
    from bench.common import _free_port

    return _free_port()


def test_a_standby_is_only_for_a_postgresql_primary() -> None:
    with pytest.raises(ValidationError, match="READ_DATABASE_URL"):
        Settings(database_url="sqlite:///x.db", read_database_url="postgresql+psycopg://h/db")
    with pytest.raises(ValidationError, match="READ_DATABASE_URL"):
        Settings(database_url="postgresql+psycopg://h/db", read_database_url="sqlite:///x.db")
