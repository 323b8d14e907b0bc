"""A district officer's day on the task list, in Debian's Chromium against a live server: the overdue filter,
a search of two words on the verification tab, five applications verified in one batch with one opinion and
the per-firm results, then one firm opened from the list, acted on, and the next one reached from its page.
The screenshots go to tests/artifacts/ (ignored by git)."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.api_helpers import ELSEWHERE, HOME, PASSWORD, World, build_world
from tests.browser_helpers import CHROMIUM, DESKTOP, launch, live_server, sign_in
from tests.factories import Driver, make_firm
from workflow.campaign import Campaign
from workflow.db import make_engine
from workflow.tables import ENTERPRISES

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)"),
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PRECISION = [f"常州精工{n}号机械有限公司" for n in range(1, 6)]  # the five the officer verifies together
OPINION = "经核实，申请材料齐全，自评情况与企业实际相符"


@pytest.fixture
def site(tmp_path: Path, campaign: Campaign, sqlite_template: Path) -> Iterator[tuple[World, str, dict[str, int]]]:
    path = tmp_path / "dabiao.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    world = build_world(engine, campaign, tmp_path)  # its clock: 2022-07-01
    firms = {name: make_firm(engine, district=HOME, name=name) for name in PRECISION}
    firms["late"] = make_firm(engine, district=HOME, name="常州逾期申请纺织有限公司")
    firms["next"] = make_firm(engine, district=HOME, name="常州下一项五金有限公司")
    firms["away"] = make_firm(engine, district=ELSEWHERE, name="溧阳精工机械有限公司")
    # submitted 2022-06-10: the 15 days to verify (本地设置) ran out on 2022-06-25
    Driver(engine, campaign, firms["late"], day=dt.date(2022, 6, 10)).to_applied()
    for name in [*PRECISION, "next", "away"]:
        Driver(engine, campaign, firms[name]).to_applied()
    with live_server(world.client.app) as server:
        yield world, server.url, firms
    engine.dispose()


@pytest.fixture
def tab(campaign: Campaign) -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        browser = launch(playwright)
        context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.problems = []
        page.on("console", lambda m: page.problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        page.on("dialog", lambda dialog: dialog.accept())  # the batch asks before it acts
        yield page
        browser.close()


def states(world: World, ids: list[int]) -> list[str]:
    with world.engine.connect() as conn:
        rows = conn.execute(sa.select(ENTERPRISES.c.id, ENTERPRISES.c.state).where(ENTERPRISES.c.id.in_(ids)))
        found = dict(rows.all())
    return [found[i] for i in ids]


def rows(page: Any) -> list[str]:
    return [r.inner_text() for r in page.locator("form.task-list tbody td.firm a").all()]


def test_a_district_officer_filters_the_task_list_and_verifies_five_applications_at_once(
    tab: Any, site: tuple[World, str, dict[str, int]]
) -> None:
    world, url, firms = site
    ARTIFACTS.mkdir(exist_ok=True)
    sign_in(tab, url, "wujin", PASSWORD)
    tab.get_by_role("link", name="待办", exact=True).click()
    tab.wait_for_url(f"{url}/work")
    assert tab.locator("nav#nav a.active").inner_text() == "待办"
    # the oldest first, nothing of another district; the tab counts what waits and what is late
    names = [r.inner_text() for r in tab.locator("form.task-list tbody td.firm a").all()]
    assert names[0] == "常州逾期申请纺织有限公司" and len(names) == 7 and "溧阳精工机械有限公司" not in names
    verification = tab.locator(".tabs a[data-kind=verification]")
    assert verification.locator(".count").first.inner_text() == "7"
    assert verification.locator(".count.late").inner_text() == "1"

    # overdue only: the one whose 15 days ran out on 2022-06-25, in red, explained by the legend
    tab.locator("input[name=overdue]").check()
    tab.get_by_role("button", name="筛选").click()
    tab.wait_for_url("**/work?*overdue=true*")
    late = tab.locator("form.task-list tbody tr")
    assert late.count() == 1
    assert late.locator(".due.late").inner_text() == "2022年6月25日"
    assert "已逾期 6 天" in late.inner_text()
    assert "本地设置" in tab.locator(".legend").inner_text()
    tab.get_by_role("link", name="清除").click()

    # the verification tab, two words that must both match
    tab.locator(".tabs a[data-kind=verification]").click()
    tab.fill("input[name=q]", "精工 机械")
    tab.get_by_role("button", name="筛选").click()
    tab.wait_for_url("**/work?*q=*")
    assert sorted(rows(tab)) == sorted(PRECISION)

    tab.locator("#select-all").check()
    assert tab.locator("#selected-count").inner_text() == "5"
    tab.locator("textarea[name=opinion]").fill(OPINION)
    tab.get_by_role("button", name="所选企业：核实申请").click()  # confirmed in the dialog
    tab.wait_for_selector("#results")
    result = tab.locator("#results tbody tr")
    assert result.count() == 5
    assert sorted(r.locator("td").first.inner_text() for r in result.all()) == sorted(PRECISION)
    assert [r.locator("td").nth(2).inner_text() for r in result.all()] == ["成功"] * 5
    assert "成功 5 家，未执行 0 家" in tab.locator("#results h2").inner_text()
    tab.screenshot(path=str(ARTIFACTS / "work-district-batch-verify.png"), full_page=True)
    assert states(world, [firms[n] for n in PRECISION]) == ["verified"] * 5
    assert states(world, [firms["late"], firms["next"]]) == ["applied", "applied"]
    assert rows(tab) == []  # the five left the list: nothing of theirs waits on the district any more
    assert tab.problems == []


def test_after_acting_on_a_firm_from_the_list_the_officer_goes_on_to_the_next(
    tab: Any, site: tuple[World, str, dict[str, int]]
) -> None:
    world, url, firms = site
    ARTIFACTS.mkdir(exist_ok=True)
    sign_in(tab, url, "wujin", PASSWORD)
    tab.goto(f"{url}/work?kind=verification")
    first = tab.locator("form.task-list tbody tr").first
    assert first.locator("td.firm a").inner_text() == "常州逾期申请纺织有限公司"
    first.get_by_role("link", name="办理").click()
    tab.wait_for_url(f"**/firms/{firms['late']}?*")
    assert tab.locator("nav#nav a.active").inner_text() == "待办"  # not 企业名录
    assert [a.inner_text() for a in tab.locator(".work-nav a").all()] == ["‹ 返回任务列表", "下一项 ›"]

    verify = tab.locator("form[action$='/transitions/verify']")
    verify.locator("textarea[name=opinion]").fill(OPINION)
    verify.locator("button[type=submit]").click()
    tab.wait_for_load_state("networkidle")
    assert states(world, [firms["late"]]) == ["verified"]
    assert tab.locator("nav#nav a.active").inner_text() == "待办"
    tab.screenshot(path=str(ARTIFACTS / "work-firm-next.png"), full_page=True)
    tab.locator(".work-nav a.next").click()
    tab.wait_for_url("**/firms/*")
    # the late firm left the list: the next one is the oldest of the others (submitted together, by id)
    assert tab.locator("h1").inner_text() == PRECISION[0]
    tab.locator(".work-nav a").first.click()
    tab.wait_for_url("**/work?kind=verification")
    assert "常州逾期申请纺织有限公司" not in rows(tab)
    assert tab.problems == []
