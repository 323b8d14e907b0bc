"""Escalations by case: the ladder's rows of one firm × rule show as one row at the highest step reached, each
office sees only the steps it acts on, and batch 签收 answers per case — on the API and the page alike."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from tests.api_helpers import ELSEWHERE, HOME, World
from tests.test_api_paths import ok
from tests.test_pages_access import Browser
from workflow.tables import ESCALATIONS

# The world's day is 2022-07-01. Days overdue count from the earliest deadline missed, to that day.
TODAY = dt.date(2022, 7, 1)


def ladder(world: World, firm: str, rule: str, steps: tuple[str, ...], deadline: dt.date, subject: int = 0) -> None:
    """The rows the sweep writes for one subject climbing the ladder: one per step reached."""
    firm_id = world.firms[firm]
    district = HOME if firm.startswith("home") else ELSEWHERE
    with world.engine.begin() as conn:
        for step in steps:
            conn.execute(
                sa.insert(ESCALATIONS).values(
                    dedupe_key=f"{rule}:{firm_id}:{subject}:{step}",
                    rule=rule,
                    subject_kind="hazard" if rule == "hazard_deadline" else "enterprise",
                    subject_id=subject or firm_id,
                    enterprise_id=firm_id,
                    district_code=district,
                    step=step,
                    deadline=deadline,
                    days_overdue=(TODAY - deadline).days,
                    status="open",
                    detail={},
                    created_at=world.clock.now(),
                )
            )


def cases(world: World, login: str, **params: Any) -> list[dict[str, Any]]:
    response = world.client.get("/api/escalations/cases", params=params, headers=world.as_(login))
    body = ok(response)
    assert body["total"] == len(body["items"]) or "offset" in params
    items: list[dict[str, Any]] = body["items"]
    return items


def acknowledge(world: World, login: str, *keys: tuple[str, str]) -> list[dict[str, Any]]:
    body = {"cases": [{"enterprise_id": world.firms[firm], "rule": rule} for firm, rule in keys]}
    response = world.client.post("/api/escalations/cases/acknowledge", json=body, headers=world.as_(login))
    results: list[dict[str, Any]] = ok(response)["results"]
    return results


def test_the_three_steps_of_one_case_are_one_row(world: World) -> None:
    ladder(world, "home_key", "key_field_start", ("firm", "district", "city"), dt.date(2022, 5, 31))
    city = cases(world, "city")
    assert [(c["enterprise_id"], c["rule"], c["level"], c["days_overdue"]) for c in city] == [
        (world.firms["home_key"], "key_field_start", "city", 31)
    ]
    assert city[0]["level_label"] == "上报市应急管理局"
    district = cases(world, "wujin")
    assert [(c["enterprise_id"], c["level"]) for c in district] == [(world.firms["home_key"], "city")]

    page = Browser(world, "city").get("/escalations")
    assert page.status_code == 200
    assert page.text.count(f'data-case="{world.firms["home_key"]}:key_field_start"') == 1
    assert page.text.count(f'value="{world.firms["home_key"]}:key_field_start"') == 1


def test_each_office_sees_the_steps_it_acts_on(world: World) -> None:
    f = world.firms
    ladder(world, "home_key", "key_field_start", ("firm", "district", "city"), dt.date(2022, 5, 31))
    ladder(world, "home_other", "hazard_deadline", ("firm",), dt.date(2022, 6, 25), subject=901)
    ladder(world, "home_other", "hazard_deadline", ("firm", "district"), dt.date(2022, 6, 10), subject=902)
    ladder(world, "away_key", "evaluation_end", ("center",), dt.date(2022, 6, 20))
    ladder(world, "away_other", "sla_verification", ("district",), dt.date(2022, 6, 1))

    # a district bureau: firm and district steps of its own district, never another district's
    wujin = {(c["enterprise_id"], c["rule"]): c for c in cases(world, "wujin")}
    assert set(wujin) == {(f["home_key"], "key_field_start"), (f["home_other"], "hazard_deadline")}
    hazards = wujin[(f["home_other"], "hazard_deadline")]
    assert (hazards["subjects"], hazards["level"], hazards["days_overdue"]) == (2, "district", 21)
    assert cases(world, "wujin", district=ELSEWHERE) == cases(world, "wujin")  # its own district whatever asked
    assert {c["enterprise_id"] for c in cases(world, "liyang")} == {f["away_other"]}  # the center step is not its

    # the city: what reached the city; the support center: what was sent to it; a local government: nothing
    assert [(c["enterprise_id"], c["level"]) for c in cases(world, "city")] == [(f["home_key"], "city")]
    assert [(c["enterprise_id"], c["level"]) for c in cases(world, "center")] == [(f["away_key"], "center")]
    assert cases(world, "wujin_gov") == []
    for login in ("firm", "expert1"):
        refused = world.client.get("/api/escalations/cases", headers=world.as_(login))
        assert refused.status_code == 403 and refused.json()["code"] == "not_allowed"


def test_cases_sort_by_days_overdue_firm_district_and_rule(world: World) -> None:
    f = world.firms
    ladder(world, "home_key", "hazard_deadline", ("firm",), dt.date(2022, 6, 20), subject=901)
    ladder(world, "home_other", "sla_verification", ("district",), dt.date(2022, 5, 1))
    ladder(world, "home_key", "sla_verification", ("district",), dt.date(2022, 6, 28))

    def order(**params: Any) -> list[tuple[int, str]]:
        return [(c["enterprise_id"], c["rule"]) for c in cases(world, "wujin", **params)]

    by_days = [
        (f["home_other"], "sla_verification"),
        (f["home_key"], "hazard_deadline"),
        (f["home_key"], "sla_verification"),
    ]
    assert order() == by_days  # most overdue first: 61, 11, 3 days
    assert [c["days_overdue"] for c in cases(world, "wujin")] == [61, 11, 3]
    assert order(desc="true") == by_days[::-1]
    assert order(sort="rule") == [
        (f["home_key"], "hazard_deadline"),
        (f["home_other"], "sla_verification"),
        (f["home_key"], "sla_verification"),
    ]
    assert order(limit=1, offset=1) == by_days[1:2]
    bad = world.client.get("/api/escalations/cases", params={"sort": "colour"}, headers=world.as_("wujin"))
    assert bad.status_code == 422 and "sort must be one of" in bad.json()["message_en"]


def test_batch_acknowledgement_answers_per_case(world: World) -> None:
    f = world.firms
    ladder(world, "home_key", "key_field_start", ("firm", "district", "city"), dt.date(2022, 5, 31))
    ladder(world, "home_other", "hazard_deadline", ("firm", "district"), dt.date(2022, 6, 10), subject=902)
    ladder(world, "away_other", "sla_verification", ("district",), dt.date(2022, 6, 1))

    results = acknowledge(
        world,
        "wujin",
        ("home_key", "key_field_start"),
        ("home_other", "hazard_deadline"),
        ("away_other", "sla_verification"),  # another district's: as if it did not exist
    )
    assert [(r["enterprise_id"], r["outcome"], r["steps"]) for r in results] == [
        (f["home_key"], "acknowledged", 2),  # its firm and district steps, not the city's
        (f["home_other"], "acknowledged", 2),
        (f["away_other"], "refused", 0),
    ]
    assert "找不到企业" in results[2]["message"]
    with world.engine.connect() as conn:
        steps = dict(
            conn.execute(
                sa.select(ESCALATIONS.c.step, ESCALATIONS.c.status).where(ESCALATIONS.c.enterprise_id == f["home_key"])
            ).all()
        )
    assert steps == {"firm": "acknowledged", "district": "acknowledged", "city": "open"}
    assert cases(world, "wujin") == []  # nothing open left at its steps
    assert [c["status"] for c in cases(world, "city")] == ["open"]

    again = acknowledge(world, "wujin", ("home_key", "key_field_start"))
    assert again[0]["outcome"] == "already"
    city = acknowledge(world, "city", ("home_key", "key_field_start"), ("home_other", "hazard_deadline"))
    assert [r["outcome"] for r in city] == ["acknowledged", "refused"]
    assert "由辖市（区）应急管理局签收" in city[1]["message"]  # the district's steps are the district's to sign

    refused = world.client.post(
        "/api/escalations/cases/acknowledge",
        json={"cases": [{"enterprise_id": f["home_key"], "rule": "key_field_start"}]},
        headers=world.as_("wujin_gov"),
    )
    assert refused.status_code == 403


def test_the_page_acknowledges_the_ticked_cases_and_shows_each_result(world: World) -> None:
    f = world.firms
    ladder(world, "home_key", "key_field_start", ("firm", "district"), dt.date(2022, 5, 31))
    ladder(world, "home_other", "sla_verification", ("district",), dt.date(2022, 6, 1))
    district = Browser(world, "wujin")
    listing = district.get("/escalations?sort=firm")
    assert listing.status_code == 200 and "签收所选" in listing.text
    answer = district.client.post(
        "/escalations/acknowledge",
        data={"csrf": district.csrf, "case": [f"{f['home_key']}:key_field_start", f"{f['away_key']}:key_field_start"]},
    )
    assert answer.status_code == 200
    assert "签收结果" in answer.text and "已签收" in answer.text and "找不到企业" in answer.text
    still_open = district.get("/escalations").text
    assert f'value="{f["home_other"]}:sla_verification"' in still_open
    assert f'value="{f["home_key"]}:key_field_start"' not in still_open
    forged = district.client.post("/escalations/acknowledge", data={"case": f"{f['home_other']}:sla_verification"})
    assert forged.status_code in (400, 403)  # no CSRF token
    assert "督办阶梯不升级至属地政府" in Browser(world, "wujin_gov").get("/escalations").text
