"""Whole paths through the HTTP API as the right people: a key-field firm and a non-key firm end certified,
with the events, mail and certification the plan asks for."""

from __future__ import annotations

import io
from typing import Any

import sqlalchemy as sa

from tests.api_helpers import World
from tests.factories import sheet_for
from workflow.tables import CERTIFICATIONS, EVENTS, OUTBOX

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def walk_to_certified(
    world: World, firm_id: int, firm_user: str, organiser: str, scores: list[tuple[float, float]]
) -> Any:
    c = world.client
    ok(world.fire(firm_id, "notify", "wujin"))
    ok(world.fire(firm_id, "start_self_assessment", firm_user))
    outline = ok(c.get("/api/campaign/outline", headers=world.as_(firm_user)))
    scores_by_item = {item["code"]: item["points"] * 0.9 for element in outline for item in element["items"]}
    assessed = ok(
        c.post(
            f"/api/enterprises/{firm_id}/self-assessments",
            json={"scores": scores_by_item},
            headers=world.as_(firm_user),
        ),
        201,
    )
    assert assessed["total_score"] == 90.0

    hazard = ok(
        c.post(
            f"/api/enterprises/{firm_id}/hazards",
            json={
                "description": "危化品仓库通风不良",
                "severity": "general",
                "responsible_person": "王强",
                "measures": "加装防爆排风机",
                "funds": 12000,
                "deadline": "2022-08-15",
                "emergency_plan": "仓库泄漏应急预案",
            },
            headers=world.as_(firm_user),
        ),
        201,
    )
    ok(world.fire(firm_id, "report_hazards", firm_user))
    proof = ok(
        c.post(
            f"/api/enterprises/{firm_id}/evidence",
            data={"kind": "hazard_rectification", "hazard_id": str(hazard["id"])},
            files={"file": ("整改照片说明.pdf", io.BytesIO(PDF), "application/pdf")},
            headers=world.as_(firm_user),
        ),
        201,
    )
    ok(
        c.post(
            f"/api/hazards/{hazard['id']}/rectify",
            json={"evidence_sha256": proof["sha256"]},
            headers=world.as_(firm_user),
        )
    )
    ok(world.fire(firm_id, "finish_rectification", firm_user))

    report = ok(
        c.post(
            f"/api/enterprises/{firm_id}/evidence",
            data={"kind": "self_assessment_report"},
            files={"file": ("自评报告.pdf", io.BytesIO(PDF + b"report"), "application/pdf")},
            headers=world.as_(firm_user),
        ),
        201,
    )
    refused = world.fire(firm_id, "submit_application", firm_user)
    assert refused.status_code == 422 and "not uploaded: application form" in refused.json()["message"]
    ok(
        c.post(
            f"/api/enterprises/{firm_id}/evidence",
            data={"kind": "application_form"},
            files={"file": ("申请表.pdf", io.BytesIO(PDF + b"form"), "application/pdf")},
            headers=world.as_(firm_user),
        ),
        201,
    )
    materials = [{"sha256": report["sha256"], "name": report["filename"], "kind": report["kind"]}]
    ok(world.fire(firm_id, "submit_application", firm_user, {"materials": materials}))

    queue = ok(c.get("/api/worklists/verification", headers=world.as_("wujin")))
    application_id = next(i["application_id"] for i in queue["items"] if i["enterprise_id"] == firm_id)
    ok(world.fire(firm_id, "verify", "wujin", {"opinion": "材料齐全，与企业实际相符"}))
    assert application_id in [
        i["application_id"] for i in ok(c.get("/api/worklists/audit", headers=world.as_(organiser)))["items"]
    ]
    ok(world.fire(firm_id, "pass_audit", organiser))

    team = ok(c.post(f"/api/applications/{application_id}/team", json={}, headers=world.as_(organiser)), 201)
    assert len(team["reviewer_ids"]) == 3
    names = {v: k for k, v in world.users.items()}
    for reviewer_id, (online, onsite) in zip(team["reviewer_ids"], scores, strict=True):
        reviewer = names[reviewer_id]
        assigned = ok(c.get("/api/worklists/assignments", headers=world.as_(reviewer)))
        assert [i["application_id"] for i in assigned["items"]] == [application_id]
        ok(
            c.post(
                f"/api/applications/{application_id}/reviews",
                json={"sheet": sheet_for(world.campaign, online, onsite), "findings": []},
                headers=world.as_(reviewer),
            ),
            201,
        )
    reviewed = ok(c.post(f"/api/applications/{application_id}/review-result", json={}, headers=world.as_(organiser)))
    assert reviewed["to_state"] == "reviewed"

    assert firm_id in [
        i["enterprise_id"] for i in ok(c.get("/api/worklists/certification", headers=world.as_("city")))["items"]
    ]
    return ok(world.fire(firm_id, "certify", "city"))


def team_members(world: World, firm_id: int) -> list[int]:
    from workflow.tables import APPLICATIONS, REVIEW_ASSIGNMENTS

    with world.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(REVIEW_ASSIGNMENTS.c.reviewer_id)
                .join(APPLICATIONS, APPLICATIONS.c.id == REVIEW_ASSIGNMENTS.c.application_id)
                .where(APPLICATIONS.c.enterprise_id == firm_id)
            ).scalars()
        )


def test_a_key_field_firm_is_certified_through_the_api(world: World) -> None:
    firm_id = world.firms["home_key"]
    # team score = mean of 0.4 × online + 0.6 × on-site: (80, 92.4, 70) → 80.8 → 达标 (标杆 is the city's
    # later decision); no eligibility stated while nobody recorded whether it holds an earlier certificate
    certified = walk_to_certified(world, firm_id, "firm", "center", [(80, 80), (90, 94), (70, 70)])
    assert certified["to_state"] == "certified"
    assert certified["record"]["level"] == "compliant"
    assert certified["record"]["score"] == 80.8
    assert certified["record"]["eligible_level"] is None

    detail = world.firm(firm_id, "firm")
    assert detail["state"] == "certified" and detail["certification"]["level"] == "compliant"
    assert detail["name"] == '常州<武进>&"化工"有限公司'
    events = [h for h in detail["history"] if h["kind"] == "event"]
    assert [(e["trigger"], e["role"]) for e in events] == [
        ("notify", "district_bureau"),
        ("start_self_assessment", "enterprise"),
        ("self_assessment_recorded", "enterprise"),
        ("hazard_reported", "enterprise"),
        ("report_hazards", "enterprise"),
        ("evidence_uploaded", "enterprise"),
        ("hazard_rectified", "enterprise"),
        ("finish_rectification", "enterprise"),
        ("evidence_uploaded", "enterprise"),
        ("evidence_uploaded", "enterprise"),
        ("submit_application", "enterprise"),
        ("verify", "district_bureau"),
        ("pass_audit", "support_center"),
        ("review_draw_team", "support_center"),
        ("review_scored", "reviewer"),
        ("review_scored", "reviewer"),
        ("review_scored", "reviewer"),
        ("record_review", "support_center"),
        ("certify", "city_bureau"),
    ]
    uploads = [e["payload"]["filename"] for e in events if e["trigger"] == "evidence_uploaded"]
    assert uploads == ["整改照片说明.pdf", "自评报告.pdf", "申请表.pdf"]
    assert [h for h in detail["history"] if h["kind"] == "evidence"] == []  # each upload is its event
    with world.engine.connect() as conn:
        kinds = [
            r.kind
            for r in conn.execute(sa.select(OUTBOX).where(OUTBOX.c.enterprise_id == firm_id).order_by(OUTBOX.c.id))
        ]
        cert = conn.execute(sa.select(CERTIFICATIONS).where(CERTIFICATIONS.c.enterprise_id == firm_id)).one()
        actors = {r.actor for r in conn.execute(sa.select(EVENTS.c.actor).where(EVENTS.c.enterprise_id == firm_id))}
    assert kinds == [
        "mobilization_notice",
        "application_received",
        "audit_outcome",
        "reviewer_assignment",
        "reviewer_assignment",
        "reviewer_assignment",
        "certification",
    ]
    assert (cert.level, cert.score, cert.eligible_level) == ("compliant", 80.8, None)
    # the team's members sign their own scores in the firm's chain
    members = {names for names, uid in world.users.items() if uid in {int(r) for r in team_members(world, firm_id)}}
    assert actors == {"wujin", "firm", "center", "city"} | members and len(members) == 3


def test_a_non_key_firm_is_audited_and_reviewed_by_its_district(world: World) -> None:
    firm_id = world.firms["home_other"]
    # the support center has no part in a non-key firm's audit
    ok(world.fire(firm_id, "notify", "wujin"))
    certified = walk_to_certified_from_notified(world, firm_id)
    assert certified["record"]["level"] == "compliant"
    assert certified["record"]["eligible_level"] is None


def walk_to_certified_from_notified(world: World, firm_id: int) -> Any:
    # re-use the walk, which starts by notifying: the district may not notify twice
    response = world.fire(firm_id, "notify", "wujin")
    assert response.status_code == 422 and response.json()["guard"] == "not_yet_notified"
    c = world.client
    ok(world.fire(firm_id, "start_self_assessment", "firm_other"))
    outline = ok(c.get("/api/campaign/outline", headers=world.as_("firm_other")))
    ok(
        c.post(
            f"/api/enterprises/{firm_id}/self-assessments",
            json={"scores": {i["code"]: i["points"] * 0.7 for e in outline for i in e["items"]}},
            headers=world.as_("firm_other"),
        ),
        201,
    )
    for kind in ("self_assessment_report", "application_form"):
        ok(
            c.post(
                f"/api/enterprises/{firm_id}/evidence",
                data={"kind": kind},
                files={"file": (f"{kind}.pdf", io.BytesIO(PDF + kind.encode()), "application/pdf")},
                headers=world.as_("firm_other"),
            ),
            201,
        )
    ok(world.fire(firm_id, "submit_application", "firm_other"))
    ok(world.fire(firm_id, "verify", "wujin", {"opinion": "材料齐全，与企业实际相符"}))
    refused = world.fire(firm_id, "pass_audit", "center")
    assert refused.status_code == 403 and refused.json()["code"] == "not_allowed"
    ok(world.fire(firm_id, "pass_audit", "wujin"))
    application_id = ok(c.get(f"/api/enterprises/{firm_id}", headers=world.as_("wujin")))["application"]["id"]
    team = ok(c.post(f"/api/applications/{application_id}/team", json={}, headers=world.as_("wujin")), 201)
    names = {v: k for k, v in world.users.items()}
    for reviewer_id in team["reviewer_ids"]:
        ok(
            c.post(
                f"/api/applications/{application_id}/reviews",
                json={"sheet": sheet_for(world.campaign, 65, 68)},
                headers=world.as_(names[reviewer_id]),
            ),
            201,
        )
    ok(c.post(f"/api/applications/{application_id}/review-result", json={}, headers=world.as_("wujin")))
    return ok(world.fire(firm_id, "certify", "city"))
