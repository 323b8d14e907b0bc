"""XLSX downloads of the pages' lists, with Chinese headers; cells a spreadsheet would read as a formula are
neutralised by `deadlines.export` (the one writer of officials' spreadsheets)."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from deadlines.export import write_titled_xlsx, write_xlsx
from states import STATE_LABELS, State
from states.numbers import score_value
from workflow.campaign import Campaign
from workflow.clock import SHANGHAI

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FIRM_HEADERS = (
    "序号",
    "统一社会信用代码",
    "企业名称",
    "所属辖区",
    "行业",
    "重点监管领域",
    "规模以上",
    "当前状态",
    "进入当前状态时间",
    "是否逾期",
    "主要负责人",
    "联系电话",
)


def xlsx_response(filename: str, *, title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> FileResponse:
    """Write the rows (streamed) to a temporary file, hand it out, and delete it once sent."""
    handle, name = tempfile.mkstemp(suffix=".xlsx", prefix="dabiao-")
    os.close(handle)
    path = Path(name)
    try:
        write_xlsx(path, title=title, headers=headers, rows=rows)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return FileResponse(
        path, media_type=XLSX, filename=filename, background=BackgroundTask(path.unlink, missing_ok=True)
    )


def firm_cells(rows: Iterable[Any], *, campaign: Campaign) -> Iterator[list[Any]]:
    """A firm list's rows (from `workflow.firm_page.firm_export_rows`) as spreadsheet cells."""
    for n, r in enumerate(rows, start=1):
        sector = campaign.sector(r.sector)
        yield [
            n,
            r.uscc,
            r.name,
            r.district_name,
            sector.name if sector else r.sector,
            "是" if r.key_field else "否",
            "是" if r.above_size else "否",
            STATE_LABELS[State(r.state)][0],
            r.state_since.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"),
            "是" if r.overdue else "否",
            r.principal,
            r.phone,
        ]


LIST_TITLES = {"certified": "达标企业名单", "benchmark": "标杆企业名单"}
LIST_HEADERS = (
    "序号",
    "证书编号",
    "统一社会信用代码",
    "企业名称",
    "所属辖区",
    "行业",
    "重点监管领域",
    "评审得分",
    "认定日期",
    "证书有效期至",
    "列入标杆名单日期",
)
LIST_WIDTHS = (6, 20, 22, 40, 14, 12, 12, 10, 12, 14, 16)


def list_filename(kind: str, as_of: dt.date) -> str:
    return f"{kind}-firms-{as_of:%Y%m%d}.xlsx"


def write_published_list(
    path: Path, *, kind: str, rows: Iterable[Any], campaign: Campaign, as_of: dt.date, by: str
) -> int:
    """The 达标企业名单 / 标杆企业名单 the city publishes (rows from `workflow.certificates.published_list`)."""
    title = (
        f"{campaign.campaign.city}安全生产{LIST_TITLES[kind]}（截至{as_of.year}年{as_of.month}月{as_of.day}日，"
        f"{by}导出；评分：达标不低于{campaign.thresholds.compliant:g}分，标杆不低于{campaign.thresholds.benchmark:g}分）"
    )

    def cells() -> Iterator[list[Any]]:
        for n, r in enumerate(rows, start=1):
            sector = campaign.sector(r.sector)
            yield [
                n,
                r.certificate_no or "",
                r.uscc,
                r.name,
                r.district,
                sector.name if sector else r.sector,
                "是" if r.key_field else "否",
                float(score_value(r.score)),
                r.certified_on,
                r.valid_until,
                r.benchmark_on,
            ]

    return write_titled_xlsx(
        path, sheet=LIST_TITLES[kind], title=title, headers=LIST_HEADERS, widths=LIST_WIDTHS, rows=cells()
    )


def published_list_response(
    *, kind: str, rows: Iterable[Any], campaign: Campaign, as_of: dt.date, by: str
) -> FileResponse:
    """The published list written to a temporary file (rows consumed here), handed out, deleted once sent."""
    handle, name = tempfile.mkstemp(suffix=".xlsx", prefix="dabiao-")
    os.close(handle)
    path = Path(name)
    try:
        write_published_list(path, kind=kind, rows=rows, campaign=campaign, as_of=as_of, by=by)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return FileResponse(
        path,
        media_type=XLSX,
        filename=list_filename(kind, as_of),
        background=BackgroundTask(path.unlink, missing_ok=True),
    )
