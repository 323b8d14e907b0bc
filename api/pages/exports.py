"""XLSX downloads of the pages' lists, with Chinese headers; cells a spreadsheet would read as a formula are
neutralised by `deadlines.export` (the one writer of officials' spreadsheets)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from deadlines.export import write_xlsx
from states import STATE_LABELS, State
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
    """A firm list's rows (from `workflow.dashboard.firm_export_rows`) as spreadsheet cells."""
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
