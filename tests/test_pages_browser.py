"""The pages in a real browser (Debian's Chromium through Playwright) against a real server (uvicorn on a
loopback port, a SQLite file): a district officer sees the funnel drawn with the database's counts, opens a
firm from the chart, verifies its application through the form and sees the state change; a firm sees only
itself; pages fit a 1366×768 screen and a phone, run no inline script and call no outside host.
A failing test leaves a screenshot in tests/artifacts/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from states import Role
from tests.api_helpers import HOME, PASSWORD, World, build_world
from tests.browser_helpers import ARTIFACTS, CHROMIUM, DESKTOP, PHONE, chart_option, launch, live_server, sign_in
from tests.factories import Driver, make_firm
from workflow.campaign import Campaign
from workflow.dashboard import stage_counts
from workflow.db import make_engine
from workflow.tables import ENTERPRISES

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)"),
]
HOSTILE = '常州<武进>&"化工"有限公司'


@dataclass
class Site:
    world: World
    url: str
    firms: dict[str, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def site(tmp_path: Path, campaign: Campaign, sqlite_template: Path) -> Iterator[Site]:
    """The test world on a SQLite file, with firms of the home district at several stages, served live."""
    path = tmp_path / "dabiao.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    world = build_world(engine, campaign, tmp_path)
    firms = {
        "applied_other": make_firm(engine, district=HOME, key_field=False, name="常州市申请中机械有限公司"),
        "applied_key": make_firm(engine, district=HOME, key_field=True, name="常州市申请中化工有限公司"),
        "assessing": make_firm(engine, district=HOME, key_field=False),
    }
    Driver(engine, campaign, firms["applied_other"]).to_applied()
    Driver(engine, campaign, firms["applied_key"]).to_applied()
    d = Driver(engine, campaign, firms["assessing"])
    d.fire("notify", Role.district_bureau)
    d.fire("start_self_assessment", Role.enterprise)
    with live_server(world.client.app) as server:
        yield Site(world, server.url, firms)
    engine.dispose()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser tab at 1366×768; on failure its screenshot goes to tests/artifacts/."""
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    tab.problems = []  # console errors (a CSP violation is one), failed requests, requests to other hosts
    tab.on("console", lambda m: tab.problems.append(f"console: {m.text}") if m.type == "error" else None)
    tab.on("pageerror", lambda e: tab.problems.append(f"page error: {e}"))
    tab.on("dialog", lambda dialog: dialog.accept())  # the forms' confirmations
    failed_before = request.session.testsfailed
    yield tab
    if request.session.testsfailed > failed_before:
        ARTIFACTS.mkdir(exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def watch_hosts(tab: Any, base: str) -> list[str]:
    outside: list[str] = []
    tab.on("request", lambda r: None if r.url.startswith((base, "data:")) else outside.append(r.url))
    return outside


def state_of(site: Site, firm_id: int) -> str:
    with site.world.engine.connect() as conn:
        return str(conn.execute(sa.select(ENTERPRISES.c.state).where(ENTERPRISES.c.id == firm_id)).scalar_one())


def test_a_district_officer_follows_the_funnel_to_a_firm_and_verifies_its_application(page: Any, site: Site) -> None:
    outside = watch_hosts(page, site.url)
    sign_in(page, site.url, "wujin", PASSWORD)
    assert page.url == f"{site.url}/districts/{HOME}"

    option = chart_option(page, "funnel-chart")
    with site.world.engine.connect() as conn:
        counts = {(s.key_field, s.state): s.firms for s in stage_counts(conn, district=HOME)}
    states = page.evaluate("JSON.parse(document.getElementById('dashboard-data').textContent).states")
    assert option["yAxis"][0] == [s["label"] for s in states]  # 已动员, 自评中, …
    key, other = option["series"]
    assert [d["value"] for d in key["data"]] == [counts.get((True, s["code"]), 0) for s in states]
    assert [d["value"] for d in other["data"]] == [counts.get((False, s["code"]), 0) for s in states]
    assert sum(d["value"] for d in key["data"] + other["data"]) == 5  # the world's two and the three above

    # click the "applied" bar of the other (non-key) firms on the canvas: the list of exactly those firms opens
    applied = [s["code"] for s in states].index("applied")
    x, y = page.evaluate(
        "([row, before, size]) => echarts.getInstanceByDom(document.getElementById('funnel-chart'))"
        ".convertToPixel({gridIndex: 0}, [before + size / 2, row])",
        [applied, key["data"][applied]["value"], other["data"][applied]["value"]],
    )
    box = page.locator("#funnel-chart").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_url("**/firms?*")
    assert "state=applied" in page.url and "key_field=false" in page.url
    rows = page.locator("table.list tbody tr")
    assert rows.count() == 1
    rows.first.locator("a").click()
    page.wait_for_url(f"**/firms/{site.firms['applied_other']}")
    assert page.locator("h1").inner_text() == "常州市申请中机械有限公司"
    assert page.locator("#status .badge").first.inner_text() == "已申请"

    page.locator("textarea[name=opinion]").fill("经核实，申请材料齐全，自评情况与企业实际相符")  # 核实意见 is required
    page.get_by_role("button", name="核实申请").click()  # confirmed in the dialog
    page.wait_for_load_state("networkidle")
    # what happened and what comes next: a non-key firm's online audit is its district's (非重点监管领域企业由辖市(区)
    # 应急管理部门…进行审核)
    notice = " ".join(page.locator(".notice").inner_text().split())
    assert notice == "“核实申请”已完成：常州市申请中机械有限公司。 下一步：武进区应急管理局 线上审核"
    assert page.locator("#status .badge").first.inner_text() == "已核实"
    assert state_of(site, site.firms["applied_other"]) == "verified"
    assert "核实申请" in page.locator("#history").inner_text()

    page.goto(f"{site.url}/districts/{HOME}")
    option = chart_option(page, "funnel-chart")
    verified = [s["code"] for s in states].index("verified")
    assert option["series"][1]["data"][verified]["value"] == counts.get((False, "verified"), 0) + 1
    assert page.problems == [] and outside == []


def test_a_firm_sees_only_itself(page: Any, site: Site) -> None:
    sign_in(page, site.url, "firm", PASSWORD)
    own = site.world.firms["home_key"]
    assert page.url == f"{site.url}/firms/{own}"
    assert page.locator("h1").inner_text() == HOSTILE  # the hostile name, shown as text
    assert page.locator("h1 *").count() == 0
    assert [a.inner_text() for a in page.locator("nav#nav a").all()] == ["本企业"]
    page.goto(f"{site.url}/firms")
    assert page.locator("table.list tbody tr").count() == 1
    assert page.locator("table.list tbody a").inner_text() == HOSTILE
    assert page.problems == []
    for other in (site.world.firms["home_other"], site.firms["applied_other"], site.world.firms["away_key"]):
        answer = page.goto(f"{site.url}/firms/{other}")
        assert answer.status == 404 and "找不到该页面或记录" in page.content()
    answer = page.goto(f"{site.url}/districts/{HOME}")
    assert answer.status == 403
    answer = page.goto(f"{site.url}/dashboard")
    assert answer.status == 403


def test_the_city_funnel_splits_by_district_and_field(page: Any, site: Site) -> None:
    sign_in(page, site.url, "city", PASSWORD)
    assert page.url == f"{site.url}/dashboard"
    with site.world.engine.connect() as conn:
        counts = {(s.district_code, s.key_field, s.state): s.firms for s in stage_counts(conn)}
    states = page.evaluate("JSON.parse(document.getElementById('dashboard-data').textContent).states")
    codes = [d.code for d in site.world.campaign.districts]

    def shown() -> dict[str, list[int]]:
        option = chart_option(page, "funnel-chart")
        assert len(option["series"]) == len(codes)  # one stack per district
        return {s["name"]: [d["value"] for d in s["data"]] for s in option["series"]}

    def expected(key: bool | None) -> dict[str, list[int]]:
        names = {d.code: d.name for d in site.world.campaign.districts}
        return {
            names[code]: [
                sum(n for (d, k, st), n in counts.items() if d == code and st == s["code"] and key in (None, k))
                for s in states
            ]
            for code in codes
        }

    assert shown() == expected(None)
    page.get_by_role("button", name="重点监管领域").click()
    assert shown() == expected(True)
    page.get_by_role("button", name="其他企业").click()
    assert shown() == expected(False)
    burndowns = page.locator('[data-chart="burndown"][data-ready]')
    assert burndowns.count() == len(site.world.campaign.milestones)
    assert page.problems == []


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1366x768", "390x844"])
def test_pages_fit_the_screen_and_the_phone(browser: Any, site: Site, viewport: dict[str, int]) -> None:
    context = browser.new_context(viewport=viewport, locale="zh-CN")
    tab = context.new_page()
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    try:
        sign_in(tab, site.url, "city", PASSWORD)
        for path in ("/dashboard", f"/districts/{HOME}", "/firms", f"/firms/{site.firms['applied_key']}", "/work"):
            tab.goto(f"{site.url}{path}?lang=en")
            tab.wait_for_load_state("networkidle")
            width = tab.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], f"{path} is {width}px wide on a {viewport['width']}px screen"
            if path == "/dashboard":
                tab.wait_for_selector("#funnel-chart[data-ready]")
                assert tab.locator("#funnel-chart canvas").first.bounding_box()["width"] <= viewport["width"]
        if viewport is PHONE:  # the menu folds away and opens
            assert not tab.locator("nav#nav").is_visible()
            tab.get_by_role("button", name="Menu").click()
            assert tab.locator("nav#nav").is_visible()
        assert problems == []
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / f"fit-{viewport['width']}.png"), full_page=True)
        raise
    finally:
        context.close()
