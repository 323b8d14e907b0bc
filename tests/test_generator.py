"""The synthetic directory: deterministic, valid, in the campaign's proportions, and importable."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from email_validator import validate_email

from workflow import uscc
from workflow.campaign import Campaign
from workflow.clock import FixedClock
from workflow.context import Context
from workflow.directory import ImportReport, import_directory, read_directory
from workflow.generator import iter_rows, write_directory
from workflow.models import Enterprise

enterprises: sa.Table = Enterprise.__table__  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def big(campaign: Campaign) -> list[dict[str, str]]:
    return list(iter_rows(20_000, 11, campaign))


def key_field(row: dict[str, str], campaign: Campaign) -> bool:
    """What the importer will make of the row's 重点监管 cell."""
    if row["key_field"]:
        return row["key_field"] == "是"
    sector = campaign.sector(row["sector"])
    assert sector is not None
    return sector.key_field


def test_same_seed_same_directory_other_seed_other_directory(tmp_path: Path, campaign: Campaign) -> None:
    assert list(iter_rows(300, 5, campaign)) == list(iter_rows(300, 5, campaign))
    assert list(iter_rows(300, 5, campaign)) != list(iter_rows(300, 6, campaign))
    write_directory(tmp_path / "a.csv", count=300, seed=5, campaign=campaign)
    write_directory(tmp_path / "b.csv", count=300, seed=5, campaign=campaign)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_credit_codes_are_valid_unique_and_carry_the_district(big: list[dict[str, str]], campaign: Campaign) -> None:
    codes = [row["uscc"] for row in big]

    assert [c for c in codes if uscc.problem(c) is not None] == []
    assert len(set(codes)) == len(codes)
    for row in big[:500]:
        district = campaign.district(row["district"])
        assert district is not None and row["uscc"][2:8] == district.code


def test_proportions_follow_the_campaign(big: list[dict[str, str]], campaign: Campaign) -> None:
    n = len(big)
    key_share = sum(key_field(r, campaign) for r in big) / n
    above_share = sum(r["above_size"] == "是" for r in big) / n
    districts = Counter(r["district"] for r in big)

    assert 0.07 <= key_share <= 0.13
    assert 1 / 20 <= above_share <= 1 / 8
    assert set(districts) == {d.name for d in campaign.districts}
    wujin = next(d for d in campaign.districts if d.name == "武进区")
    assert abs(districts["武进区"] / n - wujin.weight) < 0.02
    filled = sum(bool(r["key_field"]) for r in big) / n
    assert 0.05 < filled < 0.3  # mostly blank, so the sector default applies, but sometimes filled


def test_names_and_contacts_look_real(big: list[dict[str, str]]) -> None:
    names = [r["name"] for r in big]

    assert len(set(names)) / len(names) > 0.98
    assert all(re.fullmatch(r"(常州|江苏|溧阳)\w{3,}(有限公司|股份有限公司|有限责任公司)", name) for name in names)
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{2,3}", r["principal"]) for r in big)
    assert all(re.fullmatch(r"1[3-9]\d{9}", r["phone"]) for r in big)
    emails = [r["email"] for r in big if r["email"]]
    assert 0.05 < 1 - len(emails) / len(big) < 0.3
    for email in emails[:300]:
        assert validate_email(email, check_deliverability=False).normalized == email


def test_a_million_rows_stream(campaign: Campaign) -> None:
    rows = iter_rows(1_000_000, 1, campaign)

    assert set(next(rows)) == {
        "uscc",
        "name",
        "district",
        "sector",
        "key_field",
        "above_size",
        "principal",
        "phone",
        "email",
    }


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_generated_directory_imports_cleanly(
    suffix: str, tmp_path: Path, engine: sa.Engine, campaign: Campaign
) -> None:
    path = tmp_path / f"名录{suffix}"
    write_directory(path, count=400, seed=3, campaign=campaign)
    expected = list(iter_rows(400, 3, campaign))

    report = import_directory(engine, path, context=Context(campaign, FixedClock.on(dt.date(2022, 1, 4))))

    assert report == ImportReport(rows=400, inserted=400, updated=0, unchanged=0)
    with engine.connect() as conn:
        key_fields = conn.execute(sa.select(sa.func.count()).where(enterprises.c.key_field)).scalar_one()
        stored = {code: name for code, name in conn.execute(sa.select(enterprises.c.uscc, enterprises.c.name))}
    assert key_fields == sum(key_field(r, campaign) for r in expected)
    assert stored == {r["uscc"]: r["name"] for r in expected}
    assert [r.uscc for r in read_directory(path, campaign)] == [r["uscc"] for r in expected]
