"""The dashboards' figures: the same numbers a person would count firm by firm, the history behind the
burn-down and the projection at the current pace, and every number linking to a list of exactly that many
firms. Run on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from typing import Any

import sqlalchemy as sa

from states import Role
from tests.api_helpers import ELSEWHERE, HOME, World
from tests.factories import Driver, make_firm
from tests.test_pages_access import Browser
from workflow.actors import Actor
from workflow.clock import FixedClock
from workflow.context import Context
from workflow.dashboard import (
    PACE_DAYS,
    HistoryCache,
    overview,
    read_history,
    stage_counts,
    worklist_counts,
)
from workflow.queries import worklist
from workflow.tables import ENTERPRISES, ESCALATIONS, OUTBOX

TODAY = dt.date(2022, 7, 1)


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def build_city(world: World) -> dict[str, int]:
    """Firms of two districts at known points, with the days they moved (the world's four firms stay mobilized)."""
    e, c = world.engine, world.campaign
    firms = {
        "key_a": make_firm(e, district=HOME, key_field=True),
        "key_b": make_firm(e, district=HOME, key_field=True),
        "above_d": make_firm(e, district=HOME, key_field=False, above_size=True),
        "below_f": make_firm(e, district=HOME, key_field=False, above_size=False),
        "key_g": make_firm(e, district=ELSEWHERE, key_field=True),
        "key_h": make_firm(e, district=ELSEWHERE, key_field=True),
    }
    for name, started in (("key_a", "2022-03-10"), ("key_b", "2022-06-10")):
        d = Driver(e, c, firms[name], day(started))
        d.fire("notify", Role.district_bureau)
        d.fire("start_self_assessment", Role.enterprise)
    Driver(e, c, firms["above_d"], day("2022-06-20")).to_applied()
    Driver(e, c, firms["below_f"], day("2022-06-21")).to_applied()  # below size: outside both milestones
    Driver(e, c, firms["key_g"], day("2022-04-01")).fire("close", Role.district_bureau, {"reason": "搬迁"})
    h = Driver(e, c, firms["key_h"], day("2022-06-25"))
    h.to_reviewed(82.0)
    h.fire("certify", Role.city_bureau)
    with e.begin() as conn:
        conn.execute(
            sa.insert(ESCALATIONS),
            [
                escalation(firms["key_a"], HOME, "firm", "open"),
                escalation(firms["key_a"], HOME, "district", "open"),
                escalation(world.firms["home_other"], HOME, "firm", "open"),
                escalation(world.firms["away_key"], ELSEWHERE, "city", "open"),
                escalation(firms["key_b"], HOME, "firm", "resolved"),
            ],
        )
        conn.execute(sa.update(OUTBOX).where(OUTBOX.c.enterprise_id == firms["key_h"]).values(status="failed"))
    return firms


def escalation(firm_id: int, district: str, step: str, status: str) -> dict[str, Any]:
    return {
        "dedupe_key": f"test:{firm_id}:{step}",
        "rule": "hazard_deadline",
        "subject_kind": "enterprise",
        "subject_id": firm_id,
        "enterprise_id": firm_id,
        "district_code": district,
        "step": step,
        "deadline": dt.date(2022, 6, 1),
        "days_overdue": 30,
        "status": status,
        "detail": {},
        "created_at": dt.datetime(2022, 6, 30, tzinfo=dt.UTC),
    }


def firm_rows(world: World) -> list[Any]:
    with world.engine.connect() as conn:
        return list(conn.execute(sa.select(ENTERPRISES)))


def test_the_figures_are_what_counting_firm_by_firm_gives(world: World) -> None:
    build_city(world)
    rows = firm_rows(world)
    with world.engine.connect() as conn:
        ov = overview(conn, context=Context(world.campaign, world.clock))
    assert Counter({(s.district_code, s.key_field, s.state): s.firms for s in ov.stages}) == Counter(
        (r.district_code, bool(r.key_field), r.state) for r in rows
    )
    for m in world.campaign.milestones:
        by_district = {p.district_code: p for p in ov.milestones[m.id]}
        for code in (HOME, ELSEWHERE, None):
            group = [
                r
                for r in rows
                if (code is None or r.district_code == code)
                and (r.key_field if m.applies_to == "key_field" else (not r.key_field and r.above_size))
                and r.state != "closed"
            ]
            p = by_district[code]
            assert p.firms == len(group), (m.id, code)
            assert p.remaining == sum(r.state == "mobilized" for r in group), (m.id, code)
            assert p.started == p.firms - p.remaining
    assert ov.overdue == {HOME: 2, ELSEWHERE: 1}  # firms with an open escalation, as the `overdue` filter finds
    assert ov.escalations == {(HOME, "firm"): 2, (HOME, "district"): 1, (ELSEWHERE, "city"): 1}
    assert ov.outbox.counts["failed"] == sum(1 for _ in outbox_rows(world, "failed"))
    assert ov.outbox.counts["pending"] == sum(1 for _ in outbox_rows(world, "pending")) > 0
    # starting targets (附件2) are compared with firms that have started, not with certified ones
    progress = {(t.district_code, t.key_field): t for t in ov.targets}
    started = [r for r in rows if r.key_field and r.state not in ("mobilized", "closed")]
    assert progress[(None, True)].started == len(started)
    assert progress[(ELSEWHERE, True)].started == sum(r.district_code == ELSEWHERE for r in started)
    liyang = world.campaign.district(ELSEWHERE)
    assert liyang is not None and progress[(ELSEWHERE, True)].target == liyang.start_target_key_field


def outbox_rows(world: World, status: str) -> list[Any]:
    with world.engine.connect() as conn:
        return list(conn.execute(sa.select(OUTBOX.c.id).where(OUTBOX.c.status == status)))


def test_the_history_burn_down_and_projection(world: World) -> None:
    firms = build_city(world)
    with world.engine.connect() as conn:
        history = read_history(conn, before=TODAY, tz=world.clock.tz)
        ov = overview(conn, context=Context(world.campaign, world.clock))
    # the day each firm of a milestone's group left `mobilized` (started, or closed before starting)
    assert history.left[(HOME, "key_field")] == {day("2022-03-10"): 1, day("2022-06-10"): 1}
    assert history.left[(ELSEWHERE, "key_field")] == {day("2022-04-01"): 1, day("2022-06-25"): 1}
    assert history.left[(HOME, "non_key_above_size")] == {day("2022-06-20"): 1}
    assert history.certified == {(ELSEWHERE, True): {day("2022-06-25"): 1}}
    key = next(m for m in world.campaign.milestones if m.applies_to == "key_field")
    home = next(p for p in ov.milestones[key.id] if p.district_code == HOME)
    # home key-field group: key_a, key_b started; the world's home_key still mobilized
    assert (home.firms, home.started, home.remaining) == (3, 2, 1)
    assert home.pace_per_day == 1 / PACE_DAYS  # key_b, within the last four weeks
    days_left = (key.date - TODAY).days
    assert home.projected_remaining == max(0, 1 - int(days_left / PACE_DAYS))
    assert home.finish == TODAY + dt.timedelta(days=PACE_DAYS)
    burn = next(b for b in ov.burndown if b.milestone.id == key.id)
    assert burn.days[0] == world.campaign.phases.mobilization.start and burn.days[-1] == TODAY
    series = dict(zip(burn.days, burn.remaining[HOME], strict=True))
    assert series[burn.days[0]] == 3 and series[TODAY] == 1
    assert series[max(d for d in burn.days if d < day("2022-03-10"))] == 3
    assert series[max(d for d in burn.days if day("2022-03-10") <= d < day("2022-06-10"))] == 2
    assert burn.projection[HOME] == [(TODAY, 1), (key.date, home.projected_remaining)]
    # a milestone already passed has no projection
    later = FixedClock.on(dt.date(2023, 2, 1))
    with world.engine.connect() as conn:
        after = overview(conn, context=Context(world.campaign, later), district=HOME)
    assert next(p for p in after.milestones[key.id] if p.district_code == HOME).passed
    assert firms["key_a"] in {r.id for r in firm_rows(world)}


def test_history_before_today_is_read_once_a_day(world: World) -> None:
    build_city(world)
    cache = HistoryCache()
    with world.engine.connect() as conn:
        first = cache.get(conn, before=TODAY, tz=world.clock.tz, district=None)
        assert cache.get(conn, before=TODAY, tz=world.clock.tz, district=None) is first
        assert cache.get(conn, before=TODAY, tz=world.clock.tz, district=HOME) is not first
        tomorrow = cache.get(conn, before=TODAY + dt.timedelta(days=1), tz=world.clock.tz, district=None)
    assert tomorrow is not first and tomorrow.left == first.left


def test_a_district_sees_only_its_own_figures(world: World) -> None:
    build_city(world)
    with world.engine.connect() as conn:
        home = overview(conn, context=Context(world.campaign, world.clock), district=HOME)
        city = overview(conn, context=Context(world.campaign, world.clock))
    assert {s.district_code for s in home.stages} == {HOME}
    assert home.districts == [HOME]
    assert home.firms() == city.firms(district=HOME)
    assert set(home.overdue) == {HOME}
    for m in world.campaign.milestones:
        assert [p.district_code for p in home.milestones[m.id]] == [HOME, None]


def test_worklist_counts_match_the_worklists(world: World) -> None:
    build_city(world)
    officials = [
        Actor("wujin", Role.district_bureau, district_code=HOME),
        Actor("liyang", Role.district_bureau, district_code=ELSEWHERE),
        Actor("center", Role.support_center),
        Actor("city", Role.city_bureau),
    ]
    with world.engine.connect() as conn:
        for actor in officials:
            counts = worklist_counts(conn, actor=actor)
            for name, n in counts.items():
                assert n == len(worklist(conn, actor=actor, name=name, clock=world.clock)["items"]), (actor, name)
        assert worklist_counts(conn, actor=officials[0])["verification"] == 2  # above_d and below_f


def dashboard_data(html: str) -> Any:
    block = re.search(r'<script type="application/json" id="dashboard-data">(.*?)</script>', html, re.S)
    assert block is not None
    return json.loads(block.group(1))


def listed(browser: Browser, url: str) -> int:
    """How many firms the list behind a link holds (its 共 N 家)."""
    page = browser.get(url)
    assert page.status_code == 200, url
    match = re.search(r"共 ([\d,]+) 家", page.text)
    assert match is not None
    return int(match.group(1).replace(",", ""))


def test_every_number_links_to_a_list_of_that_many_firms(world: World) -> None:
    build_city(world)
    for username, path in (("city", "/dashboard"), ("wujin", f"/districts/{HOME}")):
        browser = Browser(world, username)
        page = browser.get(path)
        assert page.status_code == 200
        data = dashboard_data(page.text)
        for series in data["funnel"]["all"]:
            for cell in series["data"]:
                assert listed(browser, cell["url"]) == cell["value"], cell
        # the numbers in the tables: each <a class="num"> to a firm list says how many it lists
        links = re.findall(r'<a class="num[^"]*" href="(/firms[^"]*)">([\d,]+)</a>', page.text)
        assert len(links) > 10
        for href, shown in links:
            href = href.replace("&amp;", "&")
            assert listed(browser, href) == int(shown.replace(",", "")), href


def test_the_funnel_data_block_matches_the_database(world: World) -> None:
    build_city(world)
    browser = Browser(world, "wujin")
    data = dashboard_data(browser.get(f"/districts/{HOME}").text)
    with world.engine.connect() as conn:
        counts = {(s.key_field, s.state): s.firms for s in stage_counts(conn, district=HOME)}
    states = [s["code"] for s in data["states"]]
    key, other = data["funnel"]["all"]
    assert [c["value"] for c in key["data"]] == [counts.get((True, s), 0) for s in states]
    assert [c["value"] for c in other["data"]] == [counts.get((False, s), 0) for s in states]
    assert sum(c["value"] for c in key["data"] + other["data"]) == 2 + 4  # the world's two, the city's four
