"""Property-based fuzzing of the directory importer (hypothesis): random bytes, wrong encodings, huge cells,
control characters and formula injection. Never a crash, never a partial import, always a located message;
and what was imported leaves every export with its formula-leading cells neutralised."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import random
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from deadlines.export import FORMULA_STARTS, Column, Export, write_xlsx
from tests.reliability.conftest import Ledger, backend_of
from workflow import uscc
from workflow.campaign import Campaign
from workflow.clock import FixedClock
from workflow.context import Context
from workflow.directory import ImportRejected, import_directory
from workflow.tables import ENTERPRISES

NOW = dt.datetime(2023, 6, 1, 10, 30, tzinfo=dt.UTC)

HEADER = [
    "统一社会信用代码",
    "企业名称",
    "所属辖区",
    "行业",
    "重点监管",
    "规模以上",
    "主要负责人",
    "联系电话",
    "电子邮箱",
]
DISTRICTS = ["武进区", "溧阳市", "320412", "新北区", "常州经开区"]
SECTORS = ["化工", "machinery", "纺织", "危险化学品"]
FORMULAS = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example","点此")',
    "+1+1",
    "-2+3",
    "@SUM(1,1)",
    "\t=1+1",
    "\r=1+1",
    "=1+1",
]
FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
CLOCK = FixedClock.on(__import__("datetime").date(2022, 2, 1))

hostile = st.one_of(
    st.sampled_from(FORMULAS),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20).map(lambda s: "=" + s),
    st.sampled_from(["\x00", "a\x00b", "\x01\x02", "\u202e化工", "\ud7ff", "\ufeff", " ", "是\n否"]),
    st.integers(min_value=1, max_value=400_000).map(lambda n: "长" * n),
)


@st.composite
def directory(draw: st.DrawFn) -> list[list[str]]:
    rng = random.Random(draw(st.integers(0, 2**32)))
    rows = []
    for _ in range(draw(st.integers(1, 8))):
        row = [
            uscc.make(rng, division="320412"),
            f"常州{rng.randrange(10**6)}化工有限公司",
            rng.choice(DISTRICTS),
            rng.choice(SECTORS),
            "",
            rng.choice(["是", "否"]),
            "张三",
            "13900000000",
            f"f{rng.randrange(10**6)}@example.com",
        ]
        for index in draw(
            st.lists(st.sampled_from([1, 6, 7, 1, 6, 7, 0, 2, 3, 4, 5, 8]), max_size=3)
        ):  # free text first
            row[index] = draw(hostile)
        rows.append(row)
    return rows


def write(path: Path, rows: list[list[str]], how: str) -> Path:
    if how == "xlsx":
        path = path.with_suffix(".xlsx")
        book = openpyxl.Workbook()
        sheet = book.active
        for row in [HEADER, *rows]:
            sheet.append([ILLEGAL_CHARACTERS_RE.sub("", c) for c in row])  # what a spreadsheet can hold
        for line in sheet.iter_rows():
            for cell in line:
                cell.data_type = "s"  # a formula-looking cell arrives as text, as a user typed it
        book.save(path)
        return path
    text = io.StringIO()
    csv.writer(text).writerows([HEADER, *rows])
    path = path.with_suffix(".csv")
    path.write_bytes(text.getvalue().encode(how, errors="replace"))
    return path


def firms(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(ENTERPRISES).order_by(ENTERPRISES.c.uscc)).all()]


def located(exc: ImportRejected, *, lines: int) -> None:
    assert exc.problems
    for problem in exc.problems:
        assert 1 <= problem.line <= lines + 1, problem
        assert problem.message.strip() and "/" in problem.message, problem  # Chinese / English
        assert str(problem).startswith(f"line {problem.line}")


class Tally:
    def __init__(self) -> None:
        self.tries = self.accepted = self.rejected = 0


def test_random_bytes_are_refused_with_a_located_message(
    engine: sa.Engine, db_url: str, campaign: Campaign, tmp_path: Path, ledger: Ledger
) -> None:
    tally = Tally()
    before = firms(engine)

    @FUZZ
    @given(
        data=st.one_of(
            st.binary(max_size=4096),
            st.binary(max_size=4096).map(lambda b: b"PK\x03\x04" + b),
            st.binary(max_size=4096).map(lambda b: codecs.BOM_UTF8 + b),
            st.binary(max_size=512).map(lambda b: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b),
        ),
        suffix=st.sampled_from([".csv", ".xlsx", ".txt", ""]),
    )
    def attack(data: bytes, suffix: str) -> None:
        tally.tries += 1
        path = tmp_path / f"random{suffix}"
        path.write_bytes(data)
        with pytest.raises(ImportRejected) as caught:
            import_directory(engine, path, context=Context(campaign, CLOCK))
        located(caught.value, lines=max(1, data.count(b"\n") + 1))
        tally.rejected += 1

    attack()
    assert firms(engine) == before
    ledger.record(
        "hostile input",
        "directory import of random bytes (plain, behind a ZIP, UTF-8 BOM or OLE signature; .csv/.xlsx/other)",
        backend=backend_of(db_url),
        tries=tally.tries,
        detail=f"{tally.rejected} refused whole with located Chinese/English messages, no crash, nothing written",
    )


def test_hostile_cells_import_whole_or_not_at_all_and_exports_stay_inert(
    engine: sa.Engine, db_url: str, campaign: Campaign, tmp_path: Path, ledger: Ledger
) -> None:
    tally = Tally()

    @FUZZ
    @given(rows=directory(), how=st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "utf-16", "cp1252", "xlsx"]))
    def attack(rows: list[list[str]], how: str) -> None:
        tally.tries += 1
        before = firms(engine)
        path = write(tmp_path / "directory", rows, how)
        try:
            report = import_directory(engine, path, context=Context(campaign, CLOCK))
        except ImportRejected as exc:
            located(exc, lines=len(rows) + sum(c.count("\n") + c.count("\r") for r in rows for c in r))
            assert firms(engine) == before  # nothing written
            tally.rejected += 1
            return
        tally.accepted += 1
        assert report.rows == len(rows)
        stored = firms(engine)
        assert len(stored) == len(before) + report.inserted
        # every text the directory let in goes out inert in an officials' spreadsheet
        book_path = tmp_path / "export.xlsx"
        with engine.connect() as conn:
            cells = conn.execute(sa.select(ENTERPRISES.c.uscc, ENTERPRISES.c.name, ENTERPRISES.c.principal,
                                           ENTERPRISES.c.phone, ENTERPRISES.c.email)).all()  # fmt: skip
        export = Export(what_zh="企业名录", what_en="Firm directory", slug="firms", as_of=NOW, by="=cmd|' /C calc'!A0")
        write_xlsx(book_path, export=export, columns=[Column(h, h) for h in "abcde"], rows=cells)
        for row in openpyxl.load_workbook(book_path).active.iter_rows():
            for cell in row:
                assert cell.data_type != "f", cell.value
                assert not (isinstance(cell.value, str) and cell.value.startswith(FORMULA_STARTS)), cell.value

    attack()
    ledger.record(
        "hostile input",
        "directory files with hostile cells (formula injection such as `=cmd|' /C calc'!A0`, 400k-character "
        "cells, NUL and control characters, RTL marks) in UTF-8, UTF-8 BOM, GB18030, UTF-16, cp1252 and XLSX",
        backend=backend_of(db_url),
        tries=tally.tries,
        detail=f"{tally.rejected} refused whole with located messages, {tally.accepted} imported whole; never "
        "partial; each imported file's cells exported with formulas neutralised",
    )


def test_control_characters_and_a_zip_named_csv_are_refused_with_their_place(
    engine: sa.Engine, db_url: str, campaign: Campaign, tmp_path: Path, ledger: Ledger
) -> None:
    code = uscc.make(random.Random(5), division="320412")
    cases = {
        "NUL in a name (PostgreSQL cannot store it)": ("常州\x00化工", "张三", "line 2, column 企业名称"),
        "a control character in the principal (a worksheet cannot hold it)": (
            "常州化工",
            "张\x05三",
            "line 2, column 主要负责人",
        ),
    }
    for name, principal, where in cases.values():
        path = write(tmp_path / "controls", [[code, name, "武进区", "化工", "", "是", principal, "139", ""]], "utf-8")
        with pytest.raises(ImportRejected) as caught:
            import_directory(engine, path, context=Context(campaign, CLOCK))
        assert str(caught.value).startswith(where) and "control characters" in str(caught.value)
    zipped = tmp_path / "directory.csv"
    zipped.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    with pytest.raises(ImportRejected, match=r"line 1: .*not a valid XLSX workbook"):
        import_directory(engine, zipped, context=Context(campaign, CLOCK))
    assert firms(engine) == []
    ledger.record(
        "hostile input",
        "directory cells with NUL or control characters; a ZIP named .csv",
        backend=backend_of(db_url),
        tries=len(cases) + 1,
        detail="refused with line and column (were: a crash on PostgreSQL for NUL, an XLSX export broken by a "
        "control character, an unhandled openpyxl error for the ZIP)",
    )
