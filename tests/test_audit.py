"""The audit chain: a change behind the engine's back is found and named; the log is append-only."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from api.cli import main
from states import Role
from tests.factories import Driver, make_firm
from workflow.audit import verify_chain
from workflow.campaign import Campaign
from workflow.tables import ENTERPRISES, EVENTS


def three_firms(engine: sa.Engine, campaign: Campaign) -> list[int]:
    firms = [make_firm(engine) for _ in range(3)]
    for firm in firms:
        Driver(engine, campaign, firm).to_applied()
    return firms


def run_verify(db_url: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--database-url", db_url, "audit", "verify"])
    return result.exit_code, result.output


def drop_append_only_guard(conn: sa.Connection) -> None:
    """What an intruder with database rights would do first."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("DROP TRIGGER events_no_update")
        conn.exec_driver_sql("DROP TRIGGER events_no_delete")
    else:
        conn.exec_driver_sql("DROP TRIGGER events_append_only ON events")


def test_an_intact_log_verifies(engine: sa.Engine, campaign: Campaign, db_url: str) -> None:
    three_firms(engine, campaign)
    code, output = run_verify(db_url)
    assert code == 0
    assert "audit chain intact: 18 events of 3 firms" in output


def test_the_event_log_refuses_updates_and_deletes(engine: sa.Engine, campaign: Campaign) -> None:
    three_firms(engine, campaign)
    for statement in (sa.update(EVENTS).values(actor="someone else"), sa.delete(EVENTS)):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(statement)


def test_a_changed_event_is_named(engine: sa.Engine, campaign: Campaign, db_url: str) -> None:
    firms = three_firms(engine, campaign)
    with engine.begin() as conn:
        drop_append_only_guard(conn)
        target = conn.execute(
            sa.select(EVENTS.c.id).where(EVENTS.c.enterprise_id == firms[1], EVENTS.c.seq == 2)
        ).scalar_one()
        conn.execute(sa.update(EVENTS).where(EVENTS.c.id == target).values(role="city_bureau"))
    code, output = run_verify(db_url)
    assert code == 1
    assert f"event {target} (firm {firms[1]}, #2): content does not match its hash" in output


def test_a_changed_payload_is_named(engine: sa.Engine, campaign: Campaign) -> None:
    firm = make_firm(engine)
    d = Driver(engine, campaign, firm)
    d.to_applied()
    d.fire("return_application", Role.district_bureau, {"reason": "材料不全"})
    with engine.begin() as conn:
        drop_append_only_guard(conn)
        conn.execute(sa.update(EVENTS).where(EVENTS.c.seq == 7).values(payload={"reason": "企业自行撤回"}))
    with engine.connect() as conn:
        report = verify_chain(conn)
    assert report.broken is not None and report.broken.seq == 7


def test_a_removed_event_is_found(engine: sa.Engine, campaign: Campaign, db_url: str) -> None:
    firms = three_firms(engine, campaign)
    with engine.begin() as conn:
        drop_append_only_guard(conn)
        conn.execute(sa.delete(EVENTS).where(EVENTS.c.enterprise_id == firms[0], EVENTS.c.seq == 6))
    code, output = run_verify(db_url)
    assert code == 1
    assert f"firm {firms[0]}: the firm's chain head does not match its last event" in output


def test_a_removed_middle_event_is_a_gap(engine: sa.Engine, campaign: Campaign) -> None:
    firms = three_firms(engine, campaign)
    with engine.begin() as conn:
        drop_append_only_guard(conn)
        conn.execute(sa.delete(EVENTS).where(EVENTS.c.enterprise_id == firms[2], EVENTS.c.seq == 2))
    with engine.connect() as conn:
        report = verify_chain(conn)
    assert report.broken is not None
    assert (report.broken.enterprise_id, report.broken.seq) == (firms[2], 3)
    assert "sequence gap: expected #2" in str(report.broken)


def test_a_state_set_behind_the_engines_back_does_not_verify(engine: sa.Engine, campaign: Campaign) -> None:
    """A forged event appended with a recomputed hash still breaks the link to the firm's row."""
    firm = make_firm(engine)
    Driver(engine, campaign, firm).to_applied()
    with engine.begin() as conn:
        last = conn.execute(sa.select(EVENTS).where(EVENTS.c.seq == 6)).one()
        conn.execute(
            sa.insert(EVENTS).values(
                enterprise_id=firm,
                seq=7,
                trigger="certify",
                actor="x",
                role="city_bureau",
                at=last.at,
                from_state="applied",
                to_state="certified",
                payload={},
                prev_hash=last.hash,
                hash="f" * 64,
            )
        )
        conn.execute(sa.update(ENTERPRISES).where(ENTERPRISES.c.id == firm).values(state="certified"))
    with engine.connect() as conn:
        report = verify_chain(conn)
    assert report.broken is not None and "content does not match its hash" in report.broken.problem
    assert json.dumps(str(report.broken))  # printable for the command line
