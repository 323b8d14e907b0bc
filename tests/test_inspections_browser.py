"""A district officer in a real browser: scans (opens) a firm's safety code and lands on its supervision page,
records an on-site inspection with two inspectors and a finding, and sees it on the month's worklist; the
same code opened without signing in shows the firm's name and status only."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from tests.api_helpers import HOME, PASSWORD
from tests.browser_helpers import ARTIFACTS, CHROMIUM, sign_in
from tests.factories import make_firm
from tests.test_pages_browser import Site, browser, page, site  # noqa: F401  (fixtures)
from workflow.safety_code import code_for, code_key
from workflow.tables import HAZARDS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)"),
]


def shot(tab: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"inspections-{name}.png"), full_page=True)


def test_an_officer_scans_a_code_and_records_an_inspection(page: Any, site: Site) -> None:  # noqa: F811
    world = site.world
    firm = make_firm(world.engine, district=HOME, name="常州市扫码检查机械有限公司")
    with world.engine.connect() as conn:
        code = code_for(code_key(conn), firm)

    # anyone: the name and the status, nothing else
    page.goto(f"{site.url}/code/{code}")
    card = page.locator("#code-status")
    assert "常州市扫码检查机械有限公司" in card.inner_text() and "创建中" in card.inner_text()
    assert firm_uscc_absent(page, world, firm)
    forged = code[:-1] + ("a" if code[-1] != "a" else "b")
    page.goto(f"{site.url}/code/{forged}")
    assert "找不到该页面或记录" in page.content()

    sign_in(page, site.url, "wujin", PASSWORD)
    page.goto(f"{site.url}/code/{code}")
    page.wait_for_url(f"{site.url}/firms/{firm}/supervision")
    assert page.locator("#safety-code img.qr").evaluate("img => img.naturalWidth") > 0
    form = page.locator("#record form")
    form.locator("select[name=kind]").select_option("onsite")
    form.locator("input[name=held_on]").fill("2022-06-28")
    inspectors = form.locator("input[name=inspector]")
    inspectors.nth(0).fill("王科长")
    inspectors.nth(1).fill("李队员")
    form.locator("input[name=item]").nth(0).check()
    form.locator("input[name=item]").nth(1).check()
    form.locator("textarea[name=findings]").fill("配电箱未接地\n消防通道堆放杂物")
    form.get_by_role("button", name="保存检查记录").click()
    page.wait_for_url(f"{site.url}/firms/{firm}/supervision*")
    assert "检查记录已保存" in page.content()
    records = page.locator("#records").inner_text()
    assert "王科长、李队员" in records and "配电箱未接地" in records and "消防通道堆放杂物" in records
    shot(page, "firm")
    with world.engine.connect() as conn:
        raised = conn.execute(sa.select(HAZARDS.c.source).where(HAZARDS.c.enterprise_id == firm)).scalars().all()
    assert raised == ["inspection", "inspection"]

    # one inspector is not enough on site: refused, named, nothing recorded
    form = page.locator("#record form")
    form.locator("input[name=held_on]").fill("2022-06-29")
    form.locator("input[name=inspector]").nth(0).fill("王科长")
    form.locator("input[name=item]").nth(0).check()
    form.get_by_role("button", name="保存检查记录").click()
    assert "至少 2 名检查人员" in page.locator(".error").inner_text()

    page.goto(f"{site.url}/districts/{HOME}/supervision?month=2022-06")
    shot(page, "district")
    assert page.locator("#worklist").is_visible()


def firm_uscc_absent(tab: Any, world: Any, firm: int) -> bool:
    """Neither the credit code nor the principal's name is on the public page."""
    from workflow.engine import load_firm

    with world.engine.connect() as conn:
        uscc = load_firm(conn, enterprise_id=firm).uscc
    return uscc not in tab.content() and "张三" not in tab.content()
