"""XLSX files for officials (Chinese headers), safe to open: a cell that a spreadsheet would read as a
formula (starting with = + - @, or a tab or carriage return) is written as text with a leading quote, and
control characters a worksheet cannot hold are dropped (one such name must not break the whole export). A
phone number (+1-555-0100, 0519-8888 8888) is written as it reads, in a text cell (format "@"), never as a
formula and without a visible quote."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, WriteOnlyCell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{4,30}$")  # digits with the usual separators, perhaps a leading +


def _phone_cell(sheet: WriteOnlyWorksheet, value: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"  # text, whatever it starts with
    cell.number_format = "@"
    return cell


def neutralise(value: Any) -> Any:
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_xlsx(path: Path, *, title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write one sheet (streamed: openpyxl's write-only mode); returns the number of data rows."""
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31])
    sheet.append(list(headers))
    count = 0
    for row in rows:
        sheet.append(
            [
                _phone_cell(sheet, v) if isinstance(v, str) and PHONE.match(v) else neutralise(v)
                for v in (ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v for v in row)
            ]
        )
        count += 1
    book.save(path)
    return count


def write_titled_xlsx(
    path: Path,
    *,
    sheet: str,
    title: str,
    headers: Sequence[str],
    widths: Sequence[int],
    rows: Iterable[Sequence[Any]],
) -> int:
    """A list worth publishing: a title row (what, as of when, by whom), then a frozen header row with an
    autofilter, columns as wide as `widths`, dates as real dates (yyyy-mm-dd). Streamed; returns the rows."""
    import datetime as dt

    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = openpyxl.Workbook(write_only=True)
    ws = book.create_sheet(title=sheet[:31])
    ws.freeze_panes = "A3"  # title and header stay in view
    for n, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(n)].width = width
    heading = WriteOnlyCell(ws, value=neutralise(title))
    heading.font = Font(bold=True, size=13)
    ws.append([heading])
    header_cells = []
    for text in headers:
        cell = WriteOnlyCell(ws, value=text)
        cell.font = Font(bold=True)
        header_cells.append(cell)
    ws.append(header_cells)
    count = 0
    for row in rows:
        cells: list[Any] = []
        for value in row:
            if isinstance(value, dt.date):
                cell = WriteOnlyCell(ws, value=value)
                cell.number_format = "yyyy-mm-dd"
                cells.append(cell)
            else:
                cells.append(neutralise(value))
        ws.append(cells)
        count += 1
    ws.auto_filter.ref = f"A2:{get_column_letter(len(headers))}{count + 2}"
    book.save(path)
    return count
