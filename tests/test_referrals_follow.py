"""Referrals follow the firm. The plan: 要结合"危污乱散低"出清提升行动，将达标无望的重点监管领域企业名单按流程
报送属地政府 — the districts (各地) report, so the sweep only suggests, a district bureau proposes, the city
confirms or declines, and only confirmed referrals reach the local government. A proposal whose firm has moved
on is withdrawn (an event in the firm's chain, a note to the proposer); a confirmation on stale grounds is refused."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest
import sqlalchemy as sa
from sqlmodel import Session

from deadlines.referrals import confirm_referral, list_referrals, list_suggestions, propose_referral
from states import GuardFailed, NotAllowed, Role
from tests.api_helpers import HOME, World
from tests.deadline_helpers import Firm, sweep_on
from tests.factories import make_firm
from tests.test_pages_access import Browser
from workflow.accounts import NewUser, create_user
from workflow.actors import Actor
from workflow.audit import verify_chain
from workflow.campaign import Campaign
from workflow.clock import FixedClock
from workflow.context import Context
from workflow.tables import EVENTS, OUTBOX, REFERRAL_SUGGESTIONS, REFERRALS

D = dt.date
CITY = Actor("市局 张科长", Role.city_bureau)
# The plan's milestone: 2022年底前，全市重点监管领域企业需全部开展创建工作; the campaign suggests referral
# 30 days after it (a local setting), so 2023-01-30 is the first day of a suggestion.
FIRST_SUGGESTION = D(2023, 1, 30)
# The state names a user reads (written here, not taken from the code's catalogue).
SELF_ASSESSING, CLOSED, MOBILIZED = "自评中", "已关闭", "已动员"


def district(code: str = "320412", user_id: int | None = None) -> Actor:
    return Actor("武进区应急局 李股长", Role.district_bureau, district_code=code, user_id=user_id)


def idle_key_firm(engine: sa.Engine, campaign: Campaign, code: str = "320412", name: str | None = None) -> Firm:
    firm = Firm(engine, campaign, make_firm(engine, key_field=True, district=code, name=name))
    firm.on(D(2022, 2, 10)).notify()
    return firm


def events(engine: sa.Engine, firm: int) -> list[str]:
    with engine.connect() as conn:
        query = sa.select(EVENTS.c.trigger).where(EVENTS.c.enterprise_id == firm).order_by(EVENTS.c.seq)
        return list(conn.execute(query).scalars())


def propose(engine: sa.Engine, campaign: Campaign, firm: int, day: dt.date, actor: Actor | None = None) -> int:
    with Session(engine) as s:
        return propose_referral(
            s,
            enterprise_id=firm,
            grounds="non_participating",
            actor=actor or district(),
            context=Context(campaign, FixedClock.on(day)),
        )


def test_the_sweep_suggests_to_the_district_and_only_the_district_proposes(
    engine: sa.Engine, campaign: Campaign
) -> None:
    firm = idle_key_firm(engine, campaign)
    sweep_on(engine, campaign, FIRST_SUGGESTION - dt.timedelta(days=1))
    with engine.connect() as conn:
        assert conn.execute(sa.select(REFERRAL_SUGGESTIONS)).all() == []
    sweep_on(engine, campaign, FIRST_SUGGESTION)
    with engine.connect() as conn:
        assert conn.execute(sa.select(REFERRALS)).all() == []  # a suggestion is not a referral
        [mine] = list_suggestions(conn, actor=district())
        assert list_suggestions(conn, actor=district("320481")) == []
        assert len(list_suggestions(conn, actor=CITY)) == 1
        with pytest.raises(NotAllowed):
            list_suggestions(conn, actor=Actor("属地", Role.local_government, district_code="320412"))
        assert list_referrals(conn, actor=CITY, campaign=campaign) == []
    assert (mine.enterprise_id, mine.grounds, mine.state) == (firm.id, "non_participating", "mobilized")
    assert mine.as_json()["state_label"] == MOBILIZED

    for office in (CITY, Actor("中心", Role.support_center), Actor("属地", Role.local_government, district_code=HOME)):
        with pytest.raises(NotAllowed):
            propose(engine, campaign, firm.id, FIRST_SUGGESTION, office)
    ref = propose(engine, campaign, firm.id, FIRST_SUGGESTION + dt.timedelta(days=1))
    with engine.connect() as conn:
        row = conn.execute(sa.select(REFERRALS).where(REFERRALS.c.id == ref)).one()
        assert conn.execute(sa.select(REFERRAL_SUGGESTIONS.c.status)).scalars().all() == ["proposed"]
        assert verify_chain(conn).ok
    assert (row.status, row.proposed_by) == ("proposed", "武进区应急局 李股长")
    assert events(engine, firm.id)[-1] == "referral_proposed"


@pytest.mark.parametrize(
    ("move", "state_label"),
    [("start", SELF_ASSESSING), ("close", CLOSED)],
)
def test_a_proposal_whose_firm_moved_on_is_withdrawn_with_an_event_and_a_note(
    engine: sa.Engine, campaign: Campaign, move: str, state_label: str
) -> None:
    firm = idle_key_firm(engine, campaign)
    with Session(engine) as s:
        new = NewUser(
            username="wujin-li",
            password="correct horse battery",
            role=Role.district_bureau,
            display_name="李股长",
            district_code="320412",
            email="li@wujin.example.com",
        )
        proposer = create_user(s, new=new, clock=FixedClock.on(D(2022, 1, 5)))
    sweep_on(engine, campaign, FIRST_SUGGESTION)
    ref = propose(engine, campaign, firm.id, D(2023, 1, 31), district(user_id=proposer))
    sweep_on(engine, campaign, D(2023, 2, 2))
    with engine.connect() as conn:
        assert conn.execute(sa.select(REFERRALS.c.status)).scalar_one() == "proposed"  # nothing changed yet
    if move == "start":
        firm.on(D(2023, 2, 3)).start()
    else:
        firm.on(D(2023, 2, 3)).fire("close", Role.district_bureau, {"reason": "企业停产关闭"})
    sweep_on(engine, campaign, D(2023, 2, 4))
    sweep_on(engine, campaign, D(2023, 2, 5))  # a second day changes nothing more
    with engine.connect() as conn:
        row = conn.execute(sa.select(REFERRALS).where(REFERRALS.c.id == ref)).one()
        notes = conn.execute(sa.select(OUTBOX).where(OUTBOX.c.kind == "referral_withdrawn")).all()
        assert verify_chain(conn).ok
    assert row.status == "withdrawn" and row.withdrawn_at is not None
    assert state_label in row.withdrawal_reason and "2023-02-03" in row.withdrawal_reason
    assert events(engine, firm.id).count("referral_withdrawn") == 1
    [note] = notes
    assert note.context["user_id"] == proposer and note.context["referral_id"] == ref
    assert state_label in note.context["reason"] and note.audience == "user"


def test_confirming_a_proposal_whose_grounds_no_longer_hold_is_refused_with_the_reason(
    engine: sa.Engine, campaign: Campaign
) -> None:
    firm = idle_key_firm(engine, campaign)
    ref = propose(engine, campaign, firm.id, D(2023, 1, 31))
    firm.on(D(2023, 2, 3)).start()  # before any sweep could withdraw it
    with Session(engine) as s, pytest.raises(GuardFailed) as refused:
        confirm_referral(s, referral_id=ref, actor=CITY, context=Context(campaign, FixedClock.on(D(2023, 2, 3))))
    assert SELF_ASSESSING in str(refused.value) and "2023-02-03" in str(refused.value)
    with engine.connect() as conn:
        assert conn.execute(sa.select(REFERRALS.c.status)).scalar_one() == "proposed"
        assert conn.execute(sa.select(OUTBOX.c.id).where(OUTBOX.c.kind == "referral")).all() == []
    assert "referral_confirmed" not in events(engine, firm.id)


def test_the_local_government_sees_only_confirmed_referrals_through_the_api_pages_and_export(world: World) -> None:
    world.clock.at = dt.datetime(2023, 1, 31, 10, tzinfo=world.clock.tz)
    firms = {
        fate: make_firm(world.engine, district=HOME, key_field=True, name=f"常州{fate}化工有限公司")
        for fate in ("确认", "驳回", "待定")
    }
    ids = {}
    denied = world.client.post(
        "/api/referrals",
        json={"enterprise_id": firms["待定"], "grounds": "non_participating"},
        headers=world.as_("city"),
    )
    assert denied.status_code == 403
    for fate, firm in firms.items():
        answer = world.client.post(
            "/api/referrals", json={"enterprise_id": firm, "grounds": "non_participating"}, headers=world.as_("wujin")
        )
        assert answer.status_code == 201, answer.text
        ids[fate] = answer.json()["id"]
    city = world.as_("city")
    assert world.client.post(f"/api/referrals/{ids['确认']}/confirm", json={}, headers=city).status_code == 200
    assert world.client.post(f"/api/referrals/{ids['驳回']}/decline", json={}, headers=city).status_code == 200

    gov = world.as_("wujin_gov")
    for status in (None, "proposed", "declined", "confirmed"):
        listed = world.client.get("/api/referrals", params={"status": status} if status else {}, headers=gov)
        assert listed.status_code == 200
        assert {r["enterprise_name"] for r in listed.json()} <= {"常州确认化工有限公司"}
    [seen] = world.client.get("/api/referrals", headers=gov).json()
    assert seen["state"] == "mobilized" and seen["state_since"]
    pending = world.client.post(f"/api/referrals/{ids['待定']}/acknowledge", headers=gov)
    assert pending.status_code == 404  # a proposal does not exist for the local government

    browser = Browser(world, "wujin_gov")
    for status in ("", "proposed", "declined", "withdrawn"):
        page = browser.get("/referrals", params={"status": status})
        assert "常州待定化工有限公司" not in page.text and "常州驳回化工有限公司" not in page.text
        assert "移交建议" not in page.text
    assert "常州确认化工有限公司" in browser.get("/referrals").text
    for status in ("", "proposed", "declined"):
        export = browser.get("/referrals.xlsx", params={"status": status})
        rows = list(openpyxl.load_workbook(io.BytesIO(export.content)).active.iter_rows(values_only=True))
        assert {r[2] for r in rows[2:]} <= {"常州确认化工有限公司"}

    # the city's export shows each firm's current state and since when
    export = Browser(world, "city").get("/referrals.xlsx")
    rows = list(openpyxl.load_workbook(io.BytesIO(export.content)).active.iter_rows(values_only=True))
    header = list(rows[1])  # under the title row
    assert "企业当前状态" in header and "当前状态起始" in header
    assert {r[header.index("企业当前状态")] for r in rows[2:]} == {MOBILIZED}
    assert len(rows) == 5


def test_the_district_page_lists_the_sweeps_suggestions_with_the_firms_state(world: World) -> None:
    world.clock.at = dt.datetime(2023, 1, 31, 10, tzinfo=world.clock.tz)
    sweep_on(world.engine, world.campaign, FIRST_SUGGESTION)
    page = Browser(world, "wujin").get("/referrals")
    assert "移交建议" in page.text and "常州&lt;武进&gt;&amp;&#34;化工&#34;有限公司" in page.text
    assert MOBILIZED in page.text
    listed = world.client.get("/api/referrals/suggestions", headers=world.as_("wujin")).json()
    assert {s["enterprise_id"] for s in listed} == {world.firms["home_key"]}
    assert world.client.get("/api/referrals/suggestions", headers=world.as_("liyang")).json() != listed
    assert world.client.get("/api/referrals/suggestions", headers=world.as_("wujin_gov")).status_code == 403
    [item] = world.client.get("/api/worklists/referrals", headers=world.as_("wujin")).json()  # waits on the district
    assert (item["enterprise_id"], item["grounds"], item["state_label"]) == (
        world.firms["home_key"],
        "non_participating",
        MOBILIZED,
    )
    assert item["days_waiting"] == 1
    assert world.client.get("/api/referrals", headers=world.as_("city")).json() == []
