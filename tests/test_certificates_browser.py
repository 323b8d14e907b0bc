"""The city's publication day in a real browser: it names a certified firm 标杆 on the firm page, reads the
lists, downloads the XLSX it publishes and opens the printable certificate. Screenshots of each step are
kept in the artifacts folder (ignored by git)."""

from __future__ import annotations

import io
from typing import Any

import openpyxl
import pytest

from states import Role
from tests.api_helpers import HOME, PASSWORD
from tests.browser_helpers import ARTIFACTS, CHROMIUM, sign_in
from tests.factories import Driver, make_firm
from tests.test_pages_browser import Site, browser, page, site  # noqa: F401  (fixtures)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)"),
]


def shot(tab: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"certificates-{name}.png"), full_page=True)


def test_the_city_names_a_benchmark_publishes_the_lists_and_opens_a_certificate(page: Any, site: Site) -> None:  # noqa: F811
    world = site.world
    firm = make_firm(world.engine, district=HOME, key_field=True, name="常州市标杆示范化工有限公司")
    d = Driver(world.engine, world.campaign, firm)
    d.to_reviewed(86.5)
    d.fire("certify", Role.city_bureau)

    sign_in(page, site.url, "city", PASSWORD)
    page.goto(f"{site.url}/firms/{firm}#certificate")
    panel = page.locator("#certificate")
    assert "方可新申报" in panel.inner_text() and "未录入原标准化证书信息" in panel.inner_text()
    panel.get_by_text("列入标杆企业名单（评分不得低于75分）").click()
    panel.locator("textarea[name=reason]").fill("隐患排查治理可作示范")
    panel.get_by_role("button", name="列入标杆企业名单").click()
    page.wait_for_url(f"{site.url}/firms/{firm}*")
    assert "标杆企业名单已更新" in page.content()
    shot(page, "firm")

    page.goto(f"{site.url}/lists?kind=benchmark")
    assert "常州市标杆示范化工有限公司" in page.content() and "标杆企业名单 (1)" in page.content()
    shot(page, "lists")
    with page.expect_download() as download:
        page.get_by_text("下载标杆企业名单（XLSX，供公布）").click()
    saved = download.value.path()
    with open(saved, "rb") as handle:
        sheet = openpyxl.load_workbook(io.BytesIO(handle.read())).worksheets[0]
    assert sheet.freeze_panes == "A3" and sheet["D3"].value == "常州市标杆示范化工有限公司"

    page.goto(f"{site.url}/firms/{firm}/certificate")
    assert "安全生产达标企业证书" in page.content() and "CZDB-2022-" in page.content()
    page.emulate_media(media="print")
    assert page.locator("header.top").is_hidden()  # the print stylesheet leaves the certificate alone
    shot(page, "certificate")
    assert page.problems == []
