"""The pages' forms do what the API does, through the same service functions, with the same messages: a firm
works through its page to an application, the district verifies it, a review team scores it, the city
decides referrals. Hostile names render as text; exports have Chinese headers and neutralised cells;
English comes from the catalog with dates and numbers formatted for it."""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any

import openpyxl
import sqlalchemy as sa

from tests.api_helpers import HOME, World
from tests.factories import make_firm, sheet_for
from tests.test_api_paths import PDF
from tests.test_pages_access import Browser, add_referrals
from workflow.tables import ENTERPRISES, HAZARDS, REFERRALS, REVIEW_ASSIGNMENTS, USERS

HOSTILE = '常州<武进>&"化工"有限公司'


def state_of(world: World, firm_id: int) -> str:
    with world.engine.connect() as conn:
        return str(conn.execute(sa.select(ENTERPRISES.c.state).where(ENTERPRISES.c.id == firm_id)).scalar_one())


def version_of(world: World, firm_id: int) -> int:
    with world.engine.connect() as conn:
        return int(conn.execute(sa.select(ENTERPRISES.c.version).where(ENTERPRISES.c.id == firm_id)).scalar_one())


def fire(browser: Browser, world: World, firm_id: int, trigger: str, **data: Any) -> Any:
    return browser.post(
        f"/firms/{firm_id}/transitions/{trigger}", data={"version": str(version_of(world, firm_id)), **data}
    )


def done(response: Any, where: str) -> None:
    assert response.status_code == 303, re.sub(r"\s+", " ", response.text)[:2000]
    assert response.headers["location"].startswith(where)


def scores(world: World, fraction: float = 0.9) -> dict[str, str]:
    return {f"score_{i.code}": str(i.points * fraction) for i in world.campaign.outline_items}


def upload(browser: Browser, firm_id: int, name: str, kind: str, body: bytes = PDF, **extra: str) -> Any:
    return browser.post(
        f"/firms/{firm_id}/evidence",
        data={"kind": kind, **extra},
        files={"file": (name, io.BytesIO(body), "application/pdf")},
    )


def test_a_firm_works_through_its_page_and_the_district_verifies(world: World) -> None:
    firm_id = world.firms["home_key"]
    firm, district = Browser(world, "firm"), Browser(world, "wujin")
    done(fire(district, world, firm_id, "notify"), f"/firms/{firm_id}")
    page = firm.get(f"/firms/{firm_id}")
    assert "启动创建、开始自评" in page.text and "请启动创建" in page.text
    done(fire(firm, world, firm_id, "start_self_assessment"), f"/firms/{firm_id}")

    page = firm.get(f"/firms/{firm_id}")
    assert page.status_code == 200 and "“启动创建、开始自评”已完成" in page.text  # the notice the form left
    assert "暂不能“提交达标申请”" in page.text and "尚未完成自评" in page.text  # why it cannot apply yet
    done(firm.post(f"/firms/{firm_id}/self-assessment", data=scores(world)), f"/firms/{firm_id}")
    done(
        firm.post(
            f"/firms/{firm_id}/hazards",
            data={"description": "危化品仓库通风不良", "severity": "major", "responsible_person": "王强"},
        ),
        f"/firms/{firm_id}",
    )
    page = firm.get(f"/firms/{firm_id}")
    assert "五落实不完整" in page.text and "危化品仓库通风不良" in page.text
    refused = fire(firm, world, firm_id, "report_hazards")
    assert refused.status_code == 422 and "“五落实”不完整" in refused.text  # the guard's reason
    with world.engine.connect() as conn:
        hazard_id = conn.execute(sa.select(HAZARDS.c.id).where(HAZARDS.c.enterprise_id == firm_id)).scalar_one()
    five = {"measures": "加装防爆排风机", "funds": "12000", "deadline": "2022-08-15", "emergency_plan": "泄漏应急预案"}
    done(firm.post(f"/hazards/{hazard_id}", data=five), f"/firms/{firm_id}")
    assert "五落实不完整" not in firm.get(f"/firms/{firm_id}").text
    done(fire(firm, world, firm_id, "report_hazards"), f"/firms/{firm_id}")
    assert state_of(world, firm_id) == "rectifying"
    done(upload(firm, firm_id, "整改照片.pdf", "rectification", hazard_id=str(hazard_id)), f"/firms/{firm_id}")
    page = firm.get(f"/firms/{firm_id}")
    proof = re.search(r'<option value="(\d+)">整改照片.pdf</option>', page.text)
    assert proof is not None
    done(firm.post(f"/hazards/{hazard_id}/rectify", data={"evidence": proof.group(1)}), f"/firms/{firm_id}")
    done(fire(firm, world, firm_id, "finish_rectification"), f"/firms/{firm_id}")
    done(upload(firm, firm_id, "自评报告.pdf", "self_assessment_report", PDF + b"report"), f"/firms/{firm_id}")
    done(upload(firm, firm_id, "申请表.pdf", "application_form", PDF + b"form"), f"/firms/{firm_id}")
    done(upload(firm, firm_id, "责任制文件.pdf", "supporting_material", PDF + b"duty"), f"/firms/{firm_id}")
    page = firm.get(f"/firms/{firm_id}")
    material = re.search(r'name="material" value="(\d+)" checked> 责任制文件.pdf', page.text)
    assert material is not None
    done(fire(firm, world, firm_id, "submit_application", material=material.group(1)), f"/firms/{firm_id}")
    assert state_of(world, firm_id) == "applied"

    page = district.get(f"/firms/{firm_id}")
    assert "核实申请" in page.text and "退回申请" in page.text and "自评报告.pdf" in page.text
    returned = fire(district, world, firm_id, "return_application", reason="")
    assert returned.status_code == 422 and "请填写理由" in returned.text  # the guard's own message
    stale = district.post(f"/firms/{firm_id}/transitions/verify", data={"version": "1"})
    assert stale.status_code == 409 and "该企业已被他人更新" in stale.text
    assert state_of(world, firm_id) == "applied"
    refused = fire(district, world, firm_id, "verify")
    assert refused.status_code == 422 and "请填写核实意见" in refused.text
    done(
        fire(district, world, firm_id, "verify", opinion="材料齐全", checklist="application_form"), f"/firms/{firm_id}"
    )
    assert state_of(world, firm_id) == "verified"
    page = district.get(f"/firms/{firm_id}")
    assert "已核实" in page.text and "核实申请" in page.text  # the state and the history's entry


def test_the_services_messages_come_back_in_the_chosen_language(world: World) -> None:
    firm_id = world.firms["home_key"]
    firm, district = Browser(world, "firm"), Browser(world, "wujin")
    done(fire(district, world, firm_id, "notify"), f"/firms/{firm_id}")
    done(fire(firm, world, firm_id, "start_self_assessment"), f"/firms/{firm_id}")
    partial = {k: v for k, v in list(scores(world).items())[:3]}
    refused = firm.post(f"/firms/{firm_id}/self-assessment", data=partial)
    assert refused.status_code == 422 and "以下条目尚未评分" in refused.text and "items not scored" not in refused.text
    firm.get("/firms?lang=en")  # the switch remembers the language in a cookie
    refused = firm.post(f"/firms/{firm_id}/self-assessment", data=partial)
    assert refused.status_code == 422 and "items not scored" in refused.text and "尚未评分" not in refused.text
    assert 'lang="en"' in refused.text
    too_high = firm.post(f"/firms/{firm_id}/self-assessment", data=scores(world, 2.0))
    assert "the score must be between 0 and" in too_high.text
    hazard = firm.post(f"/firms/{firm_id}/hazards", data={"description": "x", "funds": "lots"})
    assert hazard.status_code == 422 and "funds must be a number" in hazard.text


def test_dates_and_numbers_follow_the_language(world: World) -> None:
    city = Browser(world, "city")
    chinese = city.get("/dashboard")
    english = city.get("/dashboard?lang=en")
    assert "2022年7月1日" in chinese.text and "数据截至" in chinese.text
    assert "July 1, 2022" in english.text and "As of" in english.text and "数据截至" not in english.text
    assert "Firms by stage" in english.text and "Mobilized" in english.text
    assert "Liyang" in english.text and "溧阳市" in chinese.text
    assert "Campaign" not in chinese.text


def test_hostile_names_render_as_text(world: World) -> None:
    firm_id = world.firms["home_key"]
    assert HOSTILE in world.firm(firm_id, "city")["name"]
    firm, district, city = Browser(world, "firm"), Browser(world, "wujin"), Browser(world, "city")
    done(fire(district, world, firm_id, "notify"), f"/firms/{firm_id}")
    done(fire(firm, world, firm_id, "start_self_assessment"), f"/firms/{firm_id}")
    done(
        firm.post(f"/firms/{firm_id}/hazards", data={"description": "<script>alert('hazard')</script>"}),
        f"/firms/{firm_id}",
    )
    done(upload(firm, firm_id, '<img src=x onerror="alert(1)">.pdf', "supporting_material"), f"/firms/{firm_id}")
    escaped = "常州&lt;武进&gt;&amp;&#34;化工&#34;有限公司"
    pages = [
        firm.get(f"/firms/{firm_id}"),
        district.get(f"/firms/{firm_id}"),
        district.get("/firms"),
        district.get("/firms?q=武进"),
        city.get("/firms?key_field=true"),
    ]
    for page in pages:
        assert page.status_code == 200
        assert escaped in page.text
        assert HOSTILE not in page.text
    detail = pages[0].text
    assert "<script>alert" not in detail and "&lt;script&gt;alert(&#39;hazard&#39;)&lt;/script&gt;" in detail
    assert '<img src=x onerror="alert(1)">' not in detail and "&lt;img src=x onerror=" in detail
    # in the dashboard's worklist, and in the charts' data block where < > & are escaped for a script element
    with world.engine.begin() as conn:
        conn.execute(sa.update(ENTERPRISES).where(ENTERPRISES.c.id == firm_id).values(name="</script><b>x"))
    board = district.get(f"/districts/{HOME}")
    assert "</script><b>x" not in board.text


def test_lists_export_to_xlsx_with_chinese_headers_and_neutralised_cells(world: World) -> None:
    formula = make_firm(world.engine, district=HOME, name='=HYPERLINK("http://evil.example","点此")')
    minus = make_firm(world.engine, district=HOME, name="-1+2")
    city = Browser(world, "city")
    book = city.get(f"/firms.xlsx?district={HOME}")
    assert book.status_code == 200
    assert book.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    assert "attachment" in book.headers["content-disposition"]
    rows = list(openpyxl.load_workbook(io.BytesIO(book.content)).active.iter_rows(values_only=True))
    assert rows[1][:4] == ("序号", "统一社会信用代码", "企业名称", "所属辖区")  # under the title row
    names = {r[2] for r in rows[2:]}
    assert len(rows) - 2 == 4  # home_key, home_other and the two above
    assert '\'=HYPERLINK("http://evil.example","点此")' in names and "'-1+2" in names
    assert HOSTILE in names  # text, as it is
    assert formula and minus
    filtered = city.get(f"/firms.xlsx?district={HOME}&key_field=true")
    assert len(list(openpyxl.load_workbook(io.BytesIO(filtered.content)).active.iter_rows())) == 3
    add_referrals(world)
    referrals = city.get("/referrals.xlsx")
    sheet = list(openpyxl.load_workbook(io.BytesIO(referrals.content)).active.iter_rows(values_only=True))
    assert sheet[1][:4] == ("序号", "统一社会信用代码", "企业名称", "辖区") and len(sheet) == 4
    plan = Browser(world, "wujin").get(f"/districts/{HOME}/inspections.xlsx")
    assert plan.status_code == 200
    header = list(openpyxl.load_workbook(io.BytesIO(plan.content)).active.iter_rows(values_only=True))[1]
    assert header[:3] == ("序号", "统一社会信用代码", "企业名称")
    assert Browser(world, "firm").get("/firms.xlsx").status_code == 403


def team_of(world: World, application_id: int) -> list[str]:
    with world.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(USERS.c.username)
                .join(REVIEW_ASSIGNMENTS, REVIEW_ASSIGNMENTS.c.reviewer_id == USERS.c.id)
                .where(REVIEW_ASSIGNMENTS.c.application_id == application_id)
            ).scalars()
        )


def test_a_review_team_is_drawn_scores_and_its_result_is_recorded_through_the_pages(world: World) -> None:
    from tests.test_api_access import setup_records

    records = setup_records(world)  # home_other: audited by its district, no team yet
    application_id = records["applications"]["home_other"]
    firm_id = world.firms["home_other"]
    district = Browser(world, "wujin")
    page = district.get(f"/applications/{application_id}")
    assert "随机抽取评审组" in page.text
    chosen = district.post(f"/applications/{application_id}/team", data={"seed": "7"})
    assert chosen.status_code == 422 and "不接受指定的随机种子" in chosen.text and team_of(world, application_id) == []
    done(district.post(f"/applications/{application_id}/team", data={}), f"/applications/{application_id}")
    members = team_of(world, application_id)
    assert len(members) == world.campaign.review.team_size
    early = district.post(f"/applications/{application_id}/review-result", data={"version": "1"})
    assert early.status_code == 409 and "未评分" in early.text
    for n, username in enumerate(members):
        reviewer = Browser(world, username)
        assert f"/applications/{application_id}" in reviewer.get("/reviews").text
        assert "提交评分" in reviewer.get(f"/applications/{application_id}").text
        sheet = sheet_for(world.campaign, 70 + n, 80)
        form = {f"{part}_{code}": str(line[part]) for code, line in sheet.items() for part in ("online", "on_site")}
        if n == 0:  # text that is not a plain decimal is refused, naming the element
            typed = reviewer.post(f"/applications/{application_id}/scores", data=form | {"online_1": "1e1"})
            assert typed.status_code == 422 and "须为十进制数字" in typed.text
        done(
            reviewer.post(
                f"/applications/{application_id}/scores", data=form | {"findings_general": "应急预案未演练\n"}
            ),
            "/reviews",
        )
        assert f"/applications/{application_id}" not in reviewer.get("/reviews").text
    outsider = next(u for u in ("expert1", "expert2", "expert3", "expert4", "expert5") if u not in members)
    assert Browser(world, outsider).get(f"/applications/{application_id}").status_code == 404
    page = district.get(f"/applications/{application_id}")
    assert "录入评审结果" in page.text
    done(
        district.post(
            f"/applications/{application_id}/review-result", data={"version": str(version_of(world, firm_id))}
        ),
        f"/applications/{application_id}",
    )
    assert state_of(world, firm_id) == "reviewed"
    # the team's score: mean of 0.4 × online + 0.6 × on-site over (70, 80), (71, 80), (72, 80)
    assert world.firm(firm_id, "city")["application"]["review_score"] == round(0.4 * 71 + 0.6 * 80, 2)


def test_the_city_decides_referrals_and_the_local_government_acknowledges(world: World) -> None:
    world.clock.at = dt.datetime(2023, 1, 31, 10, tzinfo=world.clock.tz)  # past the key-field milestone
    ids = add_referrals(world, status="proposed")
    city, gov, district = Browser(world, "city"), Browser(world, "wujin_gov"), Browser(world, "wujin")
    listing = gov.get("/referrals")
    assert "常州&lt;武进&gt;" not in listing.text  # a proposal does not reach the local government
    assert "/acknowledge" not in listing.text  # nothing to acknowledge before the city confirms
    done(city.post(f"/referrals/{ids['home_key']}/confirm", data={"note": "核实无误"}), "/referrals")
    done(city.post(f"/referrals/{ids['away_key']}/confirm"), "/referrals")
    listing = gov.get("/referrals")
    assert HOSTILE not in listing.text and "常州&lt;武进&gt;" in listing.text  # its own area only
    assert district.post(f"/referrals/{ids['home_key']}/confirm").status_code == 403
    again = city.post(f"/referrals/{ids['home_key']}/confirm")
    assert again.status_code == 409 and "不能再决定" in again.text
    assert f"/referrals/{ids['home_key']}/acknowledge" in gov.get("/referrals").text
    done(gov.post(f"/referrals/{ids['home_key']}/acknowledge"), "/referrals")
    assert gov.post(f"/referrals/{ids['away_key']}/acknowledge").status_code == 404  # another area
    with world.engine.connect() as conn:
        status = conn.execute(sa.select(REFERRALS.c.status).where(REFERRALS.c.id == ids["home_key"])).scalar_one()
    assert status == "acknowledged"


def test_a_district_acknowledges_its_escalations_and_proposes_referrals(world: World) -> None:
    from tests.test_pages_access import add_escalations

    ids = add_escalations(world)
    district = Browser(world, "wujin")
    listing = district.get("/escalations")
    assert f'value="{world.firms["home_key"]}:key_field_started"' in listing.text
    assert f'value="{world.firms["away_key"]}:key_field_started"' not in listing.text  # another district's
    done(district.post(f"/escalations/{ids['home_key']}/acknowledge"), "/escalations")
    assert "督办事项已签收" in district.get("/escalations?status=acknowledged").text
    twice = district.post(f"/escalations/{ids['home_key']}/acknowledge")
    assert twice.status_code == 409 and "该督办事项已是" in twice.text
    assert district.post(f"/escalations/{ids['away_key']}/acknowledge").status_code == 404

    firm_id = world.firms["home_key"]
    page = district.get(f"/firms/{firm_id}")
    assert "提出移交属地政府" in page.text
    early = district.post(f"/firms/{firm_id}/referral", data={"grounds": "non_participating"})
    assert early.status_code == 422 and "不符合“逾期未启动创建”的移交条件" in early.text  # before the milestone
    assert "提出移交属地政府" not in district.get(f"/firms/{world.firms['home_other']}").text  # not a key field
