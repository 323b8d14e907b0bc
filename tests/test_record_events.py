"""Records that are not transitions join the firm's hash chain: the audit walk covers them, the firm keeps its
state, its version moves, a trigger's name is not a record, and the dashboards still date each start."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from states import Role
from tests.factories import Driver, actor_for, make_firm
from tests.test_audit import drop_append_only_guard
from workflow.audit import verify_chain
from workflow.campaign import Campaign
from workflow.engine import record_event
from workflow.tables import ENTERPRISES, EVENTS

AT = dt.datetime(2022, 5, 6, 10, 30, tzinfo=dt.UTC)


def _firm(engine: sa.Engine, firm_id: int) -> sa.Row:  # type: ignore[type-arg]
    with engine.connect() as conn:
        return conn.execute(sa.select(ENTERPRISES).where(ENTERPRISES.c.id == firm_id)).one()


def test_a_record_is_a_link_of_the_chain(engine: sa.Engine, campaign: Campaign) -> None:
    firm_id = make_firm(engine, key_field=True)
    actor = actor_for(engine, Role.enterprise, firm_id)
    with engine.begin() as conn:  # a record before the start: the start is then not the first or second event
        record_event(conn, enterprise_id=firm_id, kind="evidence_uploaded", actor=actor, at=AT, payload={"n": 1})
    driver = Driver(engine, campaign, firm_id, day=dt.date(2022, 5, 7))
    driver.fire("notify", Role.district_bureau)
    started = driver.fire("start_self_assessment", Role.enterprise)
    before = _firm(engine, firm_id)
    with engine.begin() as conn:
        record_event(conn, enterprise_id=firm_id, kind="hazard_reported", actor=actor, at=AT, payload={"no": 1})
    after = _firm(engine, firm_id)
    with engine.connect() as conn:
        last = conn.execute(
            sa.select(EVENTS).where(EVENTS.c.enterprise_id == firm_id).order_by(EVENTS.c.seq.desc())
        ).first()
        report = verify_chain(conn)
    assert (after.state, after.version, after.event_count) == ("self_assessing", before.version + 1, 4)
    assert last is not None
    assert (last.trigger, last.from_state, last.to_state, last.payload) == (
        "hazard_reported",
        "self_assessing",
        "self_assessing",
        {"no": 1},
    )
    assert after.chain_head == last.hash
    assert report.ok and report.events_checked == 4, report.broken
    assert after.left_mobilized_at == started.at


def test_a_changed_record_breaks_the_chain(engine: sa.Engine) -> None:
    firm_id = make_firm(engine)
    actor = actor_for(engine, Role.district_bureau, firm_id)
    with engine.begin() as conn:
        event_id = record_event(conn, enterprise_id=firm_id, kind="guidance_visit", actor=actor, at=AT, payload={})
    with engine.begin() as conn:
        drop_append_only_guard(conn)
        conn.execute(sa.update(EVENTS).where(EVENTS.c.id == event_id).values(actor="someone else"))
    with engine.connect() as conn:
        report = verify_chain(conn)
    assert report.broken is not None and report.broken.event_id == event_id


def test_a_trigger_name_is_not_a_record(engine: sa.Engine) -> None:
    firm_id = make_firm(engine)
    actor = actor_for(engine, Role.city_bureau, firm_id)
    with engine.begin() as conn, pytest.raises(ValueError, match="not a record kind"):
        record_event(conn, enterprise_id=firm_id, kind="certify", actor=actor, at=AT, payload={})
    assert _firm(engine, firm_id).event_count == 0
