"""Daily digests: one per district bureau with something to report and one for the city, grouping the
escalations new since the previous digest, counting the work waiting, linking to the dashboard."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from api.cli import main
from notifications.digest import write_digests
from notifications.dispatch import JOURNAL, dispatch_once
from tests.factories import Driver, make_firm
from tests.smtp_helpers import running_smtp
from workflow.campaign import Campaign
from workflow.clock import SHANGHAI, FixedClock
from workflow.context import Context
from workflow.settings import Settings
from workflow.tables import ESCALATIONS, OUTBOX

DAY = dt.date(2023, 1, 3)
WUJIN, ZHONGLOU = "320412", "320404"
PUBLIC_URL = "https://dabiao.changzhou.example.com"
_subjects = itertools.count(1000)


@pytest.fixture(autouse=True)
def _fresh_journal() -> None:
    JOURNAL.clear()


def local(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), SHANGHAI)


def escalate(
    engine: sa.Engine,
    firm_id: int,
    *,
    rule: str,
    steps: tuple[str, ...],
    at: dt.datetime,
    district: str = WUJIN,
    days_overdue: int = 3,
    deadline: dt.date = dt.date(2022, 12, 31),
) -> None:
    """One overdue subject that climbed `steps` of the ladder at `at`, as the sweep writes it."""
    subject = next(_subjects)
    with engine.begin() as conn:
        for step in steps:
            conn.execute(
                sa.insert(ESCALATIONS).values(
                    dedupe_key=f"{rule}:enterprise:{subject}:{step}",
                    rule=rule,
                    subject_kind="enterprise",
                    subject_id=subject,
                    enterprise_id=firm_id,
                    district_code=district,
                    step=step,
                    deadline=deadline,
                    days_overdue=days_overdue,
                    status="open",
                    detail={},
                    created_at=at,
                )
            )


def digests(engine: sa.Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(OUTBOX).where(OUTBOX.c.kind.in_(("district_digest", "city_digest"))))
        return {row.dedupe_key: row._asdict() for row in rows}


def settings() -> Settings:
    return Settings(public_url=PUBLIC_URL)


def a_day_in_wujin(engine: sa.Engine, campaign: Campaign) -> dict[str, int]:
    firms = {
        name: make_firm(engine, district=WUJIN, key_field=key, name=name)
        for name, key in (("常州甲化工有限公司", True), ("常州乙化工有限公司", True), ("常州丙机械有限公司", False))
    }
    night = local(DAY, 2)
    escalate(engine, firms["常州甲化工有限公司"], rule="key_field_started", steps=("firm", "district"), at=night)
    escalate(engine, firms["常州乙化工有限公司"], rule="key_field_started", steps=("firm", "district"), at=night)
    escalate(
        engine,
        firms["常州丙机械有限公司"],
        rule="hazard_deadline",
        steps=("firm", "district", "city"),
        at=night,
        days_overdue=21,
        deadline=dt.date(2022, 12, 13),
    )
    applicant = make_firm(engine, district=WUJIN, name="常州丁机械有限公司")
    Driver(engine, campaign, applicant).to_applied()  # waits for the district's verification
    return firms


def test_one_digest_per_district_with_news_and_one_for_the_city(engine: sa.Engine, campaign: Campaign) -> None:
    a_day_in_wujin(engine, campaign)
    old = make_firm(engine, district=ZHONGLOU, name="常州钟楼老厂")
    escalate(
        engine, old, rule="creation_end", steps=("firm",), at=local(DAY - dt.timedelta(days=30), 2), district=ZHONGLOU
    )
    morning = FixedClock(local(DAY, 8))

    written = write_digests(engine, context=Context(campaign, morning, settings()))

    rows = digests(engine)
    assert written == 3
    assert set(rows) == {
        "digest:district:320412:2023-01-03",
        "digest:district:320404:2023-01-03",
        "digest:city:2023-01-03",
    }
    wujin = rows["digest:district:320412:2023-01-03"]
    assert (wujin["audience"], wujin["district_code"], wujin["to_address"]) == ("district_bureau", WUJIN, None)
    context = wujin["context"]
    assert context["dashboard_url"] == f"{PUBLIC_URL}/dashboard/district/320412"
    assert context["new_total"] == 3  # subjects, not ladder rows
    [started, hazard] = context["groups"]
    assert (started["rule"], started["count"], started["more"]) == ("key_field_started", 2, 0)
    assert sorted(f["name"] for f in started["firms"]) == ["常州乙化工有限公司", "常州甲化工有限公司"]
    assert {f["step"] for f in started["firms"]} == {"district"}  # the highest step reached
    assert hazard["firms"] == [
        {
            "name": "常州丙机械有限公司",
            "uscc": hazard["firms"][0]["uscc"],
            "step": "city",
            "deadline": "2022-12-13",
            "days_overdue": 21,
        }
    ]
    assert context["due"] == {"to_verify": 1, "to_audit": 0, "to_review": 0, "open_escalations": 3}

    zhonglou = rows["digest:district:320404:2023-01-03"]["context"]
    assert (zhonglou["new_total"], zhonglou["groups"], zhonglou["due"]["open_escalations"]) == (0, [], 1)

    city = rows["digest:city:2023-01-03"]
    assert (city["audience"], city["district_code"]) == ("city_bureau", None)
    lines = {d["code"]: d for d in city["context"]["districts"]}
    assert (lines[WUJIN]["new"], lines[WUJIN]["open_escalations"], lines[WUJIN]["to_verify"]) == (3, 3, 1)
    assert (lines[ZHONGLOU]["new"], lines[ZHONGLOU]["open_escalations"]) == (0, 1)
    assert city["context"]["new_total"] == 3

    later = FixedClock(local(DAY, 20))
    assert write_digests(engine, context=Context(campaign, later, settings())) == 0  # once a day


def test_a_quiet_day_writes_nothing(engine: sa.Engine, campaign: Campaign) -> None:
    make_firm(engine)
    assert write_digests(engine, context=Context(campaign, FixedClock(local(DAY, 8)), settings())) == 0
    assert digests(engine) == {}


def test_the_next_digest_reports_what_came_after_the_last_one(engine: sa.Engine, campaign: Campaign) -> None:
    firms = a_day_in_wujin(engine, campaign)
    write_digests(engine, context=Context(campaign, FixedClock(local(DAY, 8)), settings()))
    afternoon = make_firm(engine, district=WUJIN, name="常州午后化工有限公司")
    escalate(engine, afternoon, rule="sla_verification", steps=("district",), at=local(DAY, 15))
    escalate(
        engine,
        firms["常州甲化工有限公司"],
        rule="creation_end",
        steps=("firm",),
        at=local(DAY + dt.timedelta(days=1), 2),
    )

    next_day = DAY + dt.timedelta(days=1)
    assert write_digests(engine, context=Context(campaign, FixedClock(local(next_day, 8)), settings())) == 2

    context = digests(engine)[f"digest:district:320412:{next_day.isoformat()}"]["context"]
    assert context["new_total"] == 2
    assert {(g["rule"], f["name"]) for g in context["groups"] for f in g["firms"]} == {
        ("sla_verification", "常州午后化工有限公司"),
        ("creation_end", "常州甲化工有限公司"),
    }
    assert context["due"]["open_escalations"] == 5


def test_long_lists_are_cut_and_the_rest_counted(engine: sa.Engine, campaign: Campaign) -> None:
    for n in range(25):
        firm = make_firm(engine, district=WUJIN, key_field=True, name=f"常州第{n:02d}化工有限公司")
        escalate(engine, firm, rule="key_field_started", steps=("firm",), at=local(DAY, 2))
    write_digests(engine, context=Context(campaign, FixedClock(local(DAY, 8)), settings()))
    rows = digests(engine)
    [district_group] = rows["digest:district:320412:2023-01-03"]["context"]["groups"]
    [city_group] = rows["digest:city:2023-01-03"]["context"]["groups"]
    assert (district_group["count"], len(district_group["firms"]), district_group["more"]) == (25, 20, 5)
    assert (city_group["count"], len(city_group["firms"]), city_group["more"]) == (25, 10, 15)


def test_digests_arrive_at_the_bureau_and_the_city(engine: sa.Engine, campaign: Campaign) -> None:
    a_day_in_wujin(engine, campaign)
    morning = FixedClock(local(DAY, 8))
    with running_smtp() as smtp:
        mail_settings = smtp.settings(public_url=PUBLIC_URL)
        write_digests(engine, context=Context(campaign, morning, mail_settings))
        report = dispatch_once(engine, settings=mail_settings, clock=morning, campaign=campaign)

    assert report.sent == 4  # the two digests, and the applicant's own notice and receipt
    [bureau] = smtp.inbox.to("yjj@wujin.example.com")
    assert bureau.subject == "【达标创建】武进区每日汇总 2023年1月3日：新增逾期 3 项，待办 1 件"
    text = bureau.text().replace("\r\n", "\n")
    assert "■ 重点监管领域企业启动创建：2 项" in text
    assert "常州丙机械有限公司（" in text and "逾期 21 天，上报市应急管理局" in text
    assert "待核实的达标申请：1 件" in text
    assert f"工作台：{PUBLIC_URL}/dashboard/district/320412" in text
    assert f'href="{PUBLIC_URL}/dashboard/district/320412"' in bureau.html()
    [city] = smtp.inbox.to(campaign.campaign.city_bureau_email)
    assert "武进区：新增逾期 3 项，未办结逾期 3 项，待核实申请 1 件" in city.text()


def test_the_digest_command_writes_the_days_digests(engine: sa.Engine, db_url: str, campaign: Campaign) -> None:
    a_day_in_wujin(engine, campaign)
    result = CliRunner().invoke(main, ["--database-url", db_url, "digest", "--as-of", "2023-01-03"])
    assert result.exit_code == 0, result.output
    assert "wrote 2 digest(s)" in result.output
    assert set(digests(engine)) == {"digest:district:320412:2023-01-03", "digest:city:2023-01-03"}
