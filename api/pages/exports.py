"""XLSX downloads of the pages' lists and the published lists, written by `deadlines.export` (the one writer
of officials' spreadsheets: title row, frozen header, autofilter, fitted widths, typed dates, one language
per sheet). Here: each list's columns and cells, its title and file name from the filter, and the response."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from deadlines.export import XLSX, Column, Export, Filter, district_name, sector_name, write_xlsx, yes_no
from deadlines.referrals import REFERRAL_COLUMNS, referral_cells
from states import STATE_LABELS, State
from states.numbers import score_value
from workflow import labels
from workflow.campaign import Campaign
from workflow.queries import FirmFilter

FIRM_COLUMNS = (
    Column("序号", "No.", "number"),
    Column("统一社会信用代码", "Unified social credit code"),
    Column("企业名称", "Firm"),
    Column("所属辖区", "District"),
    Column("行业", "Sector"),
    Column("重点监管领域", "Key supervision field"),
    Column("规模以上", "Above size"),
    Column("当前状态", "Current state"),
    Column("进入当前状态时间", "In this state since", "datetime"),
    Column("是否逾期", "Overdue"),
    Column("主要负责人", "Principal"),
    Column("联系电话", "Phone"),
)
FIRM_HEADERS = tuple(c.zh for c in FIRM_COLUMNS)


def exporter(request: Request) -> str:
    """Who exports, as the title row names them: the account's display name (its office and person)."""
    user = getattr(request.state, "user", None)
    return str(getattr(user, "display_name", None) or getattr(user, "username", None) or "")


def made_on_page(request: Request, context: Any) -> dict[str, Any]:
    """An export made from a page: in the page's language, as of now, by the signed-in user."""
    from api.pages.render import lang_of

    return {
        "lang": lang_of(request),
        "as_of": context.clock.now().astimezone(context.clock.tz),
        "by": exporter(request),
    }


def page_export(request: Request, context: Any, **what: Any) -> Export:
    return Export(**made_on_page(request, context), **what)


def xlsx_response(export: Export, *, columns: Sequence[Column], rows: Iterable[Sequence[Any]]) -> FileResponse:
    """Write the rows (streamed) to a temporary file, hand it out under a name that says the filter
    (RFC 5987 with an ASCII fallback), and delete it once sent."""
    handle, name = tempfile.mkstemp(suffix=".xlsx", prefix="dabiao-")
    os.close(handle)
    path = Path(name)
    try:
        write_xlsx(path, export=export, columns=columns, rows=rows)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return FileResponse(
        path,
        media_type=XLSX,
        headers={"Content-Disposition": export.content_disposition()},
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


def district_filter(campaign: Campaign, code: str) -> Filter:
    district = campaign.district(code)
    if district is None:
        return Filter(code, code, code)
    return Filter(district.name, district.name_en, district.code)


def month_filter(first: dt.date) -> Filter:
    return Filter(f"{first:%Y-%m}", f"{first:%Y-%m}", f"{first:%Y-%m}", "月份", "Month")


def firm_filters(f: FirmFilter, campaign: Campaign, *, scope: str | None = None) -> list[Filter]:
    """The firm list's filters as the title row and the file name say them (a district bureau's list names
    its district, which it sees whatever it asks for)."""
    f.check()
    out: list[Filter] = []
    if scope or f.district:
        out.append(district_filter(campaign, scope or f.district or ""))
    if f.key_field is not None:
        out.append(
            Filter("重点监管领域", "key supervision fields", "key-field")
            if f.key_field
            else Filter("非重点监管领域", "outside the key fields", "not-key-field")
        )
    if f.above_size is not None:
        out.append(
            Filter("规模以上", "above size", "above-size")
            if f.above_size
            else Filter("规模以下", "below size", "below-size")
        )
    if f.state:
        zh, en = STATE_LABELS[State(f.state)]
        out.append(Filter(zh, en, f.state, "状态", "State"))
    if f.overdue is not None:
        out.append(
            Filter("逾期", "overdue", "overdue") if f.overdue else Filter("未逾期", "not overdue", "not-overdue")
        )
    if f.q:
        out.append(Filter(f.q, f.q, "search", "搜索", "Search"))
    return out


def firm_cells(rows: Iterable[Any], *, campaign: Campaign, lang: str = "zh-CN") -> Iterator[list[Any]]:
    """A firm list's rows (from `workflow.firm_page.firm_export_rows`) as spreadsheet cells in one language."""
    zh = lang == "zh-CN"
    for n, r in enumerate(rows, start=1):
        yield [
            n,
            r.uscc,
            r.name,
            r.district_name if zh else district_name(campaign, r.district_name, lang),
            sector_name(campaign, r.sector, lang),
            yes_no(r.key_field, lang),
            yes_no(r.above_size, lang),
            STATE_LABELS[State(r.state)][0 if zh else 1],
            r.state_since,
            yes_no(bool(r.overdue), lang),
            r.principal,
            r.phone,
        ]


def referral_export(
    request: Request, context: Any, *, district: str | None, status: str | None, rows: Iterable[Any]
) -> FileResponse:
    """The referral list (移交属地政府名单) with its district and status filters."""
    filters = [district_filter(context.campaign, district)] if district else []
    if status:
        label = labels.REFERRAL_STATUSES[status]
        filters.append(Filter(label.zh, label.en, status, "状态", "Status"))
    export = page_export(
        request, context, what_zh="移交属地政府名单", what_en="Referrals to local governments", slug="referrals",
        filters=filters,
    )  # fmt: skip
    lang = export.lang
    cells = (
        referral_cells(n, r, lang, district_name(context.campaign, r.district_code, lang))
        for n, r in enumerate(rows, start=1)
    )
    return xlsx_response(export, columns=REFERRAL_COLUMNS, rows=cells)


LIST_TITLES = {"certified": "达标企业名单", "benchmark": "标杆企业名单"}
LIST_TITLES_EN = {"certified": "Compliant enterprises", "benchmark": "Benchmark enterprises"}
LIST_COLUMNS = (
    Column("序号", "No.", "number"),
    Column("证书编号", "Certificate number"),
    Column("统一社会信用代码", "Unified social credit code"),
    Column("企业名称", "Firm"),
    Column("所属辖区", "District"),
    Column("行业", "Sector"),
    Column("重点监管领域", "Key supervision field"),
    Column("评审得分", "Review score", "number"),
    Column("认定日期", "Certified on", "date"),
    Column("证书有效期至", "Valid until", "date"),
    Column("列入标杆名单日期", "On the benchmark list since", "date"),
)


def list_export(*, kind: str, campaign: Campaign, as_of: dt.datetime, by: str, lang: str = "zh-CN") -> Export:
    """The 达标企业名单 / 标杆企业名单 the city publishes: as of a day, with the plan's thresholds."""
    t = campaign.thresholds
    return Export(
        what_zh=f"{campaign.campaign.city}安全生产{LIST_TITLES[kind]}",
        what_en=f"{campaign.campaign.city_en} {LIST_TITLES_EN[kind]}",
        slug=f"{kind}-firms",
        as_of=as_of,
        by=by,
        lang=lang,
        day_only=True,
        note_zh=f"评分：达标不低于{t.compliant:g}分，标杆不低于{t.benchmark:g}分",
        note_en=f"scores: compliant at least {t.compliant:g}, benchmark at least {t.benchmark:g}",
    )


def list_cells(rows: Iterable[Any], *, campaign: Campaign, lang: str = "zh-CN") -> Iterator[list[Any]]:
    """A published list's rows (from `workflow.certificates.published_list`) as spreadsheet cells."""
    for n, r in enumerate(rows, start=1):
        yield [
            n,
            r.certificate_no or "",
            r.uscc,
            r.name,
            r.district if lang == "zh-CN" else district_name(campaign, r.district, lang),
            sector_name(campaign, r.sector, lang),
            yes_no(r.key_field, lang),
            float(score_value(r.score)),
            r.certified_on,
            r.valid_until,
            r.benchmark_on,
        ]


def write_published_list(path: Path, *, export: Export, rows: Iterable[Any], campaign: Campaign) -> int:
    return write_xlsx(
        path, export=export, columns=LIST_COLUMNS, rows=list_cells(rows, campaign=campaign, lang=export.lang)
    )


def published_list_response(*, export: Export, rows: Iterable[Any], campaign: Campaign) -> FileResponse:
    """The published list written to a temporary file (rows consumed here), handed out, deleted once sent."""
    return xlsx_response(export, columns=LIST_COLUMNS, rows=list_cells(rows, campaign=campaign, lang=export.lang))
