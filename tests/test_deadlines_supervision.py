"""Graded supervision from the firm's own duties only (把企业创建情况作为分级分类监管的重要依据): the grade of
firms of every kind and state, before and after their own milestone, with officials' time limits overdue
around them; the penalty scale (处罚尺度) and frequencies labelled as local settings in the plan and the page.

Expected grades are the table below, written from the plan: 2022年底前 key-field firms, 2023年底前 non-key
above-size firms must have started (开展创建工作); 对未开展达标创建的企业加大检查频率; 将达标无望的重点监管领域
企业名单按流程报送属地政府."""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa
from click.testing import CliRunner

from api.cli import main
from deadlines.supervision import firm_grade, grade_counts, inspection_plan
from tests.api_helpers import HOME, World
from tests.deadline_helpers import sweep_on
from tests.factories import make_firm
from tests.test_pages_access import Browser
from workflow.campaign import Campaign
from workflow.tables import APPLICATIONS, CERTIFICATIONS, ENTERPRISES, ESCALATIONS, REFERRALS

D = dt.date
LONG_AGO = dt.datetime(2022, 7, 1, 4, tzinfo=dt.UTC)  # every official's time limit long overdue by the dates below
KINDS = {"key": (True, True), "above": (False, True), "small": (False, False)}

# (kind, state) → grade on 2022-12-31, 2023-01-01, 2023-12-31, 2024-01-01
GRADES: dict[tuple[str, str], tuple[str, str, str, str]] = {
    ("key", "mobilized"): ("not_started", "non_participating", "non_participating", "non_participating"),
    ("above", "mobilized"): ("not_started", "not_started", "not_started", "non_participating"),
    ("small", "mobilized"): ("not_started",) * 4,
    **{(k, "self_assessing"): ("on_track",) * 4 for k in KINDS},
    # waiting on a bureau (verification, audit, review, certification overdue): the firm's grade stays
    **{(k, s): ("on_track",) * 4 for k in KINDS for s in ("applied", "verified", "reviewed")},
    **{(k, "certified"): ("compliant",) * 4 for k in KINDS},
    **{(k, "benchmark"): ("benchmark",) * 4 for k in KINDS},
    ("key", "referred"): ("referred",) * 4,  # a referral the city confirmed
    ("key", "proposed"): ("not_started", "non_participating", "non_participating", "non_participating"),
}
DAYS = (D(2022, 12, 31), D(2023, 1, 1), D(2023, 12, 31), D(2024, 1, 1))


def firm_in(engine: sa.Engine, kind: str, state: str) -> int:
    key_field, above_size = KINDS[kind]
    firm_id = make_firm(engine, key_field=key_field, above_size=above_size, name=f"常州{kind}{state}有限公司")
    row_state = {"benchmark": "certified", "referred": "mobilized", "proposed": "mobilized"}.get(state, state)
    with engine.begin() as conn:
        conn.execute(
            sa.update(ENTERPRISES).where(ENTERPRISES.c.id == firm_id).values(state=row_state, notified_at=LONG_AGO)
        )
        if row_state in ("applied", "verified", "reviewed", "certified"):
            app_id = conn.execute(
                sa.insert(APPLICATIONS).values(
                    enterprise_id=firm_id,
                    status=row_state,
                    materials=[],
                    submitted_at=LONG_AGO,
                    verified_at=None if row_state == "applied" else LONG_AGO,
                    reviewed_at=LONG_AGO if row_state in ("reviewed", "certified") else None,
                )
            ).inserted_primary_key[0]
            if row_state == "certified":
                level = "benchmark" if state == "benchmark" else "compliant"
                conn.execute(
                    sa.insert(CERTIFICATIONS).values(
                        enterprise_id=firm_id,
                        application_id=app_id,
                        level=level,
                        score=80 if level == "benchmark" else 65,
                        certified_at=LONG_AGO,
                    )
                )
        if state in ("referred", "proposed"):
            conn.execute(
                sa.insert(REFERRALS).values(
                    dedupe_key=f"test:{firm_id}",
                    enterprise_id=firm_id,
                    district_code=HOME,
                    grounds="non_participating",
                    status="confirmed" if state == "referred" else "proposed",
                    detail={},
                    proposed_at=LONG_AGO,
                    proposed_by="test",
                )
            )
    return firm_id


def test_grades_come_from_the_firms_own_duties(engine: sa.Engine, campaign: Campaign) -> None:
    firms = {firm_in(engine, kind, state): (kind, state) for kind, state in GRADES}
    sweep_on(engine, campaign, D(2022, 12, 31))  # officials' time limits overdue: open escalations around
    with engine.connect() as conn:
        officials = conn.execute(
            sa.select(sa.func.count()).where(ESCALATIONS.c.rule.like("sla_%"), ESCALATIONS.c.status == "open")
        ).scalar_one()
        assert officials >= 9  # verification, audit and certification of every kind wait on a bureau
        wrong = []
        for day_index, day in enumerate(DAYS):
            for firm_id, key in firms.items():
                got = firm_grade(conn, campaign=campaign, enterprise_id=firm_id, as_of=day)
                assert got is not None
                if got.grade != GRADES[key][day_index]:
                    wrong.append(f"{day} {key}: {got.grade}, expected {GRADES[key][day_index]}")
        counts = grade_counts(conn, campaign=campaign, as_of=D(2023, 1, 1), district=HOME)
    assert not wrong, "\n".join(wrong)
    assert counts["non_participating"] == 2 and counts["referred"] == 1


def test_the_plan_shows_the_grade_and_the_penalty_band_as_local_settings(engine: sa.Engine, campaign: Campaign) -> None:
    idle = firm_in(engine, "key", "mobilized")
    done = firm_in(engine, "key", "certified")
    supervision = campaign.supervision
    assert supervision.source == "local"  # the plan gives no figures: 检查频次和处罚尺度 are local settings
    # 要对未开展达标创建的企业加大检查频率: a late non-starter is inspected more than anyone started or done
    per_year = supervision.inspections_per_year
    assert per_year["non_participating"] > max(per_year["on_track"], per_year["compliant"], per_year["benchmark"])
    with engine.connect() as conn:
        lines = {
            line.enterprise_id: line
            for m in range(1, 13)
            for line in inspection_plan(conn, campaign=campaign, district=HOME, month=D(2023, m, 1))
        }
    assert lines[idle].grade == "non_participating" and lines[done].grade == "compliant"
    assert lines[idle].penalty_band == supervision.penalty_scale["non_participating"].band
    cells = lines[idle].cells(1, campaign)
    assert cells[-1] == "本地设置" and cells[-2].startswith(supervision.penalty_scale["non_participating"].band)
    url = str(engine.url.render_as_string(hide_password=False))
    listed = CliRunner().invoke(
        main,
        ["--database-url", url, "inspections", "plan", "--district", HOME, "--month", "2023-01", "--json"],
    )
    firms = {f["enterprise_id"]: f for f in json.loads(listed.output)["firms"]}
    assert firms[idle]["local_setting"] is True and firms[idle]["penalty_band"] == "从重"


def test_the_firm_page_shows_the_grade_to_officials(world: World) -> None:
    firm_id = world.firms["home_key"]
    page = Browser(world, "wujin").get(f"/firms/{firm_id}")
    assert page.status_code == 200
    assert 'id="grade"' in page.text and "处罚尺度" in page.text and "本地设置" in page.text
    assert "尚未开展创建" in page.text  # 2022-07-01: before the key-field milestone, not yet late
    assert 'id="grade"' not in Browser(world, "firm").get(f"/firms/{firm_id}").text
