"""The dashboards' daily summary equals a count over the firms after every kind of write: transitions (one at a
time and concurrent), bulk actions, directory imports and updates, records that do not move the firm, a
transition rolled back half-way, and the sweep folding the deltas in; `dabiao dashboard rebuild-summary`
finds and repairs a summary that was written behind the triggers' back."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlmodel import Session

from api.cli import main
from states import Role
from tests.factories import IN_EVALUATION, Driver, clock, make_firm
from tests.test_directory import code, write_csv
from tests.test_directory import firm as directory_row
from workflow import summary
from workflow.actors import Actor
from workflow.bulk import BulkTarget, fire_many
from workflow.campaign import Campaign
from workflow.context import Context
from workflow.dashboard import overview, read_history
from workflow.directory import import_directory
from workflow.engine import fire
from workflow.tables import ENTERPRISES, SUMMARY_DELTAS, SUMMARY_STATES

HOME, ELSEWHERE = "320412", "320481"  # 武进区, 溧阳市
DAY = IN_EVALUATION  # every transition below happens on this local day (noon in Changzhou)

# What the sequence of `_mixed_sequence` leaves, counted by hand: (district, key_field, above_size, state) → firms.
EXPECTED_STATES = {
    (HOME, False, True, "self_assessing"): 7,  # six started concurrently, one alone
    (HOME, True, True, "closed"): 1,  # closed in bulk by the city
    (HOME, True, True, "mobilized"): 1,  # imported as a non-key firm, then made key-field by the second import
    (ELSEWHERE, False, False, "mobilized"): 1,  # its start was rolled back
    (ELSEWHERE, True, True, "mobilized"): 1,  # imported
}
# (district, key_field, above_size, local day the firm left `mobilized`) → firms.
EXPECTED_STARTS = {
    (HOME, False, True, DAY): 7,
    (HOME, True, True, DAY): 1,  # a firm closed before starting has left `mobilized` too
}


class Crash(Exception):
    pass


def _fire(engine: sa.Engine, campaign: Campaign, firm_id: int, trigger: str, role: Role) -> None:
    Driver(engine, campaign, firm_id).fire(trigger, role)


def _mixed_sequence(engine: sa.Engine, campaign: Campaign, tmp_path: Path) -> None:
    concurrent = [make_firm(engine, district=HOME) for _ in range(6)]
    alone = make_firm(engine, district=HOME)
    key = make_firm(engine, district=HOME, key_field=True)
    rolled_back = make_firm(engine, district=ELSEWHERE, above_size=False)

    def start(firms: list[int]) -> None:
        for firm_id in firms:
            _fire(engine, campaign, firm_id, "notify", Role.district_bureau)
            _fire(engine, campaign, firm_id, "start_self_assessment", Role.enterprise)

    threads = [threading.Thread(target=start, args=(concurrent[i::3],)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    start([alone])
    Driver(engine, campaign, alone).hazard()  # a record: the firm's event chain grows, its counts do not move

    city = Actor(name="常州市应急管理局", role=Role.city_bureau)
    with Session(engine) as session:
        outcomes = fire_many(
            session,
            trigger="close",
            targets=[BulkTarget(key)],
            actor=city,
            context=Context(campaign, clock()),
            payload={"reason": "搬迁"},
        )
    assert [o.ok for o in outcomes] == [True]

    def crash(conn: sa.Connection, result: object) -> None:
        raise Crash  # the process dies after the transition's writes, before the commit

    _fire(engine, campaign, rolled_back, "notify", Role.district_bureau)
    with pytest.raises(Crash), Session(engine) as session:
        fire(
            session,
            enterprise_id=rolled_back,
            trigger="start_self_assessment",
            actor=Actor(name="企业", role=Role.enterprise, district_code=ELSEWHERE, enterprise_id=rolled_back),
            context=Context(campaign, clock()),
            also=crash,
        )

    first = [directory_row(9001), directory_row(9002, uscc=code(9002, ELSEWHERE), district="溧阳市", key_field="是")]
    import_directory(engine, write_csv(tmp_path / "first.csv", first), context=Context(campaign, clock()))
    changed = [{**first[0], "key_field": "是"}, first[1]]
    import_directory(engine, write_csv(tmp_path / "second.csv", changed), context=Context(campaign, clock()))


def _figures(engine: sa.Engine) -> tuple[dict[summary.StateKey, int], dict[summary.StartKey, int]]:
    with engine.connect() as conn:
        return summary.states(conn), summary.starts(conn)


def test_the_summary_equals_a_count_over_the_firms_after_every_kind_of_write(
    engine: sa.Engine, campaign: Campaign, tmp_path: Path
) -> None:
    _mixed_sequence(engine, campaign, tmp_path)
    states, starts = _figures(engine)
    assert states == EXPECTED_STATES
    assert starts == EXPECTED_STARTS
    with engine.connect() as conn:
        assert summary.counted_states(conn) == EXPECTED_STATES
        assert summary.counted_starts(conn) == EXPECTED_STARTS

    with engine.begin() as conn:  # the sweep's folding changes no figure and leaves no delta
        summary.compact(conn)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(SUMMARY_DELTAS)).scalar() == 0
    assert _figures(engine) == (EXPECTED_STATES, EXPECTED_STARTS)

    added = make_firm(engine, district=ELSEWHERE, above_size=False)  # entered by mistake, then removed
    assert _figures(engine)[0][(ELSEWHERE, False, False, "mobilized")] == 2
    with engine.begin() as conn:
        conn.execute(sa.delete(ENTERPRISES).where(ENTERPRISES.c.id == added))
    assert _figures(engine) == (EXPECTED_STATES, EXPECTED_STARTS)


def test_the_dashboard_reads_the_summary(engine: sa.Engine, campaign: Campaign, tmp_path: Path) -> None:
    _mixed_sequence(engine, campaign, tmp_path)
    context = Context(campaign, clock(DAY + dt.timedelta(days=1)))
    with engine.connect() as conn:
        view = overview(conn, context=context)
        history = read_history(conn, before=DAY + dt.timedelta(days=1), tz=context.clock.tz, certified=False)
    assert view.firms(district=HOME, state="self_assessing") == 7
    assert view.firms(key_field=True) == 3
    assert view.firms() == 11
    assert history.left == {(HOME, "non_key_above_size"): {DAY: 7}, (HOME, "key_field"): {DAY: 1}}
    with engine.connect() as conn:  # the history before the day of the starts is empty
        assert read_history(conn, before=DAY, tz=context.clock.tz, certified=False).left == {}


def test_rebuild_summary_finds_and_repairs_a_summary_written_behind_the_triggers_back(
    engine: sa.Engine, campaign: Campaign, tmp_path: Path, db_url: str
) -> None:
    _mixed_sequence(engine, campaign, tmp_path)
    with engine.begin() as conn:
        summary.compact(conn)
        conn.execute(  # a restore from an old dump, a hand edit: the summary no longer follows the firms
            sa.update(SUMMARY_STATES)
            .where(SUMMARY_STATES.c.district_code == HOME, SUMMARY_STATES.c.state == "self_assessing")
            .values(firms=3)
        )
    runner = CliRunner()
    args = ["--database-url", db_url, "dashboard", "rebuild-summary"]
    checked = runner.invoke(main, [*args, "--check"])
    assert checked.exit_code == 1, checked.output
    assert "320412 · False · True · self_assessing: 汇总 / summary 3, 企业 / firms 7" in checked.output
    rebuilt = runner.invoke(main, args)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "recounted 1 differences" in rebuilt.output
    assert _figures(engine) == (EXPECTED_STATES, EXPECTED_STARTS)
    again = runner.invoke(main, [*args, "--check"])
    assert again.exit_code == 0, again.output
    assert "the summary equals the count over the firms" in again.output


def test_folding_the_deltas_while_firms_move_loses_none(engine: sa.Engine, campaign: Campaign) -> None:
    """Transitions commit while the sweep folds the deltas in, over and over: every one is counted once."""
    firms = [make_firm(engine, district=HOME) for _ in range(8)]
    done = threading.Event()

    def fold() -> None:
        while not done.is_set():
            with engine.begin() as conn:
                summary.compact(conn)

    folding = threading.Thread(target=fold)
    folding.start()
    try:
        for firm_id in firms:
            _fire(engine, campaign, firm_id, "notify", Role.district_bureau)
            _fire(engine, campaign, firm_id, "start_self_assessment", Role.enterprise)
    finally:
        done.set()
        folding.join()
    assert _figures(engine) == ({(HOME, False, True, "self_assessing"): 8}, {(HOME, False, True, DAY): 8})


def test_the_migration_counts_the_firms_already_there(tmp_path: Path) -> None:
    """Firms written before migration 0010 are in the summary after it, starts on their local day (a firm
    that left `mobilized` at 17:00 UTC started the next day in Changzhou); the downgrade takes it away."""
    from alembic import command

    from workflow.db import alembic_config, make_engine

    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    config = alembic_config(engine)
    command.upgrade(config, "0010_oversight")
    rows = [  # id, district, key_field, above_size, state, left_mobilized_at
        (1, HOME, 0, 1, "mobilized", None),
        (2, HOME, 0, 1, "self_assessing", "2022-07-01 17:00:00.000000"),
        (3, HOME, 0, 1, "certified", "2022-07-01 03:00:00.000000"),
        (4, ELSEWHERE, 1, 0, "closed", "2022-07-02 01:00:00.000000"),
    ]
    with engine.begin() as conn:
        for code in (HOME, ELSEWHERE):
            conn.exec_driver_sql(f"INSERT INTO districts (code, name, name_en) VALUES ('{code}', '{code}', '{code}')")
        for firm_id, district, key, above, state, left in rows:
            conn.exec_driver_sql(
                "INSERT INTO enterprises (id, uscc, name, district_code, sector, key_field, above_size, principal, "
                "phone, lang, state, version, state_since, left_mobilized_at, event_count, chain_head, created_at, "
                "updated_at) VALUES (?, ?, '常州迁移测试有限公司', ?, 'machinery', ?, ?, '张三', '', 'zh-CN', ?, 1, "
                "'2022-07-01 00:00:00', ?, 0, ?, '2022-01-01 00:00:00', '2022-07-01 00:00:00')",
                (firm_id, f"9132{firm_id:014d}", district, key, above, state, left, "0" * 64),
            )
    command.upgrade(config, "head")
    assert _figures(engine) == (
        {
            (HOME, False, True, "mobilized"): 1,
            (HOME, False, True, "self_assessing"): 1,
            (HOME, False, True, "certified"): 1,
            (ELSEWHERE, True, False, "closed"): 1,
        },
        {
            (HOME, False, True, dt.date(2022, 7, 2)): 1,
            (HOME, False, True, dt.date(2022, 7, 1)): 1,
            (ELSEWHERE, True, False, dt.date(2022, 7, 2)): 1,
        },
    )
    command.downgrade(config, "0010_oversight")
    with engine.connect() as conn:
        assert not sa.inspect(conn).has_table("summary_states")
        conn.exec_driver_sql("UPDATE enterprises SET state = 'rectifying' WHERE id = 2")  # no trigger left behind
    engine.dispose()
