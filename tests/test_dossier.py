"""A firm's record and its dossier, through every door: rectification needs the firm's own rectification file for
that hazard; findings of an audit or a review are closed by the office that raised them; an application needs a
self-assessment taken after the last rectification, a self-assessment report and an application form; the
district verifies with an opinion and a checklist and returns naming what is missing; every change is an event
in the firm's chain; inputs are bounded alike in the API and the pages."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner

from api.cli import main
from notifications.render import Renderer
from tests.api_helpers import World
from tests.test_pages_access import Browser
from workflow.audit import verify_chain
from workflow.tables import APPLICATIONS, ENTERPRISES, EVENTS, HAZARDS, OUTBOX

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
FIVE = {
    "responsible_person": "王强",
    "measures": "加装防爆排风机",
    "funds": 12000.5,
    "deadline": "2022-08-15",
    "emergency_plan": "泄漏应急预案",
}
OPINION = {"opinion": "材料齐全，与企业实际相符", "checklist": ["self_assessment_report", "application_form"]}


# ---- helpers: the firm works through the API -------------------------------------------------------------


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def refused(response: Any, *parts: str, status: int = 422) -> str:
    assert response.status_code == status, response.text
    text = response.json()["message"] if response.headers["content-type"].startswith("application/json") else ""
    text = text or response.text
    for part in parts:
        assert part in text, (part, text[:2000])
    return text


def fire(world: World, firm_id: int, trigger: str, user: str, data: dict[str, Any] | None = None) -> Any:
    return world.fire(firm_id, trigger, user, data)


def scores(world: World) -> dict[str, float]:
    return {item.code: item.points * 0.9 for item in world.campaign.outline_items}


def assess(world: World, firm_id: int, user: str = "firm") -> None:
    ok(
        world.client.post(
            f"/api/enterprises/{firm_id}/self-assessments", json={"scores": scores(world)}, headers=world.as_(user)
        ),
        201,
    )


def started(world: World, firm_id: int, user: str = "firm") -> None:
    ok(fire(world, firm_id, "notify", "wujin"))
    ok(fire(world, firm_id, "start_self_assessment", user))
    assess(world, firm_id, user)


def upload(
    world: World, firm_id: int, kind: str, user: str = "firm", hazard_id: int | None = None, name: str = ""
) -> Any:
    data = {"kind": kind} | ({} if hazard_id is None else {"hazard_id": str(hazard_id)})
    body = PDF + f"% {kind} {firm_id} {hazard_id} {name}\n".encode()
    return world.client.post(
        f"/api/enterprises/{firm_id}/evidence",
        data=data,
        files={"file": (name or f"{kind}.pdf", io.BytesIO(body), "application/pdf")},
        headers=world.as_(user),
    )


def hazard(world: World, firm_id: int, description: str, user: str = "firm", **five: Any) -> dict[str, Any]:
    body = {"description": description, **FIVE, **five}
    return dict(ok(world.client.post(f"/api/enterprises/{firm_id}/hazards", json=body, headers=world.as_(user)), 201))


def rectify(world: World, hazard_id: int, user: str = "firm", **body: Any) -> Any:
    return world.client.post(f"/api/hazards/{hazard_id}/rectify", json=body, headers=world.as_(user))


def events(world: World, firm_id: int) -> list[Any]:
    with world.engine.connect() as conn:
        return list(conn.execute(sa.select(EVENTS).where(EVENTS.c.enterprise_id == firm_id).order_by(EVENTS.c.seq)))


def hazard_row(world: World, hazard_id: int) -> Any:
    with world.engine.connect() as conn:
        return conn.execute(sa.select(HAZARDS).where(HAZARDS.c.id == hazard_id)).one()


def version_of(world: World, firm_id: int) -> int:
    with world.engine.connect() as conn:
        return int(conn.execute(sa.select(ENTERPRISES.c.version).where(ENTERPRISES.c.id == firm_id)).scalar_one())


def page_fire(browser: Browser, world: World, firm_id: int, trigger: str, **data: Any) -> Any:
    return browser.post(
        f"/firms/{firm_id}/transitions/{trigger}", data={"version": str(version_of(world, firm_id)), **data}
    )


def uscc_of(world: World, firm_id: int) -> str:
    with world.engine.connect() as conn:
        return str(conn.execute(sa.select(ENTERPRISES.c.uscc).where(ENTERPRISES.c.id == firm_id)).scalar_one())


def cli(world: World, *args: str) -> Any:
    url = world.engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(main, ["--database-url", url, *args])


# ---- 1. rectification needs the firm's rectification file for that hazard ------------------------------------


def test_rectification_needs_this_firms_rectification_file_for_this_hazard_api(world: World) -> None:
    firm_id, other_id = world.firms["home_key"], world.firms["home_other"]
    started(world, firm_id)
    started(world, other_id, "firm_other")
    h = hazard(world, firm_id, "危化品仓库通风不良")
    ok(fire(world, firm_id, "report_hazards", "firm"))
    named = f"#{h['id']}“危化品仓库通风不良”"
    # no file, an invented SHA-256, a file of another kind, another hazard's file, another firm's file
    refused(rectify(world, h["id"]), named, "needs a rectification file this firm uploaded for this hazard")
    refused(rectify(world, h["id"], evidence_sha256="ab" * 32), named)
    material = ok(upload(world, firm_id, "supporting_material"), 201)
    refused(rectify(world, h["id"], evidence_id=material["id"]), named)
    second = hazard(world, firm_id, "消防通道堵塞")
    for_second = ok(upload(world, firm_id, "rectification", hazard_id=second["id"]), 201)
    refused(rectify(world, h["id"], evidence_id=for_second["id"]), named)
    own = hazard(world, other_id, "粉尘未清扫", user="firm_other")
    theirs = ok(upload(world, other_id, "rectification", user="firm_other", hazard_id=own["id"]), 201)
    refused(rectify(world, h["id"], evidence_id=theirs["id"]), named)
    refused(rectify(world, h["id"], evidence_sha256=theirs["sha256"]), named)
    assert hazard_row(world, h["id"]).status == "open"
    # a rectification file must name its hazard, and the hazard must be this firm's
    refused(upload(world, firm_id, "rectification"), "a rectification file must name its hazard")
    assert upload(world, firm_id, "rectification", hazard_id=own["id"]).status_code == 404

    proof = ok(upload(world, firm_id, "rectification", hazard_id=h["id"], name="整改照片.pdf"), 201)
    done = ok(rectify(world, h["id"], evidence_id=proof["id"]))
    assert (done["status"], done["rectification_evidence_id"], done["closed_by"]) == (
        "rectified",
        proof["id"],
        "enterprise",
    )
    # read-only once rectified: edits, a second rectification and more files are refused naming the hazard
    patch = world.client.patch(f"/api/hazards/{h['id']}", json={"deadline": "2022-07-02"}, headers=world.as_("firm"))
    refused(patch, named, "read-only")
    refused(rectify(world, h["id"], evidence_id=proof["id"]), named)
    refused(upload(world, firm_id, "rectification", hazard_id=h["id"]), named)
    assert hazard_row(world, h["id"]).deadline == dt.date(2022, 8, 15)
    # every change is an event in the firm's chain, which verifies
    kinds = [e.trigger for e in events(world, firm_id)]
    assert kinds == [
        "notify",
        "start_self_assessment",
        "self_assessment_recorded",
        "hazard_reported",
        "report_hazards",
        "evidence_uploaded",
        "hazard_reported",
        "evidence_uploaded",
        "evidence_uploaded",
        "hazard_rectified",
    ]
    rectified = events(world, firm_id)[-1]
    assert rectified.payload["hazard_id"] == h["id"] and rectified.payload["evidence_id"] == proof["id"]
    with world.engine.connect() as conn:
        assert verify_chain(conn).ok


def test_rectification_is_refused_alike_on_the_page(world: World) -> None:
    firm_id = world.firms["home_key"]
    started(world, firm_id)
    h = hazard(world, firm_id, "危化品仓库通风不良")
    ok(fire(world, firm_id, "report_hazards", "firm"))
    material = ok(upload(world, firm_id, "supporting_material"), 201)
    browser = Browser(world, "firm")
    for evidence in ("", str(material["id"])):
        answer = browser.post(f"/hazards/{h['id']}/rectify", data={"evidence": evidence})
        assert answer.status_code == 422
        assert f"#{h['id']}“危化品仓库通风不良”须附本企业为该隐患上传的整改佐证文件" in answer.text
    proof = ok(upload(world, firm_id, "rectification", hazard_id=h["id"]), 201)
    answer = browser.post(f"/hazards/{h['id']}/rectify", data={"evidence": str(proof["id"])})
    assert answer.status_code == 303
    edit = browser.post(f"/hazards/{h['id']}", data={"measures": "改为每日巡检"})
    assert edit.status_code == 422 and f"#{h['id']}“危化品仓库通风不良”已整改，不能再修改" in edit.text
    assert hazard_row(world, h["id"]).measures == "加装防爆排风机"


# ---- 2. findings are closed by the office that raised them ---------------------------------------------------


def applied(world: World, firm_id: int, user: str = "firm") -> None:
    started(world, firm_id, user)
    ok(upload(world, firm_id, "self_assessment_report", user), 201)
    ok(upload(world, firm_id, "application_form", user), 201)
    ok(fire(world, firm_id, "submit_application", user))


def test_an_audit_finding_is_accepted_or_rejected_by_the_auditing_office(world: World) -> None:
    firm_id = world.firms["home_key"]  # key field: the support center audits
    applied(world, firm_id)
    ok(fire(world, firm_id, "verify", "wujin", OPINION))
    finding = {"reason": "应急预案未备案", "findings": [{"description": "应急预案未备案"}]}
    ok(fire(world, firm_id, "fail_audit", "center", finding))
    (h,) = ok(world.client.get(f"/api/enterprises/{firm_id}/hazards", headers=world.as_("firm")))
    assert (h["source"], h["closed_by"]) == ("audit", "support_center")
    ok(world.client.patch(f"/api/hazards/{h['id']}", json=FIVE, headers=world.as_("firm")))
    proof = ok(upload(world, firm_id, "rectification", hazard_id=h["id"]), 201)
    assert ok(rectify(world, h["id"], evidence_id=proof["id"], note="已备案"))["status"] == "submitted"
    named = f"#{h['id']}“应急预案未备案”"
    refused(fire(world, firm_id, "finish_rectification", "firm"), "1 hazard(s) still open", named)
    refused(
        world.client.patch(f"/api/hazards/{h['id']}", json={"measures": "x"}, headers=world.as_("firm")),
        named,
        "awaits the office's acceptance",
    )
    # the firm cannot close it, nor can the district (the support center raised it)
    refused(world.client.post(f"/api/hazards/{h['id']}/accept", json={}, headers=world.as_("firm")), status=403)
    refused(
        world.client.post(f"/api/hazards/{h['id']}/accept", json={}, headers=world.as_("wujin")),
        named,
        "accepted by the office that raised it (support_center)",
        status=403,
    )
    refused(world.client.post(f"/api/hazards/{h['id']}/reject", json={}, headers=world.as_("center")), "needs a note")
    back = world.client.post(
        f"/api/hazards/{h['id']}/reject", json={"note": "备案回执不清晰"}, headers=world.as_("center")
    )
    assert (ok(back)["status"], ok(back)["decision_note"]) == ("open", "备案回执不清晰")
    refused(world.client.post(f"/api/hazards/{h['id']}/accept", json={}, headers=world.as_("center")), named)
    # again, and the center accepts it through its page
    proof = ok(upload(world, firm_id, "rectification", hazard_id=h["id"], name="回执.pdf"), 201)
    ok(rectify(world, h["id"], evidence_id=proof["id"]))
    center = Browser(world, "center")
    page = center.get(f"/firms/{firm_id}")
    assert f'action="/hazards/{h["id"]}/accept"' in page.text
    district_page = Browser(world, "wujin").post(f"/hazards/{h['id']}/accept", data={"note": ""})
    assert district_page.status_code == 403
    assert center.post(f"/hazards/{h['id']}/accept", data={"note": "回执清晰，整改到位"}).status_code == 303
    row = hazard_row(world, h["id"])
    assert (row.status, row.decision_note, row.decided_by, row.rectification_evidence_id) == (
        "accepted",
        "回执清晰，整改到位",
        "center",
        proof["id"],
    )
    refused(world.client.patch(f"/api/hazards/{h['id']}", json={"measures": "x"}, headers=world.as_("firm")), named)
    ok(fire(world, firm_id, "finish_rectification", "firm"))
    kinds = [e.trigger for e in events(world, firm_id)]
    assert kinds[-8:] == [
        "hazard_updated",
        "evidence_uploaded",
        "hazard_rectification_submitted",
        "rectification_rejected",
        "evidence_uploaded",
        "hazard_rectification_submitted",
        "rectification_accepted",
        "finish_rectification",
    ]


def test_a_review_finding_of_a_non_key_firm_is_closed_by_its_district(world: World) -> None:
    firm_id = world.firms["home_other"]
    applied(world, firm_id, "firm_other")
    with world.engine.begin() as conn:  # a failed review's finding, as the team's result leaves it
        conn.execute(sa.update(ENTERPRISES).where(ENTERPRISES.c.id == firm_id).values(state="rectifying"))
        conn.execute(
            sa.insert(HAZARDS).values(
                enterprise_id=firm_id,
                source="review",
                description="特种作业人员无证上岗",
                severity="general",
                status="open",
                reported_at=world.clock.now(),
                **{k: v for k, v in FIVE.items() if k != "deadline"},
                deadline=dt.date(2022, 8, 15),
            )
        )
        hazard_id = conn.execute(sa.select(sa.func.max(HAZARDS.c.id))).scalar_one()
    proof = ok(upload(world, firm_id, "rectification", "firm_other", hazard_id=hazard_id), 201)
    assert ok(rectify(world, hazard_id, "firm_other", evidence_id=proof["id"]))["status"] == "submitted"
    refused(world.client.post(f"/api/hazards/{hazard_id}/accept", json={}, headers=world.as_("center")), status=403)
    refused(world.client.post(f"/api/hazards/{hazard_id}/accept", json={}, headers=world.as_("liyang")), status=404)
    assert (
        ok(world.client.post(f"/api/hazards/{hazard_id}/accept", json={}, headers=world.as_("wujin")))["status"]
        == "accepted"
    )


# ---- 3. an application is a dossier --------------------------------------------------------------------------


def test_submitting_needs_the_dossier_through_api_page_and_command_line(world: World) -> None:
    firm_id = world.firms["home_key"]
    started(world, firm_id)
    missing = "not uploaded: self-assessment report, application form"
    refused(fire(world, firm_id, "submit_application", "firm"), missing)
    page = page_fire(Browser(world, "firm"), world, firm_id, "submit_application")
    assert page.status_code == 422 and "申请材料不全，尚未上传：自评报告、申请表" in page.text
    command = cli(world, "fire", uscc_of(world, firm_id), "submit_application", "--role", "enterprise")
    assert command.exit_code != 0 and missing in command.output
    ok(upload(world, firm_id, "self_assessment_report"), 201)
    refused(fire(world, firm_id, "submit_application", "firm"), "not uploaded: application form")
    assert "尚未上传：申请表" in Browser(world, "firm").get(f"/firms/{firm_id}").text  # what is still to do
    ok(upload(world, firm_id, "application_form", name="申请表.pdf"), 201)
    extra = ok(upload(world, firm_id, "supporting_material", name="责任制文件.pdf"), 201)
    result = ok(fire(world, firm_id, "submit_application", "firm"))
    assert [(m["name"], m["kind"]) for m in result["record"]["materials"]] == [
        ("self_assessment_report.pdf", "self_assessment_report"),
        ("申请表.pdf", "application_form"),
        ("责任制文件.pdf", "supporting_material"),
    ]
    assert result["record"]["materials"][2]["evidence_id"] == extra["id"]


def test_the_self_assessment_must_follow_the_last_rectification(world: World) -> None:
    firm_id = world.firms["home_key"]
    started(world, firm_id)  # self-assessed on 2022-07-01 12:00
    ok(upload(world, firm_id, "self_assessment_report"), 201)
    ok(upload(world, firm_id, "application_form"), 201)
    h = hazard(world, firm_id, "危化品仓库通风不良")
    ok(fire(world, firm_id, "report_hazards", "firm"))
    world.clock.advance(dt.timedelta(hours=3))
    proof = ok(upload(world, firm_id, "rectification", hazard_id=h["id"]), 201)
    ok(rectify(world, h["id"], evidence_id=proof["id"]))
    ok(fire(world, firm_id, "finish_rectification", "firm"))
    stale = (
        f"latest self-assessment (2022-07-01 12:00) was taken before the last rectification (2022-07-01 15:00, "
        f"hazard #{h['id']}“危化品仓库通风不良”)"
    )
    refused(fire(world, firm_id, "submit_application", "firm"), stale)
    page = page_fire(Browser(world, "firm"), world, firm_id, "submit_application")
    assert page.status_code == 422 and "最近一次自评（2022-07-01 12:00）早于最近一次整改（2022-07-01 15:00" in page.text
    command = cli(world, "fire", uscc_of(world, firm_id), "submit_application", "--role", "enterprise")
    assert command.exit_code != 0 and stale in command.output
    world.clock.advance(dt.timedelta(minutes=5))
    assess(world, firm_id)
    ok(fire(world, firm_id, "submit_application", "firm"))


# ---- the district's verification and return ------------------------------------------------------------------


def test_verification_records_an_opinion_and_a_checklist(world: World) -> None:
    firm_id = world.firms["home_key"]
    applied(world, firm_id)
    refused(fire(world, firm_id, "verify", "wujin"), "a verification opinion is required")
    refused(fire(world, firm_id, "verify", "wujin", {"opinion": "   "}), "a verification opinion is required")
    refused(fire(world, firm_id, "verify", "wujin", {"opinion": "属实", "checklist": ["site_visit"]}), "site_visit")
    district = Browser(world, "wujin")
    page = page_fire(district, world, firm_id, "verify", opinion="")
    assert page.status_code == 422 and "请填写核实意见" in page.text
    command = cli(world, "fire", uscc_of(world, firm_id), "verify", "--role", "district_bureau")
    assert command.exit_code != 0 and "a verification opinion is required" in command.output
    assert 'name="checklist" value="site_consistent"' in district.get(f"/firms/{firm_id}").text
    answer = page_fire(
        district, world, firm_id, "verify", opinion="材料齐全", checklist=["application_form", "site_consistent"]
    )
    assert answer.status_code == 303, answer.text
    application = world.firm(firm_id, "firm")["application"]
    assert (application["verification_opinion"], application["verification_checklist"]) == (
        "材料齐全",
        ["application_form", "site_consistent"],
    )
    assert "材料齐全" in Browser(world, "firm").get(f"/firms/{firm_id}").text


def test_a_return_names_the_missing_dossier_items_and_the_firm_sees_them(world: World) -> None:
    firm_id = world.firms["home_key"]
    applied(world, firm_id)
    refused(
        fire(world, firm_id, "return_application", "wujin", {"reason": "缺件", "missing": ["photos"]}),
        "unknown items photos",
    )
    district = Browser(world, "wujin")
    answer = page_fire(
        district,
        world,
        firm_id,
        "return_application",
        reason="缺少安全生产责任制文件",
        missing=["supporting_material", "application_form"],
    )
    assert answer.status_code == 303, answer.text
    application = world.firm(firm_id, "firm")["application"]
    assert (application["status"], application["missing"], application["outcome_reason"]) == (
        "returned",
        ["supporting_material", "application_form"],
        "缺少安全生产责任制文件",
    )
    page = Browser(world, "firm").get(f"/firms/{firm_id}").text
    section = page[page.index('id="application"') :]
    assert "缺少的申请材料" in section and "佐证材料；申请表" in section and "缺少安全生产责任制文件" in section
    # the firm's mail names the missing items too, in either language
    with world.engine.connect() as conn:
        mail = conn.execute(sa.select(OUTBOX).where(OUTBOX.c.kind == "application_returned")).one()
    renderer = Renderer()
    chinese = renderer.render(mail.kind, "zh-CN", mail.context, audience=mail.audience)
    english = renderer.render(mail.kind, "en", mail.context, audience=mail.audience)
    assert "需补充的材料" in chinese.text and "- 佐证材料" in chinese.text and "- 申请表" in chinese.text
    assert "<li>申请表</li>" in chinese.html
    assert "- supporting material" in english.text and "- application form" in english.text


# ---- 5. bounds of the firm's record ----------------------------------------------------------------------------


def test_hazard_inputs_are_bounded_alike_in_the_api_and_the_page(world: World) -> None:
    firm_id = world.firms["home_key"]
    started(world, firm_id)
    post = world.client.post
    url, headers = f"/api/enterprises/{firm_id}/hazards", world.as_("firm")
    browser = Browser(world, "firm")
    # deadlines: from the report day (2022-07-01) to 365 days after it (the campaign's local setting)
    for deadline in ("0001-01-01", "1899-12-31", "2022-06-30", "2023-07-02", "9999-12-31"):
        refused(post(url, json={"description": "x", "deadline": deadline}, headers=headers), "between the report day")
        page = browser.post(f"/firms/{firm_id}/hazards", data={"description": "x", "deadline": deadline})
        assert page.status_code == 422 and "整改时限须在上报之日（2022-07-01）至 2023-07-01 之间" in page.text
    for deadline in ("2022-07-01", "2023-07-01"):
        ok(post(url, json={"description": f"到期 {deadline}", "deadline": deadline}, headers=headers), 201)
    # funds: decimals from 0 to ten billion yuan, to the fen
    for funds in (1e26, -1, 10_000_000_000.01):
        refused(post(url, json={"description": "x", "funds": funds}, headers=headers), "funds must be between 0 and")
    for funds in ("1e400", "NaN"):  # not finite: the schema refuses before the service
        refused(post(url, json={"description": "x", "funds": funds}, headers=headers), "funds")
    refused(post(url, json={"description": "x", "funds": 0.001}, headers=headers), "at most two decimal places")
    for funds in ("1e26", "0.001", "abc"):
        page = browser.post(f"/firms/{firm_id}/hazards", data={"description": "x", "funds": funds})
        assert page.status_code == 422 and "整改资金" in page.text
    assert ok(post(url, json={"description": "资金", "funds": 12345.67}, headers=headers), 201)["funds"] == 12345.67
    # text: one table of limits
    long = "长" * 2001
    refused(post(url, json={"description": long}, headers=headers))  # the schema carries the same limit
    page = browser.post(f"/firms/{firm_id}/hazards", data={"description": long})
    assert page.status_code == 422 and "隐患描述超过 2000 字" in page.text
    page = browser.post(f"/firms/{firm_id}/hazards", data={"description": "x", "responsible_person": "张" * 61})
    assert page.status_code == 422 and "责任人超过 60 字" in page.text
    with world.engine.connect() as conn:
        stored = conn.execute(sa.select(HAZARDS.c.description).where(HAZARDS.c.enterprise_id == firm_id)).scalars()
        assert sorted(stored) == ["到期 2022-07-01", "到期 2023-07-01", "资金"]


def test_self_assessment_notes_through_the_api_are_limited_like_the_page(world: World) -> None:
    firm_id = world.firms["home_key"]
    ok(fire(world, firm_id, "notify", "wujin"))
    ok(fire(world, firm_id, "start_self_assessment", "firm"))
    code = world.campaign.outline_items[0].code
    body = {"scores": scores(world), "notes": {code: "注" * 2001}}
    answer = world.client.post(f"/api/enterprises/{firm_id}/self-assessments", json=body, headers=world.as_("firm"))
    refused(answer, f"item {code}: self-assessment note is longer than 2000 characters")
    page = Browser(world, "firm").post(
        f"/firms/{firm_id}/self-assessment",
        data={f"score_{k}": str(v) for k, v in scores(world).items()} | {f"note_{code}": "注" * 2001},
    )
    assert page.status_code == 422 and f"条目 {code} 的自评说明超过 2000 字" in page.text
    body["notes"] = {code: "注" * 2000}
    ok(world.client.post(f"/api/enterprises/{firm_id}/self-assessments", json=body, headers=world.as_("firm")), 201)


def test_a_stored_value_babel_cannot_format_does_not_break_the_firm_page(world: World) -> None:
    firm_id = world.firms["home_key"]
    started(world, firm_id)
    h = hazard(world, firm_id, "旧数据")
    with world.engine.begin() as conn:  # stored before funds were bounded
        conn.execute(sa.update(HAZARDS).where(HAZARDS.c.id == h["id"]).values(funds=1e26))
    for user in ("firm", "wujin", "city"):
        page = Browser(world, user).get(f"/firms/{firm_id}")
        assert page.status_code == 200 and "旧数据" in page.text
    english = Browser(world, "city")
    english.get("/firms?lang=en")
    assert english.get(f"/firms/{firm_id}").status_code == 200


def test_uploads_and_self_assessments_are_events_with_what_changed(world: World) -> None:
    firm_id = world.firms["home_key"]
    started(world, firm_id)
    stored = ok(upload(world, firm_id, "application_form", name="申请表.pdf"), 201)
    *_, assessed, uploaded = events(world, firm_id)
    assert assessed.trigger == "self_assessment_recorded" and assessed.payload["total_score"] == 90.0
    assert uploaded.trigger == "evidence_uploaded" and uploaded.from_state == uploaded.to_state == "self_assessing"
    assert {k: uploaded.payload[k] for k in ("evidence_id", "sha256", "kind", "filename")} == {
        "evidence_id": stored["id"],
        "sha256": stored["sha256"],
        "kind": "application_form",
        "filename": "申请表.pdf",
    }
    history = json.dumps(world.firm(firm_id, "firm")["history"], ensure_ascii=False)
    assert history.count("申请表.pdf") == 1  # the upload's event, not also its row
    page = Browser(world, "firm").get(f"/firms/{firm_id}").text
    assert re.search(r"上传文件</strong>", page)
    with world.engine.connect() as conn:
        assert verify_chain(conn).ok
        assert conn.execute(sa.select(APPLICATIONS)).first() is None


def test_the_bulk_route_refuses_alike(world: World) -> None:
    home_key, home_other = world.firms["home_key"], world.firms["home_other"]
    started(world, home_key)
    started(world, home_other, "firm_other")
    for firm_id, user in ((home_key, "firm"), (home_other, "firm_other")):
        ok(upload(world, firm_id, "self_assessment_report", user), 201)
        ok(upload(world, firm_id, "application_form", user), 201)
        ok(fire(world, firm_id, "submit_application", user))
    items = [{"enterprise_id": home_key}, {"enterprise_id": home_other}]
    refused_all = ok(
        world.client.post("/api/bulk/transitions/verify", json={"items": items}, headers=world.as_("wujin"))
    )
    assert refused_all["fired"] == 0
    assert [(i["status"], i["error"]["code"]) for i in refused_all["items"]] == [(422, "guard_failed")] * 2
    assert all("a verification opinion is required" in i["error"]["message"] for i in refused_all["items"])
    verified = world.client.post(
        "/api/bulk/transitions/verify", json={"items": items, "data": OPINION}, headers=world.as_("wujin")
    )
    assert ok(verified)["fired"] == 2
    assert world.firm(home_other, "city")["application"]["verification_opinion"] == "材料齐全，与企业实际相符"
