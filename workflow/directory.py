"""The industrial directory (工业企业名录) importer: reads a CSV or XLSX file, checks every row, and
upserts the firms by credit code in one transaction — or writes nothing and lists every problem."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import re
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from openpyxl.utils.exceptions import InvalidFileException

from states import InvalidInput, Role
from workflow import uscc
from workflow.actors import Actor
from workflow.campaign import Campaign, sync_districts
from workflow.certificates import PriorCertificate, apply_prior, check_prior, parse_date, parse_prior_level
from workflow.context import Context
from workflow.models import Enterprise

CHUNK = 5_000  # rows per lookup / executemany batch

_enterprises: sa.Table = Enterprise.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Column:
    """One column of the directory file: the field it fills and its header in Chinese and English."""

    field: str
    zh: str
    en: str
    required: bool  # the column must be present and its cells filled
    max_length: int | None = None


def _length(column: str) -> int:
    length = getattr(_enterprises.c[column].type, "length", None)
    assert isinstance(length, int)
    return length


COLUMNS: tuple[Column, ...] = (
    Column("uscc", "统一社会信用代码", "uscc", required=True),
    Column("name", "企业名称", "name", required=True, max_length=_length("name")),
    Column("district", "所属辖区", "district", required=True),
    Column("sector", "行业", "sector", required=True),
    Column("key_field", "重点监管", "key_field", required=False),
    Column("above_size", "规模以上", "above_size", required=True),
    Column("principal", "主要负责人", "principal", required=True, max_length=_length("principal")),
    Column("phone", "联系电话", "phone", required=False, max_length=_length("phone")),
    Column("email", "电子邮箱", "email", required=False, max_length=_length("email")),
    # optional: the firm's earlier standardization certificate (原一级、二级安全生产标准化证书)
    Column("prior_level", "原标准化等级", "prior_level", required=False),
    Column(
        "prior_certificate_no",
        "原证书编号",
        "prior_certificate_no",
        required=False,
        max_length=_length("prior_certificate_no"),
    ),
    Column("prior_certificate_date", "原发证日期", "prior_certificate_date", required=False),
)
PRIOR_FIELDS = ("prior_level", "prior_certificate_no", "prior_certificate_date")
_BY_HEADER = {key: c for c in COLUMNS for key in (c.zh, c.en.lower())}

_YES = frozenset({"是", "y", "yes", "true", "1"})
_NO = frozenset({"否", "n", "no", "false", "0"})
_SCIENTIFIC = re.compile(r"\d+(\.\d+)?E\+?\d+")  # what Excel makes of an all-digit credit code
# control characters: PostgreSQL refuses NUL in text, and a worksheet cannot hold the others
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# The enterprise columns a directory row sets; `DirectoryRow.values()` follows this order.
DIRECTORY_FIELDS = (
    "name",
    "district_code",
    "sector",
    "key_field",
    "above_size",
    "principal",
    "phone",
    "email",
)


@dataclass(frozen=True)
class Problem:
    line: int
    column: str  # the header as the file spells it; empty for a problem with the whole file
    message: str

    def __str__(self) -> str:
        if not self.column:
            return f"line {self.line}: {self.message}"
        return f"line {self.line}, column {self.column}: {self.message}"


class ImportRejected(Exception):
    """The file has problems; nothing was written. `problems` lists every one, in file order."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class ImportReport:
    rows: int
    inserted: int
    updated: int
    unchanged: int
    prior_recorded: int = 0  # firms whose earlier-certificate status the file recorded or changed


@dataclass(frozen=True, slots=True)
class DirectoryRow:
    """One checked firm of the directory, in the form it is stored (district and sector by code)."""

    line: int
    uscc: str
    name: str
    district_code: str
    sector: str
    key_field: bool
    above_size: bool
    principal: str
    phone: str
    email: str | None
    prior: PriorCertificate | None = None  # None: the file says nothing about an earlier certificate

    def values(self) -> tuple[str, str, str, bool, bool, str, str, str | None]:
        return (
            self.name,
            self.district_code,
            self.sector,
            self.key_field,
            self.above_size,
            self.principal,
            self.phone,
            self.email,
        )


class _Unreadable(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(str(problem))


# --- reading cells -------------------------------------------------------------------------------

_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the old binary .xls, and encrypted workbooks


def _cells(path: Path) -> Iterator[tuple[int, Sequence[object]]]:
    """(line number as a person sees it, cells) for every line of the file, blank ones included."""
    try:
        with path.open("rb") as head:
            data = head.read(len(_OLE_MAGIC))
    except OSError as exc:
        raise _Unreadable(Problem(1, "", f"无法读取文件 / cannot read the file: {exc.strerror}")) from None
    if data.startswith(_ZIP_MAGIC):
        yield from _xlsx_cells(path)
    elif data.startswith(_OLE_MAGIC):
        raise _Unreadable(
            Problem(
                1,
                "",
                "这是旧版 Excel（.xls）文件或加密的工作簿，请另存为不加密的 .xlsx 或 CSV 后再导入 / "
                "this is an old Excel .xls file or a password-protected workbook: "
                "save it as .xlsx without a password, or as CSV, and import that",
            )
        )
    elif path.suffix.lower() in (".xlsx", ".xlsm"):
        raise _Unreadable(
            Problem(
                1,
                "",
                f"文件名为 {path.suffix}，但内容不是 Excel 工作簿 / "
                f"the file is named {path.suffix} but is not an Excel workbook",
            )
        )
    else:
        yield from _csv_cells(path, _encoding(path, bom=data.startswith(codecs.BOM_UTF8)))


def _encoding(path: Path, *, bom: bool) -> str:
    """The encoding the whole file decodes in, found by a streaming pass (a large file is never held)."""
    for encoding in ("utf-8-sig",) if bom else ("utf-8", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as raw:
                while chunk := raw.read(1 << 20):
                    decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise _Unreadable(
        Problem(
            1,
            "",
            "无法识别文件编码，请另存为 UTF-8 或 GB18030 编码的 CSV，或 XLSX / "
            "file encoding not recognised: save it as CSV in UTF-8 or GB18030, or as XLSX",
        )
    )


def _csv_cells(path: Path, encoding: str) -> Iterator[tuple[int, Sequence[object]]]:
    with path.open(encoding=encoding, newline="") as text:
        reader = csv.reader(text)
        line = 1  # a record's first physical line (a quoted cell may span several)
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise _Unreadable(Problem(reader.line_num, "", f"CSV 格式错误 / malformed CSV: {exc}")) from None
            yield line, cells
            line = reader.line_num + 1


# a broken sheet's XML raises a SyntaxError subclass (ElementTree's or lxml's ParseError); a ZIP named
# other than .xlsx (a "CSV" that is really a ZIP) raises openpyxl's InvalidFileException
_BROKEN_WORKBOOK = (zipfile.BadZipFile, KeyError, ValueError, OSError, SyntaxError, InvalidFileException)


def _not_a_workbook(exc: Exception) -> _Unreadable:
    return _Unreadable(Problem(1, "", f"不是有效的 XLSX 工作簿 / not a valid XLSX workbook: {exc}"))


def _xlsx_cells(path: Path) -> Iterator[tuple[int, Sequence[object]]]:
    try:
        # data_only: a formula cell gives the value Excel last computed, not its formula
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except _BROKEN_WORKBOOK as exc:
        raise _not_a_workbook(exc) from None
    try:
        if not workbook.worksheets:
            return
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()  # some exporters write a wrong sheet size; read what is there
        yield from enumerate(sheet.iter_rows(values_only=True), start=1)
    except _BROKEN_WORKBOOK as exc:
        raise _not_a_workbook(exc) from None
    finally:
        workbook.close()


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


# --- checking rows -------------------------------------------------------------------------------


def _yes_no(value: str) -> bool | None:
    lowered = value.lower()
    if lowered in _YES:
        return True
    if lowered in _NO:
        return False
    return None


class _Checker:
    """Checks data rows against a header; appends every problem it finds to `problems`."""

    def __init__(self, campaign: Campaign, header: dict[str, tuple[int, str]], problems: list[Problem]):
        self.campaign = campaign
        self.header = header  # field -> (cell index, header text as in the file)
        self.problems = problems
        self.seen: dict[str, int] = {}  # credit code -> first line

    @classmethod
    def from_header(
        cls, campaign: Campaign, line: int, cells: Sequence[str], problems: list[Problem]
    ) -> _Checker | None:
        header: dict[str, tuple[int, str]] = {}
        english = False
        ok = True
        for index, raw in enumerate(cells):
            text = raw.strip().strip("\ufeff").strip()
            column = _BY_HEADER.get(text) or _BY_HEADER.get(text.lower())
            if column is None:
                continue  # other columns (序号, 地址, …) are allowed and ignored
            english = english or text.lower() == column.en.lower()
            if column.field in header:
                first = header[column.field][1]
                problems.append(
                    Problem(line, text, f"列“{text}”与“{first}”重复 / column {text} repeats column {first}")
                )
                ok = False
                continue
            header[column.field] = (index, text)
        for column in COLUMNS:
            if column.required and column.field not in header:
                shown = column.en if english else column.zh
                problems.append(Problem(line, shown, f"缺少必填列“{column.zh}” / missing required column: {column.en}"))
                ok = False
        return cls(campaign, header, problems) if ok else None

    def check(self, line: int, cells: Sequence[object]) -> DirectoryRow | None:
        before = len(self.problems)
        texts: dict[str, str] = {}
        for column in COLUMNS:
            place = self.header.get(column.field)
            if place is None:
                texts[column.field] = ""
                continue
            index = place[0]
            raw = cells[index] if index < len(cells) else None
            value = _text(raw)
            texts[column.field] = value
            if _CONTROL.search(value):
                self._add(line, column.field, f"{column.zh}含有控制字符 / {column.en} contains control characters")
                texts[column.field] = ""  # reported; no further checks on it
                continue
            if not value:
                if column.required:
                    self._add(line, column.field, f"{column.zh}不能为空 / {column.en} is required")
            elif column.max_length is not None and len(value) > column.max_length:
                self._add(
                    line,
                    column.field,
                    f"{column.zh}超过{column.max_length}个字符（实际{len(value)}个）/ "
                    f"{column.en} is longer than {column.max_length} characters ({len(value)})",
                )
                texts[column.field] = ""  # reported; no further checks on it

        code = self._credit_code(line, texts["uscc"], self._raw(cells, "uscc"))
        district = self.campaign.district(texts["district"]) if texts["district"] else None
        if texts["district"] and district is None:
            self._add(
                line,
                "district",
                f"所属辖区“{texts['district']}”不存在 / unknown district: {texts['district']}",
            )
        sector = self.campaign.sector(texts["sector"]) if texts["sector"] else None
        if texts["sector"] and sector is None:
            self._add(line, "sector", f"行业“{texts['sector']}”不存在 / unknown sector: {texts['sector']}")
        above_size = self._flag(line, "above_size", texts["above_size"])
        key_field = self._flag(line, "key_field", texts["key_field"])
        if key_field is None and sector is not None and not texts["key_field"]:
            key_field = sector.key_field  # a blank cell takes the sector's default
        email = self._email(line, texts["email"])
        prior = self._prior(line, texts, cells)

        if len(self.problems) > before:
            return None
        assert code is not None and district is not None and sector is not None
        assert key_field is not None and above_size is not None
        return DirectoryRow(
            line=line,
            uscc=code,
            name=texts["name"],
            district_code=district.code,
            sector=sector.code,
            key_field=key_field,
            above_size=above_size,
            principal=texts["principal"],
            phone=texts["phone"],
            email=email,
            prior=prior,
        )

    def _prior(self, line: int, texts: dict[str, str], cells: Sequence[object]) -> PriorCertificate | None:
        """The earlier certificate a row states: a level (一级/二级/无) with number and date for 一级/二级."""
        if not any(texts[f] for f in PRIOR_FIELDS):
            return None
        if not texts["prior_level"]:
            self._add_any(
                line,
                PRIOR_FIELDS,
                "填写了原证书编号或发证日期，但缺少原标准化等级（一级、二级或无） / a prior certificate number or "
                "date without prior_level (1, 2 or none)",
            )
            return None
        try:
            level = parse_prior_level(texts["prior_level"])
            raw_date = self._raw(cells, "prior_certificate_date") if "prior_certificate_date" in self.header else None
            issued_on = parse_date(raw_date if isinstance(raw_date, dt.date) else texts["prior_certificate_date"])
            return check_prior(level, texts["prior_certificate_no"], issued_on, today=dt.date.max)
        except InvalidInput as exc:
            self._add(line, "prior_level", str(exc))
            return None

    def _add_any(self, line: int, fields: Sequence[str], message: str) -> None:
        field = next(f for f in fields if f in self.header)
        self._add(line, field, message)

    def _add(self, line: int, field: str, message: str) -> None:
        self.problems.append(Problem(line, self.header[field][1], message))

    def _raw(self, cells: Sequence[object], field: str) -> object:
        index = self.header[field][0]
        return cells[index] if index < len(cells) else None

    def _credit_code(self, line: int, value: str, raw: object) -> str | None:
        if not value:
            return None
        code = uscc.normalize(value)
        if isinstance(raw, int | float) or (_SCIENTIFIC.fullmatch(code) and uscc.problem(code) is not None):
            self._add(
                line,
                "uscc",
                f"统一社会信用代码“{value}”被 Excel 存成了数字，请把该列设为文本格式后重新填写 / "
                f"the credit code {value} was stored as a number by Excel: format the column as text "
                f"and enter the codes again",
            )
            return None
        why = uscc.problem(code)
        if why is not None:
            self._add(line, "uscc", why)
            return None
        first = self.seen.setdefault(code, line)
        if first != line:
            self._add(
                line,
                "uscc",
                f"统一社会信用代码“{code}”与第{first}行重复 / duplicate credit code {code}: first on line {first}",
            )
            return None
        return code

    def _flag(self, line: int, field: str, value: str) -> bool | None:
        if not value:
            return None
        flag = _yes_no(value)
        if flag is None:
            column = _COLUMN[field]
            self._add(
                line,
                field,
                f"{column.zh}应填“是”或“否”，实际为“{value}” / {column.en} must be yes or no, not: {value}",
            )
        return flag

    def _email(self, line: int, value: str) -> str | None:
        if not value:
            return None
        try:
            return validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError:
            self._add(line, "email", f"电子邮箱“{value}”格式不正确 / invalid email address: {value}")
            return None


_COLUMN = {c.field: c for c in COLUMNS}


def read_directory(path: Path, campaign: Campaign) -> list[DirectoryRow]:
    """Parse and check a directory file (CSV or XLSX).

    Returns:
        The firms, in file order; fully blank lines are skipped.
    Raises:
        ImportRejected: listing every problem found in the file.
    """
    problems: list[Problem] = []
    rows: list[DirectoryRow] = []
    checker: _Checker | None = None
    header_seen = False
    try:
        for line, cells in _cells(path):
            if not any(_text(c) for c in cells):
                continue
            if not header_seen:
                header_seen = True
                checker = _Checker.from_header(campaign, line, [_text(c) for c in cells], problems)
                if checker is None:
                    break  # without the right columns the rows cannot be read
                continue
            assert checker is not None
            row = checker.check(line, cells)
            if row is not None:
                rows.append(row)
    except _Unreadable as exc:
        problems.append(exc.problem)
    if not header_seen and not problems:
        problems.append(Problem(1, "", "文件为空，没有表头 / the file is empty: no header row"))
    if problems:
        raise ImportRejected(problems)
    return rows


# --- writing -------------------------------------------------------------------------------------


def _chunks(rows: list[DirectoryRow]) -> Iterator[list[DirectoryRow]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def import_directory(
    engine: sa.Engine,
    path: Path,
    *,
    context: Context,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import a directory file: insert new firms (state `mobilized`), update the directory fields of
    firms whose row changed, leave the rest untouched — all in one transaction.

    Args:
        progress: called with (rows written so far, rows in the file) after each batch.
    Raises:
        ImportRejected: the file has problems; nothing was written.
    """
    campaign, clock = context.campaign, context.clock
    rows = read_directory(path, campaign)
    now = clock.now()
    t = _enterprises
    lookup = sa.select(t.c.uscc, *(t.c[f] for f in DIRECTORY_FIELDS)).where(
        t.c.uscc.in_(sa.bindparam("codes", expanding=True))
    )
    change = (
        sa.update(t)
        .where(t.c.uscc == sa.bindparam("b_uscc"))
        .values({f: sa.bindparam(f"b_{f}") for f in (*DIRECTORY_FIELDS, "updated_at")})
    )
    inserted = updated = unchanged = done = prior_recorded = 0
    with engine.connect() as conn:
        conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            sync_districts(conn, campaign)  # the firms' districts must exist (foreign key)
            for chunk in _chunks(rows):
                existing = {r[0]: tuple(r[1:]) for r in conn.execute(lookup, {"codes": [row.uscc for row in chunk]})}
                new: list[dict[str, object]] = []
                changed: list[dict[str, object]] = []
                for row in chunk:
                    values = row.values()
                    old = existing.get(row.uscc)
                    if old is None:
                        new.append(
                            {
                                "uscc": row.uscc,
                                **dict(zip(DIRECTORY_FIELDS, values, strict=True)),
                                "state": "mobilized",
                                "version": 1,
                                "state_since": now,
                                "created_at": now,
                                "updated_at": now,
                            }
                        )
                    elif old != values:
                        changed.append(
                            {
                                "b_uscc": row.uscc,
                                **{f"b_{f}": v for f, v in zip(DIRECTORY_FIELDS, values, strict=True)},
                                "b_updated_at": now,
                            }
                        )
                    else:
                        unchanged += 1
                if new:
                    conn.execute(sa.insert(t), new)
                if changed:
                    conn.execute(change, changed)
                inserted += len(new)
                updated += len(changed)
                prior_recorded += _record_priors(conn, chunk, campaign=campaign, at=now)
                done += len(chunk)
                if progress is not None:
                    progress(done, len(rows))
    return ImportReport(
        rows=len(rows), inserted=inserted, updated=updated, unchanged=unchanged, prior_recorded=prior_recorded
    )


IMPORTER = Actor(name="directory import", role=Role.city_bureau)


def _record_priors(conn: sa.Connection, chunk: list[DirectoryRow], *, campaign: Campaign, at: dt.datetime) -> int:
    """The earlier certificates the rows state, each change an event in the firm's chain (in the import's
    transaction); rows that state nothing leave the firm's record as it is."""
    stated = {row.uscc: row.prior for row in chunk if row.prior is not None}
    if not stated:
        return 0
    firms = conn.execute(sa.select(_enterprises).where(_enterprises.c.uscc.in_(list(stated)))).all()
    changed = 0
    for firm in firms:
        prior = stated[firm.uscc]
        changed += apply_prior(
            conn, firm=firm, prior=prior, actor=IMPORTER, at=at, source="directory", campaign=campaign
        )
    return changed
