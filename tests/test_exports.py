"""Spreadsheets worth opening: every export has a title row (what, which filter, as of when, by whom), a
frozen header with an autofilter, columns as wide as their content (a Chinese character counts two), dates
as typed cells, a file name that says the filter, and one language per sheet."""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any
from urllib.parse import unquote

import openpyxl
import sqlalchemy as sa

from tests.api_helpers import HOME, World
from tests.factories import make_firm
from tests.test_pages_access import Browser
from workflow.tables import USERS

# the headers officials read, as the firm list's export must write them (not taken from the code's table)
FIRM_HEADERS_ZH = ("序号", "统一社会信用代码", "企业名称", "所属辖区", "行业", "重点监管领域", "规模以上", "当前状态",
                   "进入当前状态时间", "是否逾期", "主要负责人", "联系电话")  # fmt: skip
LONG_NAME = "常州市武进区长江精细化工科技股份有限公司"  # 20 characters, 40 columns wide
CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def opened(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return openpyxl.load_workbook(io.BytesIO(response.content)).worksheets[0]


def filenames(response: Any) -> tuple[str, str]:
    """(the ASCII fallback, the real name) of an RFC 6266 / RFC 5987 Content-Disposition."""
    header = response.headers["content-disposition"]
    assert header.startswith("attachment; ")
    fallback = re.search(r'filename="([^"]+)"', header)
    real = re.search(r"filename\*=UTF-8''(\S+)", header)
    assert fallback and real, header
    assert all(32 < ord(ch) < 127 for ch in fallback.group(1))
    return fallback.group(1), unquote(real.group(1))


def test_the_firm_list_export_is_a_sheet_worth_opening(world: World) -> None:
    since = dt.datetime(2022, 3, 1, 2, 15, tzinfo=dt.UTC)  # 10:15 in Changzhou
    make_firm(world.engine, district=HOME, key_field=True, name=LONG_NAME, at=since)
    with world.engine.begin() as conn:
        conn.execute(sa.update(USERS).where(USERS.c.username == "wujin").values(display_name="武进区应急管理局 张某"))
    now = world.clock.now().astimezone(SHANGHAI)
    answer = Browser(world, "wujin").get("/firms.xlsx", params={"key_field": "true"})
    sheet = opened(answer)

    # the file name says what, which filter and which day
    fallback, real = filenames(answer)
    assert real == f"企业名录-武进区-重点监管领域-{now:%Y%m%d}.xlsx"
    assert fallback == f"firms-320412-key-field-{now:%Y%m%d}.xlsx"
    # the title row: what, which filter, as of when, by whom
    assert sheet["A1"].value == (
        f"企业名录 · 武进区 · 重点监管领域 · 截至 {now:%Y-%m-%d %H:%M} · 导出人：武进区应急管理局 张某"
    )
    assert sheet["A1"].font.bold
    # the header row under it, frozen with the title, with an autofilter over every row
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[1] == FIRM_HEADERS_ZH and all(cell.font.bold for cell in sheet[2])
    assert sheet.freeze_panes == "A3"
    data = rows[2:]
    assert len(data) == 2  # the home district's two key-field firms (the district sees only its own)
    assert sheet.auto_filter.ref == f"A2:L{len(data) + 2}"
    # a date is a date: typed, in local time, with a date-time format
    mine = next(r for r in sheet.iter_rows(min_row=3) if r[2].value == LONG_NAME)
    assert mine[8].is_date and mine[8].value == dt.datetime(2022, 3, 1, 10, 15)
    assert mine[8].number_format == "yyyy-mm-dd hh:mm"
    assert isinstance(mine[0].value, int)  # the row number is a number, not text
    # widths fitted to the content, a Chinese character counting two
    assert sheet.column_dimensions["C"].width >= 2 * len(LONG_NAME)
    assert sheet.column_dimensions["A"].width < 10  # 序号 stays narrow


def test_the_english_page_exports_an_english_sheet(world: World) -> None:
    answer = Browser(world, "city").get("/firms.xlsx", params={"district": HOME, "lang": "en"})
    sheet = opened(answer)
    rows = list(sheet.iter_rows(values_only=True))
    now = world.clock.now().astimezone(SHANGHAI)
    assert rows[0][0] == f"Firm directory · Wujin · as of {now:%Y-%m-%d %H:%M} · exported by: city"
    assert rows[1][:4] == ("No.", "Unified social credit code", "Firm", "District")
    _, real = filenames(answer)
    assert real == f"Firm_directory-Wujin-{now:%Y%m%d}.xlsx"
    # no Chinese in the headers or in any label; names of firms and people are data and stay as they are
    for row in rows[1:]:
        for n, value in enumerate(row):
            if n not in (2, 10) and isinstance(value, str):
                assert not CJK.search(value), (n, value)
    assert {r[3] for r in rows[2:]} == {"Wujin"} and {r[5] for r in rows[2:]} == {"yes", "no"}


def test_referral_and_plan_exports_name_their_filter(world: World) -> None:
    city = Browser(world, "city")
    referrals = city.get("/referrals.xlsx", params={"district": HOME, "status": "confirmed"})
    now = world.clock.now().astimezone(SHANGHAI)
    assert filenames(referrals)[1] == f"移交属地政府名单-武进区-已确认移交-{now:%Y%m%d}.xlsx"
    sheet = opened(referrals)
    assert sheet["A1"].value.startswith("移交属地政府名单 · 武进区 · 状态：已确认移交 · 截至 ")
    assert sheet.freeze_panes == "A3" and sheet.auto_filter.ref == "A2:R2"  # no rows: the filter is still set
    plan = Browser(world, "wujin").get(f"/districts/{HOME}/inspections.xlsx", params={"month": "2022-07"})
    assert filenames(plan)[1] == f"检查计划-武进区-2022-07-{now:%Y%m%d}.xlsx"
    assert opened(plan)["A1"].value.startswith("检查计划 · 武进区 · 月份：2022-07 · 截至 ")
