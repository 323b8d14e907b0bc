"""Certificates: the city names 标杆 firms (≥ 75, audited, reversible with a reason); earlier certificates
enter through the directory, the API, the CLI and the page; eligibility is worded as the plan words it
(方可新申报) and never claims what nobody recorded; numbered certificates; the published lists; the
certificate audit names every firm whose certificate lacks part of its record."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from api.cli import main
from notifications.render import Renderer
from states import Role
from tests.api_helpers import World
from tests.factories import Driver, make_firm
from tests.test_api_paths import PDF, ok, walk_to_certified
from tests.test_pages_access import Browser
from workflow.audit import verify_chain
from workflow.campaign import Campaign
from workflow.context import Context
from workflow.directory import ImportRejected, import_directory
from workflow.pool import draw
from workflow.tables import (
    CERTIFICATIONS,
    ENTERPRISES,
    EVENTS,
    EVIDENCE_FILES,
    HAZARDS,
    OUTBOX,
    REVIEW_ASSIGNMENTS,
    REVIEW_DRAWS,
)

# The plan: 市应急管理局根据验收结果确定达标企业(评分不得低于60分)与标杆企业名单(评分不得低于75分)
BENCHMARK_FLOOR = 75
# team scores (online, on-site) → 0.4 × online + 0.6 × on-site, mean of three
SCORES_80_8 = [(80, 80), (90, 94), (70, 70)]  # 80.8
SCORES_70 = [(70, 70), (70, 70), (70, 70)]  # 70.0
NUMBER = re.compile(r"^CZDB-2022-\d{6}$")  # prefix and year of certification (the world stands on 2022-07-01)


def run(db_url: str, *args: str) -> Any:
    return CliRunner().invoke(main, ["--database-url", db_url, *args], catch_exceptions=False)


def url_of(world: World) -> str:
    return world.engine.url.render_as_string(hide_password=False)


def events(engine: sa.Engine, firm_id: int) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(sa.select(EVENTS).where(EVENTS.c.enterprise_id == firm_id).order_by(EVENTS.c.seq)).all()


def current_cert(engine: sa.Engine, firm_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(CERTIFICATIONS).where(
                CERTIFICATIONS.c.enterprise_id == firm_id, CERTIFICATIONS.c.revoked_at.is_(None)
            )
        ).one()


def uscc_of(engine: sa.Engine, firm_id: int) -> str:
    with engine.connect() as conn:
        return str(conn.execute(sa.select(ENTERPRISES.c.uscc).where(ENTERPRISES.c.id == firm_id)).scalar_one())


def certify_both(world: World) -> tuple[int, int]:
    """home_key at 80.8 (team of the support center), home_other at 70 (team of its district)."""
    key, other = world.firms["home_key"], world.firms["home_other"]
    walk_to_certified(world, key, "firm", "center", SCORES_80_8)
    walk_to_certified(world, other, "firm_other", "wujin", SCORES_70)
    return key, other


# ---- 标杆: the city's decision --------------------------------------------------------------------


def test_the_city_names_benchmark_firms_from_75_reversibly_with_a_reason(world: World) -> None:
    key, other = certify_both(world)
    c = world.client
    assert current_cert(world.engine, key).level == "compliant"  # certification stamps 达标 only, even at 80.8

    for user in ("center", "wujin", "firm", "wujin_gov"):
        refused = c.post(f"/api/enterprises/{key}/benchmark", json={"reason": "示范"}, headers=world.as_(user))
        assert refused.status_code == 403, user

    below = c.post(f"/api/enterprises/{other}/benchmark", json={"reason": "示范"}, headers=world.as_("city"))
    assert below.status_code == 422 and below.json()["guard"] == "benchmark_floor"
    assert "70.0" in below.json()["message_zh"] and f"{BENCHMARK_FLOOR}" in below.json()["message_zh"]
    assert current_cert(world.engine, other).level == "compliant"

    no_reason = c.post(f"/api/enterprises/{key}/benchmark", json={"reason": ""}, headers=world.as_("city"))
    assert no_reason.status_code == 422

    named = ok(c.post(f"/api/enterprises/{key}/benchmark", json={"reason": "隐患治理示范"}, headers=world.as_("city")))
    assert named["level"] == "benchmark" and named["score"] == 80.8
    assert current_cert(world.engine, key).level == "benchmark"
    again = c.post(f"/api/enterprises/{key}/benchmark", json={"reason": "再次"}, headers=world.as_("city"))
    assert again.status_code == 409

    blank = c.post(f"/api/enterprises/{key}/benchmark/withdraw", json={"reason": " "}, headers=world.as_("city"))
    assert blank.status_code == 422 and current_cert(world.engine, key).level == "benchmark"
    ok(c.post(f"/api/enterprises/{key}/benchmark/withdraw", json={"reason": "发生较大事故"}, headers=world.as_("city")))
    assert current_cert(world.engine, key).level == "compliant"

    records = [(e.trigger, e.payload.get("reason"), e.role) for e in events(world.engine, key)[-2:]]
    assert records == [
        ("benchmark_named", "隐患治理示范", "city_bureau"),
        ("benchmark_withdrawn", "发生较大事故", "city_bureau"),
    ]
    with world.engine.connect() as conn:
        assert verify_chain(conn).ok


def test_the_command_line_names_and_withdraws_as_the_city_with_the_same_refusal(world: World) -> None:
    key, other = certify_both(world)
    db = url_of(world)
    low = run(db, "certificates", "benchmark", uscc_of(world.engine, other), "--reason", "示范")
    assert low.exit_code == 1 and "70.0" in low.output and "75" in low.output
    named = run(db, "certificates", "benchmark", uscc_of(world.engine, key), "--reason", "示范企业")
    assert named.exit_code == 0, named.output
    assert current_cert(world.engine, key).level == "benchmark"
    back = run(db, "certificates", "unbenchmark", uscc_of(world.engine, key), "--reason", "复查不合格")
    assert back.exit_code == 0, back.output
    assert [e.trigger for e in events(world.engine, key)[-2:]] == ["benchmark_named", "benchmark_withdrawn"]


def test_the_city_decides_on_the_firm_page(world: World) -> None:
    key, _ = certify_both(world)
    city, district = Browser(world, "city"), Browser(world, "wujin")
    page = city.get(f"/firms/{key}")
    assert "列入标杆企业名单" in page.text
    assert (
        "列入标杆企业名单" not in district.get(f"/firms/{key}").text.split('id="certificate"')[1].split("</section>")[0]
    )
    assert district.post(f"/firms/{key}/benchmark", {"reason": "示范"}).status_code == 403
    refused = city.post(f"/firms/{key}/benchmark", {"decision": "name", "reason": ""})
    assert refused.status_code == 422 and "请填写理由" in refused.text
    done = city.post(f"/firms/{key}/benchmark", {"decision": "name", "reason": "示范"})
    assert done.status_code == 303 and current_cert(world.engine, key).level == "benchmark"


# ---- certificate numbers -----------------------------------------------------------------------


def test_certificates_get_unique_numbers_and_a_validity(engine: sa.Engine, campaign: Campaign) -> None:
    numbers = []
    for score in (92.0, 61.0, 75.0):
        firm = make_firm(engine)
        d = Driver(engine, campaign, firm)
        d.to_reviewed(score)
        record = d.fire("certify", Role.city_bureau).record
        assert record["level"] == "compliant"  # never 标杆 automatically, whatever the score
        numbers.append(record["certificate_no"])
        cert = current_cert(engine, firm)
        assert cert.certificate_no == record["certificate_no"]
        # validity: 3 years from the day of certification (2022-07-01), its last day the day before
        assert cert.valid_until == dt.date(2025, 6, 30)
    assert all(NUMBER.match(n) for n in numbers), numbers
    assert len(set(numbers)) == 3
    with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(
            sa.update(CERTIFICATIONS)
            .where(CERTIFICATIONS.c.certificate_no == numbers[1])
            .values(certificate_no=numbers[0])
        )


# ---- earlier certificates -----------------------------------------------------------------------


def test_the_district_records_an_earlier_certificate_through_the_api(world: World) -> None:
    firm = world.firms["home_other"]
    c = world.client
    body = {"level": 2, "number": "苏AQBJX2019-0123", "date": "2019-05-20"}
    assert (
        c.put(f"/api/enterprises/{firm}/prior-certificate", json=body, headers=world.as_("firm_other")).status_code
        == 403
    )
    assert (
        c.put(f"/api/enterprises/{firm}/prior-certificate", json=body, headers=world.as_("liyang")).status_code == 404
    )
    missing = c.put(
        f"/api/enterprises/{firm}/prior-certificate",
        json={"level": 1, "date": "2019-05-20"},
        headers=world.as_("wujin"),
    )
    assert missing.status_code == 422 and "证书编号" in missing.json()["message_zh"]
    future = c.put(
        f"/api/enterprises/{firm}/prior-certificate", json={**body, "date": "2030-01-01"}, headers=world.as_("wujin")
    )
    assert future.status_code == 422 and "2030-01-01" in future.json()["message_zh"]
    ok(c.put(f"/api/enterprises/{firm}/prior-certificate", json=body, headers=world.as_("wujin")))
    detail = world.firm(firm, "city")
    assert detail["prior_certificate"]["status"] == "held"
    assert (detail["prior_certificate"]["level"], detail["prior_certificate"]["number"]) == (2, "苏AQBJX2019-0123")
    last = events(world.engine, firm)[-1]
    assert last.trigger == "prior_certificate_recorded" and last.role == "district_bureau"
    assert last.payload["level"] == 2 and last.payload["before"] is None
    ok(c.put(f"/api/enterprises/{firm}/prior-certificate", json={"level": "none"}, headers=world.as_("city")))
    assert world.firm(firm, "city")["prior_certificate"]["status"] == "none"
    assert events(world.engine, firm)[-1].payload["before"]["level"] == 2
    with world.engine.connect() as conn:
        assert verify_chain(conn).ok


def test_the_command_line_and_the_page_record_an_earlier_certificate(world: World) -> None:
    firm = world.firms["home_key"]
    db = url_of(world)
    bad = run(db, "certificates", "prior", uscc_of(world.engine, firm), "--level", "三级")
    assert bad.exit_code == 1 and "原标准化等级" in bad.output
    done = run(
        db,
        "certificates",
        "prior",
        uscc_of(world.engine, firm),
        "--level",
        "一级",
        "--number",
        "AQB-1-0007",
        "--date",
        "2018-03-01",
    )
    assert done.exit_code == 0, done.output
    assert world.firm(firm, "city")["prior_certificate"]["level"] == 1
    district = Browser(world, "wujin")
    assert district.post(f"/firms/{firm}/prior-certificate", {"level": "none"}).status_code == 303
    assert world.firm(firm, "city")["prior_certificate"]["status"] == "none"
    assert Browser(world, "firm").post(f"/firms/{firm}/prior-certificate", {"level": "none"}).status_code == 403
    assert [e.trigger for e in events(world.engine, firm)[-2:]] == ["prior_certificate_recorded"] * 2


DIRECTORY_ZH = [
    "统一社会信用代码",
    "企业名称",
    "所属辖区",
    "行业",
    "规模以上",
    "主要负责人",
    "原标准化等级",
    "原证书编号",
    "原发证日期",
]
DIRECTORY_EN = [
    "uscc",
    "name",
    "district",
    "sector",
    "above_size",
    "principal",
    "prior_level",
    "prior_certificate_no",
    "prior_certificate_date",
]


def write_directory(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("header", [DIRECTORY_ZH, DIRECTORY_EN], ids=["zh", "en"])
def test_the_directory_carries_earlier_certificates(
    engine: sa.Engine, campaign: Campaign, tmp_path: Path, header: list[str]
) -> None:
    import random

    from workflow import uscc
    from workflow.clock import FixedClock

    codes = [uscc.make(random.Random(900 + n), division="320412") for n in range(3)]
    base = ["武进区", "机械", "是", "王建国"]
    rows = [
        [codes[0], "常州甲机械有限公司", *base, "二级", "苏AQBJXII201900011", "2019-06-01"],
        [codes[1], "常州乙机械有限公司", *base, "无", "", ""],
        [codes[2], "常州丙机械有限公司", *base, "", "", ""],
    ]
    clock = FixedClock.on(dt.date(2022, 1, 5))
    report = import_directory(
        engine, write_directory(tmp_path / "名录.csv", header, rows), context=Context(campaign, clock)
    )
    assert report.prior_recorded == 2
    with engine.connect() as conn:
        firms = {r.uscc: r for r in conn.execute(sa.select(ENTERPRISES).where(ENTERPRISES.c.uscc.in_(codes)))}
        chain = {
            r.enterprise_id: r
            for r in conn.execute(sa.select(EVENTS).where(EVENTS.c.trigger == "prior_certificate_recorded"))
        }
        assert verify_chain(conn).ok
    held, none, unknown = (firms[c] for c in codes)
    assert (held.prior_certificate_level, held.prior_certificate_no, held.prior_certificate_date) == (
        2,
        "苏AQBJXII201900011",
        dt.date(2019, 6, 1),
    )
    assert none.prior_certificate_level is None and none.prior_certificate_recorded_at is not None
    assert unknown.prior_certificate_recorded_at is None  # a blank row states nothing
    assert set(chain) == {held.id, none.id} and chain[held.id].payload["source"] == "directory"
    # the same file again changes nothing and writes no event
    again = import_directory(
        engine, write_directory(tmp_path / "again.csv", header, rows), context=Context(campaign, clock)
    )
    assert again.prior_recorded == 0

    broken = [
        [codes[0], "常州甲机械有限公司", *base, "二级", "", "2019-06-01"],
        [codes[1], "常州乙机械有限公司", *base, "无", "X-1", ""],
        [codes[2], "常州丙机械有限公司", *base, "", "", "2019-13-01"],
    ]
    with pytest.raises(ImportRejected) as rejected:
        import_directory(
            engine, write_directory(tmp_path / "bad.csv", header, broken), context=Context(campaign, clock)
        )
    problems = [str(p) for p in rejected.value.problems]
    assert [p.split(",")[0] for p in problems] == ["line 2", "line 3", "line 4"]
    assert "needs its number" in problems[0] and "holding no earlier certificate" in problems[1]
    assert "without prior_level" in problems[2]


# ---- eligibility: 方可新申报, and nothing the system does not know ---------------------------------


def certification_mail(world: World, firm_id: int) -> dict[str, Any]:
    with world.engine.connect() as conn:
        row = conn.execute(
            sa.select(OUTBOX).where(OUTBOX.c.enterprise_id == firm_id, OUTBOX.c.kind == "certification")
        ).one()
    return dict(row.context)


def test_eligibility_is_worded_as_the_plan_and_unknown_is_said_to_be_unknown(world: World, campaign: Campaign) -> None:
    key, _ = certify_both(world)  # nobody recorded whether home_key holds an earlier certificate
    renderer = Renderer(tz=world.clock.tz, public_url="http://dabiao.test", campaign=campaign)
    context = certification_mail(world, key)
    assert context["prior_certificate"] == "unknown" and context["eligible_level"] is None
    assert context["score_level"] == 2 and NUMBER.match(context["certificate_no"])
    mail = renderer.render("certification", "zh-CN", context)
    assert "方可新申报" in mail.text and "未录入原标准化证书信息" in mail.text
    assert "可直接申请" not in mail.text and "此前未取得" not in mail.text and "已登记为未取得" not in mail.text
    assert context["certificate_no"] in mail.text and "有效期至2025年6月30日" in mail.text
    english = renderer.render("certification", "en", context)
    assert "No earlier-certificate information has been recorded" in english.text
    assert "holds no earlier" not in english.text and "recorded as holding no" not in english.text

    page = Browser(world, "firm").get(f"/firms/{key}").text
    assert "方可新申报" in page and "未录入原标准化证书信息" in page
    assert "已录入为未取得" not in page and "可直接申请" not in page

    ok(
        world.client.put(
            f"/api/enterprises/{key}/prior-certificate", json={"level": "none"}, headers=world.as_("wujin")
        )
    )
    assert current_cert(world.engine, key).eligible_level == 2  # 80.8 ≥ 75: may newly apply for level 2
    page = Browser(world, "firm").get(f"/firms/{key}").text
    assert "已录入为未取得原一级、二级证书" in page and "方可新申报" in page
    none_mail = renderer.render("certification", "zh-CN", {**context, "prior_certificate": "none", "eligible_level": 2})
    assert "已登记为未取得原一级、二级证书" in none_mail.text and "新申报二级标准化企业" in none_mail.text

    ok(
        world.client.put(
            f"/api/enterprises/{key}/prior-certificate",
            json={"level": 1, "number": "AQB-1-0001", "date": "2017-01-01"},
            headers=world.as_("wujin"),
        )
    )
    assert current_cert(world.engine, key).eligible_level is None  # holds one: computed only for firms without
    page = Browser(world, "firm").get(f"/firms/{key}").text
    assert "已持有原一级安全生产标准化证书" in page


# ---- the certificate and the published lists ------------------------------------------------------

LIST_HEADERS = [
    "序号",
    "证书编号",
    "统一社会信用代码",
    "企业名称",
    "所属辖区",
    "行业",
    "重点监管领域",
    "评审得分",
    "认定日期",
    "证书有效期至",
    "列入标杆名单日期",
]


def check_sheet(data: bytes, *, title: str, rows: int) -> Any:
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book.worksheets[0]
    assert sheet.freeze_panes == "A3"
    assert sheet.auto_filter.ref == f"A2:K{rows + 2}"
    assert title in sheet["A1"].value and "截至 2022-07-01" in sheet["A1"].value
    assert [cell.value for cell in sheet[2]] == LIST_HEADERS
    for row in sheet.iter_rows(min_row=3, values_only=True):
        assert isinstance(row[8], dt.datetime) and row[8].date() == dt.date(2022, 7, 1)  # typed, not text
        assert isinstance(row[9], dt.datetime) and row[9].date() == dt.date(2025, 6, 30)
    assert sheet.max_row == rows + 2
    return sheet


def test_the_city_publishes_the_lists_and_prints_a_certificate(world: World, tmp_path: Path) -> None:
    key, _ = certify_both(world)
    ok(world.client.post(f"/api/enterprises/{key}/benchmark", json={"reason": "示范"}, headers=world.as_("city")))
    db = url_of(world)
    out = tmp_path / "benchmark.xlsx"
    done = run(db, "lists", "export", "--kind", "benchmark", "-o", str(out), "--as-of", "2022-07-01")
    assert done.exit_code == 0, done.output
    sheet = check_sheet(out.read_bytes(), title="标杆企业名单", rows=1)
    assert sheet["D3"].value == '常州<武进>&"化工"有限公司' and sheet["K3"].value.date() == dt.date(2022, 7, 1)

    city = Browser(world, "city")
    listed = city.get("/lists.xlsx", params={"kind": "certified"})
    assert listed.status_code == 200 and "certified-firms-20220701.xlsx" in listed.headers["content-disposition"]
    check_sheet(listed.content, title="达标企业名单", rows=2)
    api = world.client.get("/api/lists/export", params={"kind": "benchmark"}, headers=world.as_("city"))
    check_sheet(api.content, title="标杆企业名单", rows=1)
    assert Browser(world, "wujin").get("/lists.xlsx").status_code == 403
    assert world.client.get("/api/lists/export", headers=world.as_("center")).status_code == 403
    assert "标杆企业名单 (1)" in city.get("/lists").text

    cert = city.get(f"/firms/{key}/certificate")
    number = current_cert(world.engine, key).certificate_no
    assert cert.status_code == 200 and number in cert.text and "安全生产达标企业证书" in cert.text
    assert "@media print" in city.get("/static/css/app.css").text
    assert not re.search(r'(src|href)="(https?:)?//', cert.text)  # no CDN: everything from this server
    api_cert = ok(world.client.get(f"/api/enterprises/{key}/certificate", headers=world.as_("firm")))
    assert api_cert["certificate_no"] == number and api_cert["valid_until"] == "2025-06-30"
    assert (
        world.client.get(
            f"/api/enterprises/{world.firms['away_key']}/certificate", headers=world.as_("city")
        ).status_code
        == 409
    )


# ---- the certificate audit -------------------------------------------------------------------------


def upload_application_form(world: World, firm_id: int, user: str) -> None:
    ok(
        world.client.post(
            f"/api/enterprises/{firm_id}/evidence",
            data={"kind": "application_material"},
            files={"file": ("申请表.pdf", io.BytesIO(PDF + b"form"), "application/pdf")},
            headers=world.as_(user),
        ),
        201,
    )


def test_the_certificate_audit_names_each_firm_lacking_part_of_its_record(world: World, campaign: Campaign) -> None:
    key, other = world.firms["home_key"], world.firms["home_other"]
    upload_application_form(world, key, "firm")
    walk_to_certified(world, key, "firm", "center", SCORES_80_8)  # complete: team, scores, draw, evidence, dossier
    walk_to_certified(world, other, "firm_other", "wujin", SCORES_70)
    with world.engine.begin() as conn:  # its dossier loses the application form (no application goes in without)
        conn.execute(
            sa.update(EVIDENCE_FILES)
            .where(EVIDENCE_FILES.c.enterprise_id == other, EVIDENCE_FILES.c.kind == "application_form")
            .values(kind="supporting_material")
        )
    db = url_of(world)
    passed = ok(world.client.get("/api/audit/certificates", headers=world.as_("city")))
    assert passed["ok"] is False and passed["checked"] == 2
    assert [f["enterprise_id"] for f in passed["failures"]] == [other]
    assert passed["failures"][0]["missing"] == ["申请材料 / application form"]
    full = next(f for f in passed["firms"] if f["enterprise_id"] == key)
    assert len(full["team"]) == 3 and all(set(m["scores"]) == {"online", "on_site"} for m in full["team"])
    with world.engine.connect() as conn:  # the server's seed, as recorded with the draw
        seed = conn.execute(
            sa.select(REVIEW_DRAWS.c.seed).where(REVIEW_DRAWS.c.application_id == full["application_id"])
        ).scalar_one()
    assert full["draws"][0]["seed"] == seed and len(full["draws"][0]["candidates"]) == 5
    assert full["hazards"][0]["evidence"] and full["dossier"]["self_assessment_id"] is not None

    # a certificate whose record lost its team (as one with a score typed in directly would have none) and a
    # closed hazard without its file
    away = world.firms["away_other"]
    d = Driver(world.engine, campaign, away)
    d.to_reviewed(80)
    d.fire("certify", Role.city_bureau)
    with world.engine.begin() as conn:
        away_app = conn.execute(
            sa.select(CERTIFICATIONS.c.application_id).where(CERTIFICATIONS.c.enterprise_id == away)
        )
        conn.execute(
            sa.update(REVIEW_ASSIGNMENTS)
            .where(REVIEW_ASSIGNMENTS.c.application_id == away_app.scalar_one())
            .values(status="replaced")
        )
        hazard = conn.execute(sa.select(HAZARDS).where(HAZARDS.c.enterprise_id == key)).one()
        conn.execute(sa.update(EVIDENCE_FILES).where(EVIDENCE_FILES.c.hazard_id == hazard.id).values(hazard_id=None))
        conn.execute(sa.update(HAZARDS).where(HAZARDS.c.id == hazard.id).values(rectification_evidence=None))

        # 标杆 stamped on a certificate without the city's decision (as certification once did at 75)
        conn.execute(sa.update(CERTIFICATIONS).where(CERTIFICATIONS.c.enterprise_id == away).values(level="benchmark"))

    result = run(db, "audit", "certificates")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any("列入标杆名单的决定" in line and uscc_of(world.engine, away) in line for line in lines)
    names = {firm: (world.firm(firm, "city")["name"], uscc_of(world.engine, firm)) for firm in (key, other, away)}
    for firm, (name, code) in names.items():
        line = next(line for line in result.output.splitlines() if code in line and "缺少" in line)
        assert name in line, firm
    assert "危化品仓库通风不良" in result.output and "整改材料" in result.output
    assert any("评审组 / review team" in line and names[away][1] in line for line in result.output.splitlines())
    assert "3 / 3" in result.output

    assert world.client.get("/api/audit/certificates", headers=world.as_("wujin")).status_code == 403
    assert world.client.get("/api/audit/certificates", headers=world.as_("center")).status_code == 403


def test_the_certificate_audit_passes_when_every_certificate_is_complete(world: World) -> None:
    key = world.firms["home_key"]
    upload_application_form(world, key, "firm")
    walk_to_certified(world, key, "firm", "center", SCORES_80_8)
    result = run(url_of(world), "audit", "certificates")
    assert result.exit_code == 0, result.output
    assert "1 certified firm" in result.output
    assert ok(world.client.get("/api/audit/certificates", headers=world.as_("city")))["ok"] is True


def test_a_tampered_draw_is_named(world: World) -> None:
    key = world.firms["home_key"]
    upload_application_form(world, key, "firm")
    walk_to_certified(world, key, "firm", "center", SCORES_80_8)
    with world.engine.begin() as conn:
        rows = conn.execute(sa.select(REVIEW_ASSIGNMENTS)).all()
        team = sorted(int(r.reviewer_id) for r in rows)
        wrong = next(n for n in range(1, 100) if draw(rows[0].draw_pool, size=3, seed=n) != team)
        conn.execute(sa.update(REVIEW_ASSIGNMENTS).values(draw_seed=wrong))
    body = ok(world.client.get("/api/audit/certificates", headers=world.as_("city")))
    assert body["ok"] is False and f"seed {wrong} " in body["failures"][0]["missing"][0]
