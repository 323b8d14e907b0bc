"""A mobilization notice with no address to go to (对照工业企业名录清单对企业主要负责人逐个通知): the firm stays
un-notified, its mobilization escalation stays open, and its district sees it as 无法送达 until the address is
fixed or the principal is notified another way."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from tests.api_helpers import HOME, World
from tests.deadline_helpers import sweep_on
from tests.factories import make_firm
from tests.test_pages_access import Browser
from tests.test_pages_forms import fire as page_fire
from workflow.tables import ENTERPRISES, ESCALATIONS, EVENTS, OUTBOX

D = dt.date


def notified_at(world: World, firm_id: int) -> object:
    with world.engine.connect() as conn:
        return conn.execute(sa.select(ENTERPRISES.c.notified_at).where(ENTERPRISES.c.id == firm_id)).scalar_one()


def mobilization_escalation(world: World, firm_id: int) -> str | None:
    with world.engine.connect() as conn:
        return conn.execute(
            sa.select(ESCALATIONS.c.status).where(
                ESCALATIONS.c.enterprise_id == firm_id, ESCALATIONS.c.rule == "mobilization"
            )
        ).scalar()


def test_a_notice_without_an_address_leaves_the_firm_unnotified_and_on_the_worklist(world: World) -> None:
    silent = make_firm(world.engine, district=HOME, key_field=True, email=None, name="常州无邮箱化工有限公司")
    sweep_on(world.engine, world.campaign, D(2022, 3, 1))  # mobilization ended: listed to the district
    assert mobilization_escalation(world, silent) == "open"

    answer = world.fire(silent, "notify", "wujin")
    assert answer.status_code == 200, answer.text
    assert notified_at(world, silent) is None
    with world.engine.connect() as conn:
        mails = conn.execute(sa.select(OUTBOX.c.kind).where(OUTBOX.c.enterprise_id == silent)).scalars().all()
        payload = conn.execute(
            sa.select(EVENTS.c.payload).where(EVENTS.c.enterprise_id == silent, EVENTS.c.trigger == "notify")
        ).scalar_one()
    assert "mobilization_notice" not in mails  # nothing is written that could count as delivered
    assert payload["undeliverable"] == "no_email"
    sweep_on(world.engine, world.campaign, D(2022, 3, 2))
    assert mobilization_escalation(world, silent) == "open"

    listed = world.client.get("/api/worklists/undeliverable", headers=world.as_("wujin"))
    assert listed.status_code == 200, listed.text
    [item] = [i for i in listed.json()["items"] if i["enterprise_id"] == silent]
    assert item["name"] == "常州无邮箱化工有限公司" and item["reason"] == "no_email" and item["tried_at"]
    elsewhere = world.client.get("/api/worklists/undeliverable", headers=world.as_("liyang")).json()["items"]
    assert silent not in {i["enterprise_id"] for i in elsewhere}
    assert world.client.get("/api/worklists/undeliverable", headers=world.as_("firm")).status_code == 403
    page = Browser(world, "wujin").get("/work")
    assert "无法送达" in page.text and "常州无邮箱化工有限公司" in page.text

    refused = world.fire(silent, "notify", "wujin", {"channel": "pigeon"})
    assert refused.status_code == 422 and "channel must be one of" in refused.text
    # the district phones the principal and records it from the firm page
    district = Browser(world, "wujin")
    assert 'name="channel"' in district.get(f"/firms/{silent}").text
    assert page_fire(district, world, silent, "notify", channel="phone").status_code == 303
    assert notified_at(world, silent) is not None
    sweep_on(world.engine, world.campaign, D(2022, 3, 3))
    assert mobilization_escalation(world, silent) == "resolved"
    after = world.client.get("/api/worklists/undeliverable", headers=world.as_("wujin")).json()["items"]
    assert silent not in {i["enterprise_id"] for i in after}


def test_a_notice_with_an_address_notifies_as_before(world: World) -> None:
    firm_id = world.firms["home_other"]
    assert world.fire(firm_id, "notify", "wujin").status_code == 200
    assert notified_at(world, firm_id) is not None
    with world.engine.connect() as conn:
        kinds = conn.execute(sa.select(OUTBOX.c.kind).where(OUTBOX.c.enterprise_id == firm_id)).scalars().all()
    assert kinds == ["mobilization_notice"]
