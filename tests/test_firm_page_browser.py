"""The firm page in a real browser (Debian's Chromium through Playwright, a live server on a SQLite file): a
firm whose application was returned signs in, reads at the top of its page why and what is missing, and opens
its 消息 tab to see the notices mailed to it; a district officer closes a firm only after typing its name —
a wrong name is refused with a message naming the firm. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from notifications.dispatch import dispatch_once
from tests.api_helpers import PASSWORD, World, build_world
from tests.browser_helpers import CHROMIUM, DESKTOP, launch, live_server, sign_in
from tests.factories import Driver
from workflow.campaign import Campaign
from workflow.db import make_engine
from workflow.tables import ENTERPRISES

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)"),
]
SCREENSHOTS = Path(__file__).resolve().parent / "artifacts"
REASON = "自评报告未盖章，佐证材料不清晰"


@dataclass
class Site:
    world: World
    url: str


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def site(tmp_path: Path, campaign: Campaign, sqlite_template: Path) -> Iterator[Site]:
    """The test world on a SQLite file: its key-field firm applied and was returned by its district, and the
    mail about it went out (into a mail folder)."""
    path = tmp_path / "dabiao.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    world = build_world(engine, campaign, tmp_path)
    firm_id = world.firms["home_key"]
    Driver(engine, campaign, firm_id).to_applied()
    returned = world.fire(
        firm_id,
        "return_application",
        "wujin",
        {"reason": REASON, "missing": ["self_assessment_report", "supporting_material"]},
    )
    assert returned.status_code == 200, returned.text
    mail = world.settings.model_copy(update={"mail_dir": tmp_path / "mail", "smtp_host": None})
    assert dispatch_once(engine, settings=mail, clock=world.clock, campaign=campaign).sent >= 3
    with live_server(world.client.app) as server:
        yield Site(world, server.url)
    engine.dispose()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    tab.problems = []
    tab.on("console", lambda m: tab.problems.append(f"console: {m.text}") if m.type == "error" else None)
    tab.on("pageerror", lambda e: tab.problems.append(f"page error: {e}"))
    tab.on("dialog", lambda dialog: dialog.accept())
    failed_before = request.session.testsfailed
    yield tab
    if request.session.testsfailed > failed_before:
        shot(tab, f"failed-{request.node.name}")
    context.close()


def shot(tab: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def name_of(site: Site, firm_id: int) -> str:
    with site.world.engine.connect() as conn:
        return str(conn.execute(sa.select(ENTERPRISES.c.name).where(ENTERPRISES.c.id == firm_id)).scalar_one())


def state_of(site: Site, firm_id: int) -> str:
    with site.world.engine.connect() as conn:
        return str(conn.execute(sa.select(ENTERPRISES.c.state).where(ENTERPRISES.c.id == firm_id)).scalar_one())


def test_a_returned_firm_reads_why_at_the_top_and_finds_its_notices(page: Any, site: Site) -> None:
    firm_id = site.world.firms["home_key"]
    name = name_of(site, firm_id)
    sign_in(page, site.url, "firm", PASSWORD)
    assert page.url == f"{site.url}/firms/{firm_id}"

    task = page.locator("#next")  # the first card of the page: the current task
    assert page.locator("section.card").first.get_attribute("id") == "next"
    returned = task.locator("#returned")
    assert returned.is_visible()
    text = returned.inner_text()
    assert "申请已被退回" in text and REASON in text
    assert "武进区应急管理局" in text  # who returned it, by office (not the login wujin)
    missing = returned.locator("ul.missing li").all_inner_texts()
    assert [m.split(" —")[0].strip() for m in missing] == ["自评报告", "佐证材料"]
    assert all("尚未补正" in m for m in missing)
    # the submit button is not offered as if nothing happened: it says what to fix first
    assert page.locator("form[action$='/transitions/submit_application']").count() == 0
    assert "先补正：自评报告、佐证材料" in task.locator("#action-submit_application").inner_text()
    shot(page, "firm-returned-application")

    page.locator("#messages-tab").click()
    page.wait_for_url(f"**/firms/{firm_id}/messages")
    rows = page.locator("table.messages tbody tr")
    subjects = [rows.nth(i).locator("td").nth(1).inner_text() for i in range(rows.count())]
    assert subjects == [  # newest first: the return, the application received, the mobilization notice
        f"【达标创建】{name}的达标申请已退回",
        f"【达标创建】{name}的达标申请已提交",
        f"【达标创建】请{name}启动安全生产达标企业创建",
    ]
    assert all("已发送" in rows.nth(i).locator("td").nth(3).inner_text() for i in range(rows.count()))
    assert page.locator("#messages-tab .count").inner_text() == "3"
    shot(page, "firm-messages-tab")
    assert page.problems == []


def test_an_officer_closes_a_firm_only_after_typing_its_name(page: Any, site: Site) -> None:
    firm_id = site.world.firms["home_other"]
    name = name_of(site, firm_id)
    sign_in(page, site.url, "wujin", PASSWORD)
    page.goto(f"{site.url}/firms/{firm_id}")
    panel = page.locator("#action-close")
    assert "danger" in (panel.get_attribute("class") or "")
    assert panel.locator("button.danger").inner_text() == "关闭（停产、搬迁）"
    reasons = page.locator("textarea[name=reason]")
    labels = [reasons.nth(i).locator("xpath=..").inner_text() for i in range(reasons.count())]
    assert len(labels) == len(set(labels))  # no two identical reason boxes
    panel.get_by_label("关闭（停产、搬迁）的理由（必填）").fill("企业已整体搬迁出本市")
    panel.locator("input[name=confirm_name]").fill("常州市另一家有限公司")
    shot(page, "close-wrong-name-typed")
    panel.locator("button.danger").click()
    page.wait_for_load_state("networkidle")
    error = page.locator("p.error").inner_text()
    assert error == f"输入的企业名称“常州市另一家有限公司”与“{name}”不符，未执行“关闭（停产、搬迁）”"
    assert state_of(site, firm_id) != "closed"
    shot(page, "close-wrong-name-refused")

    panel = page.locator("#action-close")
    reason = panel.get_by_label("关闭（停产、搬迁）的理由（必填）")
    assert reason.input_value() == "企业已整体搬迁出本市"  # kept from the refused form
    assert panel.locator("input[name=confirm_name]").input_value() == ""  # the name is typed again
    panel.locator("input[name=confirm_name]").fill(name)
    panel.locator("button.danger").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("#done").inner_text().startswith(f"“关闭（停产、搬迁）”已完成：{name}。")
    assert state_of(site, firm_id) == "closed"
    assert "关闭（停产、搬迁）" in page.locator("#history").inner_text()
    shot(page, "close-confirmed")
    refused = "console: Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
    assert page.problems == [refused]  # the refusal's own answer, nothing else
