"""Bulk actions: one trigger on many firms, each its own audited transition; refusals listed per firm, the
refused firms untouched, out-of-scope firms reported as not found."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from states import InvalidInput, NotAllowed, Role, UnknownTrigger
from tests.api_helpers import ELSEWHERE, HOME, World
from tests.factories import OPINION, Driver, clock, make_firm
from workflow import engine as engine_module
from workflow.actors import Actor
from workflow.audit import verify_chain
from workflow.bulk import BulkTarget, fire_many
from workflow.campaign import Campaign
from workflow.context import Context
from workflow.tables import APPLICATIONS, ENTERPRISES, EVENTS, OUTBOX


def snapshot(engine: sa.Engine, firm_id: int) -> tuple[Any, ...]:
    with engine.connect() as conn:
        firm = conn.execute(sa.select(ENTERPRISES).where(ENTERPRISES.c.id == firm_id)).one()
        events = conn.execute(sa.select(sa.func.count()).where(EVENTS.c.enterprise_id == firm_id)).scalar()
        apps = conn.execute(sa.select(APPLICATIONS.c.status).where(APPLICATIONS.c.enterprise_id == firm_id)).all()
    return firm.state, firm.version, firm.event_count, firm.chain_head, events, [a.status for a in apps]


def district_bureau(district: str = HOME) -> Actor:
    return Actor(name="武进区应急管理局", role=Role.district_bureau, district_code=district)


def test_a_district_verifies_many_applications_each_its_own_transition(engine: sa.Engine, campaign: Campaign) -> None:
    applied = []
    for _ in range(6):
        firm = make_firm(engine, district=HOME)
        Driver(engine, campaign, firm).to_applied()
        applied.append(firm)
    stale, wrong_state, away = applied[0], make_firm(engine, district=HOME), make_firm(engine, district=ELSEWHERE)
    Driver(engine, campaign, away).to_applied()
    untouched = {f: snapshot(engine, f) for f in (stale, wrong_state, away)}
    targets = [BulkTarget(f, snapshot(engine, f)[1]) for f in applied[1:]]
    targets += [BulkTarget(stale, 1), BulkTarget(wrong_state), BulkTarget(away), BulkTarget(999_999)]

    with Session(engine) as session:
        outcomes = fire_many(
            session,
            trigger="verify",
            targets=targets,
            actor=district_bureau(),
            context=Context(campaign, clock()),
            payload=OPINION,
        )

    by_firm = {o.enterprise_id: o for o in outcomes}
    assert [o.enterprise_id for o in outcomes] == [t.enterprise_id for t in targets]
    assert all(by_firm[f].ok and by_firm[f].result.to_state == "verified" for f in applied[1:])  # type: ignore[union-attr]
    assert by_firm[stale].code == "version_conflict"
    assert by_firm[wrong_state].code == "invalid_transition"
    assert by_firm[away].code == "not_found"  # outside the district: its existence is not revealed
    assert by_firm[999_999].code == "not_found"
    for firm, before in untouched.items():
        assert snapshot(engine, firm) == before
    for firm in applied[1:]:
        state, version, count, _, events, apps = snapshot(engine, firm)
        # notify, start, submit, verify; the self-assessment and two uploads are records in the chain
        assert (state, version, count, events, apps) == ("verified", 8, 7, 7, ["verified"])
    with engine.connect() as conn:
        assert verify_chain(conn).ok


def test_the_whole_call_is_refused_before_any_firm_is_touched(engine: sa.Engine, campaign: Campaign) -> None:
    firm = make_firm(engine, district=HOME)
    before = snapshot(engine, firm)
    firm_actor = Actor(name="企业", role=Role.enterprise, enterprise_id=firm)
    cases: list[tuple[str, Actor, list[BulkTarget], dict[str, Any] | None, type[Exception]]] = [
        ("notify", firm_actor, [BulkTarget(firm)], None, NotAllowed),
        ("no_such_trigger", district_bureau(), [BulkTarget(firm)], None, UnknownTrigger),
        ("notify", district_bureau(), [BulkTarget(firm), BulkTarget(firm)], None, InvalidInput),
        ("notify", district_bureau(), [], None, InvalidInput),
        ("close", district_bureau(), [BulkTarget(firm)], {"reason": 7}, InvalidInput),
    ]
    for trigger, actor, targets, data, error in cases:
        with Session(engine) as session, pytest.raises(error):
            fire_many(
                session, trigger=trigger, targets=targets, actor=actor, context=Context(campaign, clock()), payload=data
            )
    assert snapshot(engine, firm) == before


def test_bulk_notify_over_http_lists_every_firm(world: World) -> None:
    home, away = world.firms["home_other"], world.firms["away_other"]
    body = {"items": [{"enterprise_id": home, "version": 1}, {"enterprise_id": away, "version": 1}]}

    refused = world.client.post("/api/bulk/transitions/notify", json=body, headers=world.as_("firm"))
    assert refused.status_code == 403 and refused.json()["code"] == "not_allowed"

    answer = world.client.post("/api/bulk/transitions/notify", json=body, headers=world.as_("wujin"))
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["trigger"], result["fired"], result["failed"]) == ("notify", 1, 1)
    first, second = result["items"]
    assert first["ok"] and first["status"] == 200 and first["result"]["version"] == 2
    assert first["result"]["mails"] == ["mobilization_notice"]
    assert not second["ok"] and second["status"] == 404 and second["error"]["code"] == "not_found"
    assert world.firm(home, "city")["state"] == "mobilized" and world.firm(home, "city")["version"] == 2
    assert world.firm(away, "city")["version"] == 1
    with world.engine.connect() as conn:
        mails = conn.execute(sa.select(OUTBOX.c.enterprise_id).where(OUTBOX.c.kind == "mobilization_notice")).all()
    assert [m.enterprise_id for m in mails] == [home]

    again = world.client.post("/api/bulk/transitions/notify", json=body, headers=world.as_("wujin")).json()
    assert [i["error"]["code"] for i in again["items"]] == ["version_conflict", "not_found"]

    too_many = {"items": [{"enterprise_id": n} for n in range(1, 5002)]}
    assert (
        world.client.post("/api/bulk/transitions/notify", json=too_many, headers=world.as_("city")).status_code == 422
    )


def test_a_firm_refused_after_its_effect_wrote_leaves_nothing_and_the_others_commit(
    engine: sa.Engine, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    firms = [make_firm(engine, district=HOME) for _ in range(3)]
    for firm in firms:
        d = Driver(engine, campaign, firm)
        d.fire("notify", Role.district_bureau)
        d.fire("start_self_assessment", Role.enterprise)
        d.self_assess()
        d.dossier()
    unlucky = firms[1]
    before = snapshot(engine, unlucky)
    real_hash = engine_module.event_hash

    def refuse_one(prev: str, **event: Any) -> str:  # runs after the application row was inserted
        if event["enterprise_id"] == unlucky:
            raise InvalidInput("拒绝 / refused late")
        return real_hash(prev, **event)

    monkeypatch.setattr(engine_module, "event_hash", refuse_one)
    outcomes = []
    for firm in firms:  # the firm role acts on its own firm only: one call each, one firm each
        with Session(engine) as session:
            outcomes += fire_many(
                session,
                trigger="submit_application",
                targets=[BulkTarget(firm)],
                actor=Actor(name="企业", role=Role.enterprise, enterprise_id=firm),
                context=Context(campaign, clock()),
            )
    city = Actor(name="市局", role=Role.city_bureau)
    with Session(engine) as session:  # and in one call of several firms: the others commit together
        closed = fire_many(
            session,
            trigger="close",
            targets=[BulkTarget(f) for f in firms],
            actor=city,
            context=Context(campaign, clock()),
            payload={"reason": "搬迁"},
        )
    assert [o.code for o in outcomes] == [None, "invalid_input", None]
    assert [o.code for o in closed] == [None, "invalid_input", None]
    assert snapshot(engine, unlucky) == before  # no application, no event, same version
    assert [snapshot(engine, f)[0] for f in firms] == ["closed", "self_assessing", "closed"]
    with engine.connect() as conn:
        assert verify_chain(conn).ok
