"""The campaign file: the shipped one loads; a bad one is refused naming the exact key."""

from __future__ import annotations

import copy
import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

import pytest

from workflow.campaign import Campaign, CampaignInvalid, load_campaign, parse_campaign
from workflow.settings import DEFAULT_CAMPAIGN


def raw() -> dict[str, Any]:
    return tomllib.loads(DEFAULT_CAMPAIGN.read_text(encoding="utf-8"))


def test_the_changzhou_campaign_holds_the_plans_rules(campaign: Campaign) -> None:
    assert [d.name for d in campaign.districts] == [
        "溧阳市",
        "金坛区",
        "武进区",
        "新北区",
        "天宁区",
        "钟楼区",
        "常州经开区",
    ]
    assert campaign.phases.mobilization.end == dt.date(2022, 2, 28)
    assert (campaign.phases.creation.start, campaign.phases.creation.end) == (
        dt.date(2022, 3, 1),
        dt.date(2023, 10, 31),
    )
    assert (campaign.phases.evaluation.start, campaign.phases.evaluation.end) == (
        dt.date(2022, 6, 1),
        dt.date(2023, 12, 31),
    )
    assert {m.applies_to: m.date for m in campaign.milestones} == {
        "key_field": dt.date(2022, 12, 31),
        "non_key_above_size": dt.date(2023, 12, 31),
    }
    t = campaign.thresholds
    assert (t.compliant, t.benchmark, t.level1_eligible, t.level2_eligible) == (60, 75, 90, 75)
    assert campaign.key_sectors == [
        "chemical",
        "pharmaceutical",
        "hazardous_chemicals",
        "non_coal_mine",
        "metallurgy",
    ]
    assert len(campaign.outline) == 8  # the eight core elements of GB/T 33000-2016
    assert sum(i.points for i in campaign.outline_items) == 100


def test_districts_and_sectors_are_found_by_name_code_or_english(campaign: Campaign) -> None:
    assert campaign.district("武进区") is campaign.district("320412") is campaign.district("wujin")
    assert campaign.district("经开区") is campaign.district("常州经开区")
    assert campaign.district("南京市") is None
    assert campaign.sector("危险化学品") is campaign.sector("hazardous_chemicals")
    assert campaign.sector("渔业") is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["phases"]["creation"].update(end=dt.date(2021, 1, 1)),
            "phases.creation: Value error, end is before start",
        ),
        (
            lambda d: d["thresholds"].update(compliant=120),
            "thresholds.compliant: Input should be less than or equal to 100",
        ),
        (lambda d: d["districts"][2].update(code="32041"), "districts[2].code: String should match pattern"),
        (
            lambda d: d["districts"][0].update(bureau_email="not-an-address"),
            "districts[0].bureau_email: value is not a valid email",
        ),
        (lambda d: d["outline"][0]["items"][0].update(points=30), "outline: points add up to 127, not 100"),
        (lambda d: d["sectors"][1].update(code="chemical"), "sectors: duplicate code chemical"),
        (lambda d: d["campaign"].update(colour="red"), "campaign.colour: Extra inputs are not permitted"),
        (lambda d: d.pop("thresholds"), "thresholds: Field required"),
    ],
)
def test_a_bad_campaign_file_is_refused_with_the_exact_key(change: Any, message: str) -> None:
    data = copy.deepcopy(raw())
    change(data)
    with pytest.raises(CampaignInvalid) as refused:
        parse_campaign(data, source="bad.toml")
    assert message in str(refused.value)


def test_an_unreadable_campaign_file_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "campaign.toml"
    broken.write_text("[campaign\nid = 1", encoding="utf-8")
    with pytest.raises(CampaignInvalid, match="not valid TOML"):
        load_campaign(broken)
    with pytest.raises(CampaignInvalid, match="campaign file not found"):
        load_campaign(tmp_path / "missing.toml")
