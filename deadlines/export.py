"""The one writer of officials' spreadsheets (XLSX). Every export — firm lists, referrals, inspection plans
and reports, the published lists — goes through `write_xlsx`, which streams (openpyxl's write-only mode, so
memory stays flat however many rows) and gives each file the same shape:

- a title row saying what the list is, which filter made it, as of when and by whom;
- a bold header row, frozen with the title, with an autofilter over the data;
- columns as wide as their content (measured on the header and the first rows; a CJK character counts two);
- dates and times as typed cells with a number format (yyyy-mm-dd, yyyy-mm-dd hh:mm), local time;
- one language per sheet: headers, labels and title in Chinese, or all in English.

It is safe to open: a cell a spreadsheet would read as a formula (starting with = + - @, or a tab or carriage
return) is written as text with a leading quote, and control characters a worksheet cannot hold are dropped
(one such name must not break the whole export). A phone number (+1-555-0100, 0519-8888 8888) is written as
it reads, in a text cell (format "@"), never as a formula and without a visible quote."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

import openpyxl
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{4,30}$")  # digits with the usual separators, perhaps a leading +
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LANGS = ("zh-CN", "en")
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
COMMAND_LINE = "命令行"  # who exports from the command line, as the title row names it
MEASURED_ROWS = 500  # widths are fitted to the header and this many first rows (the rest streams behind them)
MIN_WIDTH, MAX_WIDTH = 6, 60  # in character widths (a CJK character counts two)
Kind = Literal["text", "number", "percent", "date", "datetime"]


@dataclass(frozen=True)
class Column:
    """One column: its header in both languages and what its cells hold."""

    zh: str
    en: str
    kind: Kind = "text"

    def header(self, lang: str) -> str:
        return self.zh if lang == "zh-CN" else self.en


@dataclass(frozen=True)
class Filter:
    """One filter the list was made with, as the title and the file name say it: "行业：化工" in the title,
    "化工" in the file name, `ascii` in the file name's ASCII fallback."""

    value_zh: str
    value_en: str
    ascii: str
    label_zh: str = ""
    label_en: str = ""

    def title(self, lang: str) -> str:
        label, value = (self.label_zh, self.value_zh) if lang == "zh-CN" else (self.label_en, self.value_en)
        if not label:
            return value
        return f"{label}：{value}" if lang == "zh-CN" else f"{label}: {value}"

    def value(self, lang: str) -> str:
        return self.value_zh if lang == "zh-CN" else self.value_en


@dataclass(frozen=True)
class Export:
    """What one export is: its name, the filters it was made with, as of when, by whom, in which language."""

    what_zh: str
    what_en: str
    slug: str  # ASCII, for the file name's fallback: "firms", "referrals"
    as_of: dt.datetime  # aware
    by: str
    lang: str = "zh-CN"
    filters: Sequence[Filter] = field(default_factory=tuple)
    note_zh: str = ""  # an extra sentence for the title (the thresholds of a published list)
    note_en: str = ""
    day_only: bool = False  # "截至 2023-06-01" rather than "截至 2023-06-01 10:30" (lists as of a day)

    @property
    def tz(self) -> dt.tzinfo:
        return self.as_of.tzinfo or ZoneInfo("Asia/Shanghai")

    @property
    def what(self) -> str:
        return self.what_zh if self.lang == "zh-CN" else self.what_en

    def title(self) -> str:
        """企业名录 · 武进区 · 行业：化工 · 截至 2023-06-01 10:30 · 导出人：武进区应急管理局 张某"""
        zh = self.lang == "zh-CN"
        when = f"{self.as_of:%Y-%m-%d}" if self.day_only else f"{self.as_of:%Y-%m-%d %H:%M}"
        parts = [self.what, *(f.title(self.lang) for f in self.filters)]
        parts.append(f"截至 {when}" if zh else f"as of {when}")
        if self.by:
            parts.append(f"导出人：{self.by}" if zh else f"exported by: {self.by}")
        note = self.note_zh if zh else self.note_en
        if note:
            parts.append(note)
        return " · ".join(parts)

    def sheet_name(self) -> str:
        return re.sub(r"[\[\]:*?/\\]", "", self.what)[:31]  # the characters a sheet's name may not hold

    def filename(self) -> str:
        """企业名录-武进区-化工-20230601.xlsx (in the sheet's language)."""
        parts = [self.what, *(f.value(self.lang) for f in self.filters), f"{self.as_of:%Y%m%d}"]
        return _safe_name("-".join(parts)) + ".xlsx"

    def ascii_filename(self) -> str:
        """firms-320412-chemical-20230601.xlsx: for clients that cannot read an RFC 5987 name."""
        parts = [self.slug, *(f.ascii for f in self.filters), f"{self.as_of:%Y%m%d}"]
        name = "-".join(p for p in parts if p)
        name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
        return re.sub(r"[^A-Za-z0-9._-]+", "_", name) + ".xlsx"

    def content_disposition(self) -> str:
        """attachment; filename="<ASCII>"; filename*=UTF-8''<the real name> (RFC 6266 / RFC 5987)."""
        return f"attachment; filename=\"{self.ascii_filename()}\"; filename*=UTF-8''{quote(self.filename(), safe='')}"


def _safe_name(text: str) -> str:
    text = ILLEGAL_CHARACTERS_RE.sub("", text)
    return re.sub(r'[\\/:*?"<>|\s]+', "_", text).strip("._") or "export"


def display_width(text: str) -> int:
    """How wide a text shows in a spreadsheet's columns: East Asian wide and full-width characters count two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def neutralise(value: Any) -> Any:
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _shown(value: Any, kind: Kind) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime) and kind != "date":
        return "2023-06-01 10:30"
    if isinstance(value, dt.date):
        return "2023-06-01"
    if isinstance(value, float):
        return "100%" if kind == "percent" else f"{value:.2f}"
    return str(value)


class _Row:
    """Turns a row of values into cells: dates typed (local, naive, as a spreadsheet keeps them), phone numbers
    as text, everything else neutralised."""

    def __init__(self, sheet: WriteOnlyWorksheet, columns: Sequence[Column], tz: dt.tzinfo) -> None:
        self.sheet, self.kinds, self.tz = sheet, [c.kind for c in columns], tz

    def cells(self, row: Sequence[Any]) -> list[Any]:
        out: list[Any] = []
        for value, kind in itertools.zip_longest(row, self.kinds, fillvalue="text"):
            if isinstance(value, dt.datetime):
                if value.tzinfo is not None:
                    value = value.astimezone(self.tz).replace(tzinfo=None)
                cell = WriteOnlyCell(self.sheet, value=value if kind != "date" else value.date())
                cell.number_format = DATE_FORMAT if kind == "date" else DATETIME_FORMAT
                out.append(cell)
            elif isinstance(value, dt.date):
                cell = WriteOnlyCell(self.sheet, value=value)
                cell.number_format = DATE_FORMAT
                out.append(cell)
            elif isinstance(value, str):
                value = ILLEGAL_CHARACTERS_RE.sub("", value)
                if PHONE.match(value):
                    cell = WriteOnlyCell(self.sheet, value=value)
                    cell.data_type = "s"  # text, whatever it starts with
                    cell.number_format = "@"
                    out.append(cell)
                else:
                    out.append("'" + value if value.startswith(FORMULA_STARTS) else value)
            elif kind == "percent" and isinstance(value, float):
                cell = WriteOnlyCell(self.sheet, value=value)
                cell.number_format = "0%"
                out.append(cell)
            else:
                out.append(value)
        return out


def write_xlsx(path: Path, *, export: Export, columns: Sequence[Column], rows: Iterable[Sequence[Any]]) -> int:
    """Write one sheet, streamed; returns the number of data rows. `rows` hold the values in the export's
    language (labels already chosen), dates as `date`/`datetime`."""
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet(title=export.sheet_name())
    lang = export.lang
    headers = [c.header(lang) for c in columns]
    stream = iter(rows)
    first = list(itertools.islice(stream, MEASURED_ROWS))
    for n, column in enumerate(columns):
        widest = max(
            [display_width(headers[n]) + 2]  # room for the autofilter's button
            + [display_width(_shown(r[n] if n < len(r) else None, column.kind)) for r in first]
        )
        sheet.column_dimensions[get_column_letter(n + 1)].width = min(MAX_WIDTH, max(MIN_WIDTH, widest + 1))
    sheet.freeze_panes = "A3"  # the title and the header stay in view
    heading = WriteOnlyCell(sheet, value=neutralise(export.title()))
    heading.font = Font(bold=True, size=13)
    sheet.append([heading])
    bold = Font(bold=True)
    header_cells = []
    for text in headers:
        cell = WriteOnlyCell(sheet, value=text)
        cell.font = bold
        header_cells.append(cell)
    sheet.append(header_cells)
    shape = _Row(sheet, columns, export.tz)
    count = 0
    for row in itertools.chain(first, stream):
        sheet.append(shape.cells(row))
        count += 1
    sheet.auto_filter.ref = f"A2:{get_column_letter(max(1, len(columns)))}{count + 2}"
    book.save(path)
    return count


def yes_no(value: bool, lang: str) -> str:
    if lang == "zh-CN":
        return "是" if value else "否"
    return "yes" if value else "no"


def sector_name(campaign: Any, code: str, lang: str) -> str:
    """A sector's name in the sheet's language (the campaign file names sectors in Chinese; English from the code)."""
    if lang != "zh-CN":
        return code.replace("_", " ").capitalize()
    sector = campaign.sector(code)
    return str(sector.name) if sector else code


def district_name(campaign: Any, code: str | None, lang: str) -> str:
    district = campaign.district(code) if code else None
    if district is None:
        return code or ""
    return str(district.name if lang == "zh-CN" else district.name_en)
