"""XLSX files for officials (Chinese headers), safe to open: a cell that a spreadsheet would read as a
formula (starting with = + - @, or a tab or carriage return) is written as text with a leading quote, and
control characters a worksheet cannot hold are dropped (one such name must not break the whole export)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


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
        sheet.append([neutralise(v) for v in row])
        count += 1
    book.save(path)
    return count
