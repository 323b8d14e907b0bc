"""Oversight in a real browser: a district officer sorts its escalations by days overdue and acknowledges two
cases at once, seeing each case's result; the city bureau sends a failed message again from the outbox; the
city downloads both lists it publishes and opens a certificate from the firm page. Screenshots of each step
are kept under tests/artifacts/ (ignored by git)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa

from states import Role
from tests.api_helpers import HOME, PASSWORD
from tests.browser_helpers import ARTIFACTS, CHROMIUM, sign_in
from tests.factories import Driver, make_firm
from tests.test_escalation_cases import ladder
from tests.test_outbox_page import mail
from tests.test_pages_browser import Site, browser, page, site  # noqa: F401  (fixtures)
from workflow.tables import ESCALATIONS, OUTBOX, OUTBOX_RETRIES

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)"),
]


def shot(tab: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"oversight-{name}.png"), full_page=True)


def test_a_district_sorts_its_escalations_and_acknowledges_two_at_once(page: Any, site: Site) -> None:  # noqa: F811
    world = site.world
    f = world.firms
    ladder(world, "home_key", "key_field_start", ("firm", "district", "city"), dt.date(2022, 5, 31))
    ladder(world, "home_other", "hazard_deadline", ("firm", "district"), dt.date(2022, 6, 20), subject=902)
    ladder(world, "home_other", "sla_verification", ("district",), dt.date(2022, 4, 1))

    sign_in(page, site.url, "wujin", PASSWORD)
    page.goto(f"{site.url}/escalations")
    rows = page.locator("#cases tbody tr")
    assert rows.count() == 3  # three cases, the city step of the first one not a row of its own
    page.get_by_role("link", name="逾期天数").click()  # sorted by days overdue: most overdue first already
    page.wait_for_url("**/escalations?*sort=days*")
    days = [int(rows.nth(i).locator("td.n").inner_text()) for i in range(rows.count())]
    assert days == [11, 31, 91]  # the link turned the order round: least overdue first
    shot(page, "escalations")

    page.locator(f'input[value="{f["home_key"]}:key_field_start"]').check()
    page.locator(f'input[value="{f["home_other"]}:sla_verification"]').check()
    page.get_by_role("button", name="签收所选").click()
    page.wait_for_selector("#results")
    results = page.locator("#results tbody tr")
    assert results.count() == 2
    assert all("已签收" in results.nth(i).inner_text() for i in range(2))
    assert page.locator("#cases tbody tr").count() == 1  # only the hazard case is still open
    shot(page, "escalations-acknowledged")
    with world.engine.connect() as conn:
        acknowledged = conn.execute(
            sa.select(sa.func.count()).where(
                ESCALATIONS.c.status == "acknowledged", ESCALATIONS.c.acknowledged_by == "wujin"
            )
        ).scalar_one()
    assert acknowledged == 3  # firm and district steps of the first case, the district step of the second
    assert page.problems == []


def test_the_city_sends_a_failed_message_again(page: Any, site: Site) -> None:  # noqa: F811
    world = site.world
    failed = mail(
        world,
        "browser",
        kind="deadline_overdue",
        to_address="boss@example.com",
        last_error="550 5.1.1 mailbox unavailable (gave up after 8 attempts)",
    )
    sign_in(page, site.url, "city", PASSWORD)
    page.goto(f"{site.url}/outbox")
    row = page.locator(f'tr[data-outbox="{failed}"]')
    assert "逾期通知" in row.inner_text() and "邮件服务器拒收" in row.inner_text()
    shot(page, "outbox")
    row.get_by_role("button", name="重新发送").click()
    page.wait_for_url(f"{site.url}/outbox")
    assert "邮件已重新排队" in page.content()
    shot(page, "outbox-retried")
    with world.engine.connect() as conn:
        status = conn.execute(sa.select(OUTBOX.c.status).where(OUTBOX.c.id == failed)).scalar_one()
        retried_by = conn.execute(sa.select(OUTBOX_RETRIES.c.retried_by)).scalar_one()
    assert (status, retried_by) == ("pending", "city")
    assert page.problems == []


def test_the_city_publishes_both_lists_and_opens_a_certificate(page: Any, site: Site) -> None:  # noqa: F811
    world = site.world
    firm = make_firm(world.engine, district=HOME, key_field=True, name="常州市达标示范机械有限公司")
    d = Driver(world.engine, world.campaign, firm)
    d.to_reviewed(82.0)
    d.fire("certify", Role.city_bureau)

    sign_in(page, site.url, "city", PASSWORD)
    page.goto(f"{site.url}/lists")
    assert "常州市达标示范机械有限公司" in page.content()
    shot(page, "lists")
    sheets = {}
    for name in ("达标企业名单", "标杆企业名单"):
        with page.expect_download() as download:
            page.get_by_role("link", name=f"下载{name}（XLSX，供公布）").click()
        with open(download.value.path(), "rb") as handle:
            sheets[name] = openpyxl.load_workbook(io.BytesIO(handle.read())).worksheets[0]
    listed = [c.value for c in sheets["达标企业名单"]["D"]]
    assert "常州市达标示范机械有限公司" in listed
    assert "常州市达标示范机械有限公司" not in [c.value for c in sheets["标杆企业名单"]["D"]]

    page.goto(f"{site.url}/firms/{firm}")
    panel = page.locator("#certificate")
    number = panel.locator("strong.code").inner_text()
    assert number.startswith("CZDB-2022-") and "有效期至" in panel.inner_text()
    panel.get_by_role("link", name="查看、打印证书 ›").click()
    page.wait_for_url(f"{site.url}/firms/{firm}/certificate")
    assert number in page.content() and "安全生产达标企业证书" in page.content()
    shot(page, "certificate")
    assert page.problems == []
