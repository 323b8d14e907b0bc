"""The directory importer, as a district clerk meets it: files from Excel and editors, the exact
messages for mistakes, and a database that only changes when the whole file is right."""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa

from workflow import directory, uscc
from workflow.campaign import Campaign
from workflow.clock import FixedClock
from workflow.context import Context
from workflow.directory import COLUMNS, ImportRejected, Problem, import_directory, read_directory
from workflow.models import Enterprise

enterprises: sa.Table = Enterprise.__table__  # type: ignore[attr-defined]
ZH = [c.zh for c in COLUMNS]
EN = [c.en for c in COLUMNS]
BAD_CHECK = "913204124JURQ28371"  # a valid code (…837R) with a wrong last character


def code(n: int, division: str = "320412") -> str:
    return uscc.make(random.Random(n), division=division)


def firm(n: int, **cells: str) -> dict[str, str]:
    """A valid directory row (as typed in the file); keyword arguments change single cells."""
    row = {
        "uscc": code(n),
        "name": f"常州市测试{n}号机械有限公司",
        "district": "武进区",
        "sector": "机械",
        "key_field": "",
        "above_size": "是",
        "principal": "王建国",
        "phone": "13812345678",
        "email": f"wang{n}@163.example.com",
        "prior_level": "",
        "prior_certificate_no": "",
        "prior_certificate_date": "",
    }
    row.update(cells)
    return row


def write_csv(path: Path, rows: list[dict[str, str]], *, encoding: str = "utf-8", header: list[str] = ZH) -> Path:
    with path.open("w", encoding=encoding, newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        for row in rows:
            writer.writerow([row[c.field] for c in COLUMNS])
    return path


def write_xlsx(path: Path, rows: list[list[Any]], *, header: list[str] = ZH) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def cells(row: dict[str, str]) -> list[Any]:
    return [row[c.field] for c in COLUMNS]


def clock(day: int = 4) -> FixedClock:
    return FixedClock.on(dt.date(2022, 1, day))


def count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(enterprises)).scalar_one())


def stored(engine: sa.Engine, credit_code: str) -> sa.RowMapping:
    with engine.connect() as conn:
        return conn.execute(sa.select(enterprises).where(enterprises.c.uscc == credit_code)).mappings().one()


def rejected(path: Path, campaign: Campaign) -> list[str]:
    with pytest.raises(ImportRejected) as caught:
        read_directory(path, campaign)
    return [str(p) for p in caught.value.problems]


# --- formats --------------------------------------------------------------------------------------

SAMPLE = [
    firm(1, sector="化工", district="溧阳市"),
    firm(2, district="320411", above_size="否", email=""),  # district by code
    firm(3, sector="医药", district="经开区", phone=""),  # district by alias
]


def _gb18030(tmp: Path) -> Path:
    path = write_csv(tmp / "名录.csv", SAMPLE, encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")  # really not UTF-8, so the fallback is what reads it
    return path


def _english(tmp: Path) -> Path:
    english = [
        {**r, "sector": {"化工": "chemical", "医药": "Pharmaceutical"}.get(r["sector"], "machinery")} for r in SAMPLE
    ]
    english[0]["district"] = "Liyang"
    # other column order, spaces around headers, and a column the importer does not know
    order = ["email", "principal", "sector", "uscc", "name", "above_size", "district", "key_field", "phone"]
    with (tmp / "directory.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([f"  {f} " for f in order] + ["address"])
        for row in english:
            writer.writerow([row[f] for f in order] + ["常州市某路1号"])
    return tmp / "directory.csv"


FORMATS = {
    "utf8": lambda tmp: write_csv(tmp / "名录.csv", SAMPLE),
    "utf8-bom": lambda tmp: write_csv(tmp / "名录.csv", SAMPLE, encoding="utf-8-sig"),
    "gb18030": _gb18030,
    "xlsx": lambda tmp: write_xlsx(tmp / "名录.xlsx", [cells(r) for r in SAMPLE]),
    "english-headers": _english,
}


@pytest.mark.parametrize("kind", FORMATS)
def test_each_file_format_imports(kind: str, tmp_path: Path, engine: sa.Engine, campaign: Campaign) -> None:
    path = FORMATS[kind](tmp_path)

    report = import_directory(engine, path, context=Context(campaign, clock()))

    assert report == directory.ImportReport(rows=3, inserted=3, updated=0, unchanged=0)
    chemical, machinery, pharma = (stored(engine, code(n)) for n in (1, 2, 3))
    assert (chemical["district_code"], chemical["sector"], chemical["key_field"]) == ("320481", "chemical", True)
    assert (machinery["district_code"], machinery["sector"], machinery["key_field"]) == (
        "320411",
        "machinery",
        False,
    )
    assert (pharma["district_code"], pharma["sector"], pharma["key_field"]) == ("320491", "pharmaceutical", True)
    assert chemical["name"] == "常州市测试1号机械有限公司" and chemical["principal"] == "王建国"
    assert (chemical["above_size"], machinery["above_size"]) == (True, False)
    assert (chemical["email"], machinery["email"], pharma["phone"]) == ("wang1@163.example.com", None, "")
    assert (chemical["state"], chemical["version"], chemical["event_count"]) == ("mobilized", 1, 0)
    assert chemical["state_since"] == chemical["created_at"] == chemical["updated_at"] == clock().now()


def test_xlsx_cells_typed_as_numbers_and_booleans(tmp_path: Path, campaign: Campaign) -> None:
    row = cells(firm(1))
    row[5] = True  # 规模以上 as an Excel boolean
    row[7] = 13812345678  # 联系电话 as a number
    other = cells(firm(2))
    other[5] = 0
    path = write_xlsx(tmp_path / "名录.xlsx", [row, [None] * 9, other])

    first, second = read_directory(path, campaign)

    assert (first.above_size, first.phone, second.above_size) == (True, "13812345678", False)
    assert second.line == 4  # the blank row 3 is skipped but still counted


def test_credit_codes_are_read_in_capitals_without_surrounding_spaces(tmp_path: Path, campaign: Campaign) -> None:
    (row,) = read_directory(write_csv(tmp_path / "名录.csv", [firm(1, uscc=f"  {code(1).lower()} ")]), campaign)

    assert row.uscc == code(1)


def test_credit_code_turned_into_a_number_by_excel(tmp_path: Path, campaign: Campaign) -> None:
    row = cells(firm(1))
    row[0] = 913204121234567890
    path = write_xlsx(tmp_path / "名录.xlsx", [row])

    assert rejected(path, campaign) == [
        "line 2, column 统一社会信用代码: 统一社会信用代码“913204121234567936”被 Excel 存成了数字，"
        "请把该列设为文本格式后重新填写 / the credit code 913204121234567936 was stored as a number by "
        "Excel: format the column as text and enter the codes again"
    ]


def test_a_valid_code_that_reads_like_e_notation_is_a_code(tmp_path: Path, campaign: Campaign) -> None:
    # "9132049163E5625156" looks like Excel's 9.132049163E+5625156 but carries a correct check character
    (row,) = read_directory(write_csv(tmp_path / "名录.csv", [firm(1, uscc="9132049163E5625156")]), campaign)
    assert row.uscc == "9132049163E5625156"
    mangled = write_csv(tmp_path / "坏.csv", [firm(1, uscc="9.13204E+17")])
    assert "stored as a number by Excel" in rejected(mangled, campaign)[0]


# --- mistakes, each with the message a clerk reads ----------------------------------------------

MISTAKES = {
    "wrong check character": (
        {"uscc": BAD_CHECK},
        "line 3, column 统一社会信用代码: 统一社会信用代码校验位错误：应为“R”，实际为“1” / "
        "wrong check character: expected R, found 1",
    ),
    "short code": (
        {"uscc": " 91320412ma1 "},
        "line 3, column 统一社会信用代码: 统一社会信用代码应为18位，实际11位 / "
        "the credit code must have 18 characters, not 11",
    ),
    "duplicate code": (
        {"uscc": code(1)},
        f"line 3, column 统一社会信用代码: 统一社会信用代码“{code(1)}”与第2行重复 / "
        f"duplicate credit code {code(1)}: first on line 2",
    ),
    "unknown district": (
        {"district": "北京区"},
        "line 3, column 所属辖区: 所属辖区“北京区”不存在 / unknown district: 北京区",
    ),
    "unknown sector": (
        {"sector": "餐饮"},
        "line 3, column 行业: 行业“餐饮”不存在 / unknown sector: 餐饮",
    ),
    "empty required cell": (
        {"principal": "  "},
        "line 3, column 主要负责人: 主要负责人不能为空 / principal is required",
    ),
    "bad yes/no": (
        {"above_size": "可能"},
        "line 3, column 规模以上: 规模以上应填“是”或“否”，实际为“可能” / above_size must be yes or no, not: 可能",
    ),
    "bad email": (
        {"email": "wang@@163.example.com"},
        "line 3, column 电子邮箱: 电子邮箱“wang@@163.example.com”格式不正确 / "
        "invalid email address: wang@@163.example.com",
    ),
    "name too long": (
        {"name": "常" * 201},
        "line 3, column 企业名称: 企业名称超过200个字符（实际201个）/ name is longer than 200 characters (201)",
    ),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_a_mistake_is_named_exactly_and_nothing_is_written(
    mistake: str, tmp_path: Path, engine: sa.Engine, campaign: Campaign
) -> None:
    import_directory(engine, write_csv(tmp_path / "first.csv", [firm(9)]), context=Context(campaign, clock()))
    cells_changed, message = MISTAKES[mistake]
    path = write_csv(tmp_path / "名录.csv", [firm(1), firm(2, **cells_changed), firm(3)])

    with pytest.raises(ImportRejected) as caught:
        import_directory(engine, path, context=Context(campaign, clock(5)))

    assert [str(p) for p in caught.value.problems] == [message]
    assert str(caught.value) == message
    assert count(engine) == 1


def test_every_problem_of_a_file_is_listed_in_file_order(tmp_path: Path, campaign: Campaign) -> None:
    rows = [
        firm(1),
        firm(2, district="北京区", above_size="maybe"),
        firm(3),
        firm(4, uscc=BAD_CHECK, email="not-an-email"),
        firm(5, uscc=code(3), name=""),
    ]
    path = write_csv(tmp_path / "名录.csv", rows)

    with pytest.raises(ImportRejected) as caught:
        read_directory(path, campaign)

    assert caught.value.problems == [
        Problem(3, "所属辖区", "所属辖区“北京区”不存在 / unknown district: 北京区"),
        Problem(3, "规模以上", "规模以上应填“是”或“否”，实际为“maybe” / above_size must be yes or no, not: maybe"),
        Problem(5, "统一社会信用代码", uscc.problem(BAD_CHECK) or ""),
        Problem(5, "电子邮箱", "电子邮箱“not-an-email”格式不正确 / invalid email address: not-an-email"),
        Problem(6, "企业名称", "企业名称不能为空 / name is required"),
        Problem(
            6,
            "统一社会信用代码",
            f"统一社会信用代码“{code(3)}”与第4行重复 / duplicate credit code {code(3)}: first on line 4",
        ),
    ]
    assert str(caught.value).splitlines() == [str(p) for p in caught.value.problems]


def test_lines_count_blank_lines_and_columns_use_the_files_own_headers(tmp_path: Path, campaign: Campaign) -> None:
    path = tmp_path / "directory.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(EN)
        writer.writerow(cells(firm(1)))
        writer.writerow([])
        writer.writerow([""] * 9)
        writer.writerow(cells(firm(2, district="Beijing")))

    assert rejected(path, campaign) == ["line 5, column district: 所属辖区“Beijing”不存在 / unknown district: Beijing"]


def test_missing_column_is_named_on_line_one(tmp_path: Path, campaign: Campaign) -> None:
    header = [h for h in ZH if h not in ("企业名称", "规模以上", "联系电话")]
    path = tmp_path / "名录.csv"
    path.write_text(",".join(header) + "\n", encoding="utf-8")

    assert rejected(path, campaign) == [
        "line 1, column 企业名称: 缺少必填列“企业名称” / missing required column: name",
        "line 1, column 规模以上: 缺少必填列“规模以上” / missing required column: above_size",
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "名录.csv",
            b"\xff\xfe\x00\xd8\xff",
            "line 1: 无法识别文件编码，请另存为 UTF-8 或 GB18030 编码的 CSV，或 XLSX / "
            "file encoding not recognised: save it as CSV in UTF-8 or GB18030, or as XLSX",
        ),
        (
            "名录.xlsx",
            "统一社会信用代码,企业名称\n".encode(),
            "line 1: 文件名为 .xlsx，但内容不是 Excel 工作簿 / the file is named .xlsx but is not an Excel workbook",
        ),
        ("名录.csv", b"\n\n", "line 1: 文件为空，没有表头 / the file is empty: no header row"),
    ],
)
def test_unreadable_files_are_refused_with_one_clear_problem(
    name: str, content: bytes, message: str, tmp_path: Path, campaign: Campaign
) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    assert rejected(path, campaign) == [message]


# --- upsert ---------------------------------------------------------------------------------------


def test_importing_the_same_file_again_changes_nothing(tmp_path: Path, engine: sa.Engine, campaign: Campaign) -> None:
    path = write_csv(tmp_path / "名录.csv", [firm(n) for n in range(1, 6)])
    import_directory(engine, path, context=Context(campaign, clock(4)))

    report = import_directory(engine, path, context=Context(campaign, clock(20)))

    assert report == directory.ImportReport(rows=5, inserted=0, updated=0, unchanged=5)
    assert count(engine) == 5
    assert stored(engine, code(3))["updated_at"] == clock(4).now()


def test_a_changed_row_updates_that_firm_and_leaves_its_workflow_alone(
    tmp_path: Path, engine: sa.Engine, campaign: Campaign
) -> None:
    import_directory(engine, write_csv(tmp_path / "v1.csv", [firm(1), firm(2)]), context=Context(campaign, clock(4)))
    with engine.begin() as conn:  # the engine has since moved firm 2 on
        conn.execute(
            sa.update(enterprises)
            .where(enterprises.c.uscc == code(2))
            .values(state="self_assessing", version=3, event_count=2, chain_head="ab" * 32)
        )
    changed = firm(2, name="常州市新名称机械有限公司", phone="0519-86661234", sector="化工", above_size="否")
    path = write_csv(tmp_path / "v2.csv", [firm(1), changed, firm(3)])

    report = import_directory(engine, path, context=Context(campaign, clock(20)))

    assert report == directory.ImportReport(rows=3, inserted=1, updated=1, unchanged=1)
    moved = stored(engine, code(2))
    assert (moved["name"], moved["phone"], moved["sector"]) == ("常州市新名称机械有限公司", "0519-86661234", "chemical")
    assert (moved["key_field"], moved["above_size"]) == (True, False)
    assert (moved["state"], moved["version"], moved["event_count"], moved["chain_head"]) == (
        "self_assessing",
        3,
        2,
        "ab" * 32,
    )
    assert (moved["created_at"], moved["updated_at"]) == (clock(4).now(), clock(20).now())
    assert stored(engine, code(1))["updated_at"] == clock(4).now()


@pytest.mark.parametrize(
    ("sector", "cell", "key_field"),
    [
        ("化工", "", True),
        ("机械", "", False),
        ("机械", "是", True),
        ("化工", "否", False),
        ("纺织", "Y", True),
        ("冶金", "n", False),
        ("电子", "1", True),
        ("医药", "FALSE", False),
        ("轻工", "Yes", True),
    ],
)
def test_blank_key_field_takes_the_sector_default_and_a_filled_one_wins(
    sector: str, cell: str, key_field: bool, tmp_path: Path, campaign: Campaign
) -> None:
    (row,) = read_directory(write_csv(tmp_path / "名录.csv", [firm(1, sector=sector, key_field=cell)]), campaign)

    assert row.key_field is key_field


def test_large_files_go_in_batches_with_progress(
    tmp_path: Path, engine: sa.Engine, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(directory, "CHUNK", 2)
    import_directory(engine, write_csv(tmp_path / "v1.csv", [firm(2)]), context=Context(campaign, clock()))
    seen: list[tuple[int, int]] = []

    path = write_csv(tmp_path / "v2.csv", [firm(n, principal="李强") for n in range(1, 6)])
    report = import_directory(
        engine, path, context=Context(campaign, clock(5)), progress=lambda done, total: seen.append((done, total))
    )

    assert seen == [(2, 5), (4, 5), (5, 5)]
    assert report == directory.ImportReport(rows=5, inserted=4, updated=1, unchanged=0)
    assert count(engine) == 5


def test_a_column_given_twice_is_refused(tmp_path: Path, campaign: Campaign) -> None:
    path = tmp_path / "名录.csv"
    path.write_text(",".join([*ZH, "name"]) + "\n", encoding="utf-8")

    assert rejected(path, campaign) == [
        "line 1, column name: 列“name”与“企业名称”重复 / column name repeats column 企业名称"
    ]
