"""Guidance of benchmark candidates. The plan: 各地要通过"派驻专家重点指导、监管人员重点督导"的方式，在企业达标创建
基础上，打造安全生产领域标杆企业. A district bureau assigns and records for its own firms, the city sees all; each
record is an event in the firm's chain; the API, the pages and the command line reach one service."""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa
from click.testing import CliRunner

from api.cli import main
from tests.api_helpers import World
from tests.deadline_helpers import Firm
from tests.test_pages_access import Browser
from workflow.audit import verify_chain
from workflow.tables import ENTERPRISES, EVENTS


def started(world: World, name: str) -> int:
    """One of the world's firms, notified and started (a benchmark candidate works on its creation)."""
    firm = Firm(world.engine, world.campaign, world.firms[name])
    firm.on(dt.date(2022, 2, 10)).notify()
    firm.on(dt.date(2022, 3, 1)).start()
    return firm.id


def record_kinds(world: World, firm: int) -> list[str]:
    with world.engine.connect() as conn:
        query = sa.select(EVENTS.c.trigger).where(EVENTS.c.enterprise_id == firm).order_by(EVENTS.c.seq)
        return list(conn.execute(query).scalars())


def test_a_district_assigns_and_records_visits_for_its_own_firms_the_city_sees_all(world: World) -> None:
    home, away = started(world, "home_other"), started(world, "away_key")
    wujin, liyang, city = world.as_("wujin"), world.as_("liyang"), world.as_("city")
    body = {"person": "王工", "kind": "expert", "from_date": "2022-06-01"}
    answer = world.client.post(f"/api/enterprises/{home}/guidance", json=body, headers=wujin)
    assert answer.status_code == 201, answer.text
    assignment = answer.json()["id"]
    officer = {"person": "赵科长", "kind": "officer", "from_date": "2022-06-10"}
    assert world.client.post(f"/api/enterprises/{away}/guidance", json=officer, headers=liyang).status_code == 201
    # another district's firm and assignment do not exist for 武进区; other roles may not
    assert world.client.post(f"/api/enterprises/{away}/guidance", json=body, headers=wujin).status_code == 404
    visit = {"visited_on": "2022-06-20", "note": "现场指导双重预防机制建设"}
    assert world.client.post(f"/api/guidance/{assignment}/visits", json=visit, headers=liyang).status_code == 404
    for role in ("firm", "center", "wujin_gov", "expert1"):
        denied = world.client.post(f"/api/enterprises/{home}/guidance", json=body, headers=world.as_(role))
        assert denied.status_code == 403, role
    assert world.client.post(f"/api/guidance/{assignment}/visits", json=visit, headers=wujin).status_code == 201

    mine = world.client.get("/api/guidance", headers=wujin).json()
    assert [(a["person"], a["kind"], len(a["visits"])) for a in mine] == [("王工", "expert", 1)]
    assert mine[0]["visits"][0]["note"] == "现场指导双重预防机制建设"
    assert {a["person"] for a in world.client.get("/api/guidance", headers=city).json()} == {"王工", "赵科长"}
    assert [a["person"] for a in world.client.get("/api/guidance", headers=liyang).json()] == ["赵科长"]

    assert record_kinds(world, home)[-2:] == ["guidance_assigned", "guidance_visit"]
    with world.engine.connect() as conn:
        assert verify_chain(conn).ok

    # the pages: the firm page shows the register, the district list the visits
    page = Browser(world, "wujin").get(f"/firms/{home}").text
    assert "王工" in page and "现场指导双重预防机制建设" in page
    listing = Browser(world, "wujin").get("/guidance").text
    assert "王工" in listing and "赵科长" not in listing
    assert "赵科长" in Browser(world, "city").get("/guidance").text
    assert Browser(world, "wujin_gov").get("/guidance").status_code == 403


def test_visits_and_assignments_are_checked(world: World) -> None:
    home = started(world, "home_other")
    idle = world.firms["home_key"]  # still mobilized: not a benchmark candidate
    wujin = world.as_("wujin")
    refused = world.client.post(
        f"/api/enterprises/{idle}/guidance", json={"person": "王工", "kind": "expert", "from_date": "2022-06-01"},
        headers=wujin,
    )  # fmt: skip
    assert refused.status_code == 422 and "已动员" in refused.json()["message"]
    made = world.client.post(
        f"/api/enterprises/{home}/guidance", json={"person": "王工", "kind": "expert", "from_date": "2022-06-01"},
        headers=wujin,
    )  # fmt: skip
    assignment = made.json()["id"]
    # the world's day is 2022-07-01: a visit before the assignment or after today is refused, naming the dates
    for day in ("2022-05-31", "2022-07-02"):
        bad = world.client.post(
            f"/api/guidance/{assignment}/visits", json={"visited_on": day, "note": "走访"}, headers=wujin
        )
        assert bad.status_code == 422 and day in bad.json()["message"], bad.text
    page = Browser(world, "wujin").post(
        f"/guidance/{assignment}/visits", data={"visited_on": "2022-05-01", "note": "走访"}
    )
    assert page.status_code == 422 and "2022-05-01" in page.text


def test_the_command_line_assigns_and_records(world: World) -> None:
    home = started(world, "home_other")
    url = str(world.engine.url.render_as_string(hide_password=False))
    with world.engine.connect() as conn:
        code = conn.execute(sa.select(ENTERPRISES.c.uscc).where(ENTERPRISES.c.id == home)).scalar_one()

    def run(*args: str) -> str:
        result = CliRunner().invoke(main, ["--database-url", url, *args])
        assert result.exit_code == 0, result.output
        return result.output

    run(
        "guidance",
        "assign",
        code,
        "--person",
        "钱工",
        "--kind",
        "expert",
        "--from",
        "2022-06-01",
        "--as-of",
        "2022-07-01",
    )
    [assignment] = json.loads(run("guidance", "list", "--json"))
    run(
        "guidance",
        "visit",
        str(assignment["id"]),
        "--on",
        "2022-06-15",
        "--note",
        "指导应急演练",
        "--as-of",
        "2022-07-01",
    )
    text = run("guidance", "list", "--district", "武进区")
    assert "钱工" in text and "走访 1 次，最近 2022-06-15" in text
    assert record_kinds(world, home)[-2:] == ["guidance_assigned", "guidance_visit"]
    assert dt.date(2022, 6, 15).isoformat() in run("guidance", "list", "--json")
