"""The access matrix: every route × every role × a record in and out of the role's scope. A wrong role is
403, a record outside the scope is 404 (its existence is not revealed), and a route without an access
rule — or without a case here — fails the test, so no route can be added without deciding who may use it."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute

from api.app import ROUTERS
from api.deps import Allow, Public
from states import Role
from tests.api_helpers import ELSEWHERE, HOME, World
from tests.factories import sheet_for
from tests.test_api_paths import PDF, ok
from workflow.tables import ESCALATIONS, GUIDANCE_ASSIGNMENTS, REFERRALS

USERS = {
    Role.city_bureau: "city",
    Role.support_center: "center",
    Role.district_bureau: "wujin",
    Role.local_government: "wujin_gov",
    Role.enterprise: "firm",
    Role.reviewer: "expert1",  # replaced by a member of the drawn team in `setup_records`
}


def rule_of(route: APIRoute) -> Allow | Public | None:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Allow | Public):
            return dep.call
        stack.extend(dep.dependencies)
    return None


def all_routes() -> list[APIRoute]:
    return [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]


def test_every_route_has_an_access_rule() -> None:
    missing = [f"{sorted(r.methods)} {r.path}" for r in all_routes() if rule_of(r) is None]
    assert missing == []


def test_the_openapi_description_lists_exactly_these_routes(world: World) -> None:
    documented = {
        (method.upper(), path)
        for path, item in world.client.get("/openapi.json").json()["paths"].items()
        for method in item
    }
    routed = {(m, r.path) for r in all_routes() for m in r.methods}
    assert documented == routed


def setup_records(world: World) -> dict[str, Any]:
    """Firms at useful points of the path, with hazards, evidence, applications and a review team."""
    c, f = world.client, world.firms
    world.add_user("firm_away", Role.enterprise, enterprise_id=f["away_key"])
    world.add_user("liyang_firm_other", Role.enterprise, enterprise_id=f["away_other"])
    world.add_user("spare", Role.reviewer, organisation="未培训人员")  # untrained: never drawn
    outline = ok(c.get("/api/campaign/outline", headers=world.as_("firm")))
    scores = {i["code"]: i["points"] for e in outline for i in e["items"]}
    hazards, evidence, applications = {}, {}, {}
    for name, user, district in [
        ("home_key", "firm", "wujin"),
        ("home_other", "firm_other", "wujin"),
        ("away_key", "firm_away", "liyang"),
    ]:
        firm_id = f[name]
        ok(world.fire(firm_id, "notify", district))
        ok(world.fire(firm_id, "start_self_assessment", user))
        ok(
            c.post(f"/api/enterprises/{firm_id}/self-assessments", json={"scores": scores}, headers=world.as_(user)),
            201,
        )
        hazard = ok(
            c.post(
                f"/api/enterprises/{firm_id}/hazards",
                json={
                    "description": "安全出口堵塞",
                    "responsible_person": "甲",
                    "measures": "清理",
                    "funds": 0,
                    "deadline": "2022-08-01",
                    "emergency_plan": "疏散预案",
                },
                headers=world.as_(user),
            ),
            201,
        )
        proof = ok(
            c.post(
                f"/api/enterprises/{firm_id}/evidence",
                data={"kind": "rectification", "hazard_id": str(hazard["id"])},
                files={"file": (f"{name}-整改.pdf", io.BytesIO(PDF + b"fix" + name.encode()), "application/pdf")},
                headers=world.as_(user),
            ),
            201,
        )
        ok(c.post(f"/api/hazards/{hazard['id']}/rectify", json={"evidence_id": proof["id"]}, headers=world.as_(user)))
        hazards[name] = hazard["id"]
        for kind in ("self_assessment_report", "application_form"):
            ok(
                c.post(
                    f"/api/enterprises/{firm_id}/evidence",
                    data={"kind": kind},
                    files={
                        "file": (
                            f"{name}-{kind}.pdf",
                            io.BytesIO(PDF + kind.encode() + name.encode()),
                            "application/pdf",
                        )
                    },
                    headers=world.as_(user),
                ),
                201,
            )
        evidence[name] = ok(
            c.post(
                f"/api/enterprises/{firm_id}/evidence",
                data={"kind": "application_material"},
                files={"file": (f"{name}.pdf", io.BytesIO(PDF + name.encode()), "application/pdf")},
                headers=world.as_(user),
            ),
            201,
        )["id"]
        ok(world.fire(firm_id, "submit_application", user))
        applications[name] = world.firm(firm_id, "city")["application"]["id"]
    ok(world.fire(f["home_key"], "verify", "wujin", {"opinion": "材料齐全"}))
    ok(world.fire(f["home_key"], "pass_audit", "center"))
    team = ok(c.post(f"/api/applications/{applications['home_key']}/team", json={}, headers=world.as_("center")), 201)
    ok(world.fire(f["home_other"], "verify", "wujin", {"opinion": "材料齐全"}))
    ok(world.fire(f["home_other"], "pass_audit", "wujin"))
    names = {v: k for k, v in world.users.items()}
    report = ok(
        c.post(
            "/api/reviewer-reports",
            json={"reviewer_id": world.users["spare"], "enterprise_id": f["home_key"], "description": "收受咨询费"},
            headers=world.as_("wujin"),
        ),
        201,
    )
    escalations, referrals = {}, {}
    with world.engine.begin() as conn:
        for side, firm in (("home", "home_other"), ("away", "away_key")):
            district = "320412" if side == "home" else "320481"
            escalations[side] = conn.execute(
                sa.insert(ESCALATIONS).values(
                    dedupe_key=f"test:{side}",
                    rule="creation_end",
                    subject_kind="enterprise",
                    subject_id=f[firm],
                    enterprise_id=f[firm],
                    district_code=district,
                    step="district",
                    deadline=dt.date(2022, 6, 1),
                    days_overdue=30,
                    status="open",
                    detail={},
                    created_at=world.clock.now(),
                )
            ).inserted_primary_key[0]
            referrals[side] = conn.execute(
                sa.insert(REFERRALS).values(
                    dedupe_key=f"test:{side}",
                    enterprise_id=f["home_key" if side == "home" else "away_key"],
                    district_code=district,
                    grounds="non_participating",
                    status="confirmed",
                    detail={},
                    proposed_at=world.clock.now(),
                    proposed_by="test",
                )
            ).inserted_primary_key[0]
    return {
        "escalations": escalations,
        "referrals": referrals,
        "users": USERS | {Role.reviewer: names[team["reviewer_ids"][0]]},
        "hazards": hazards,
        "evidence": evidence,
        "applications": applications,
        "spare": world.users["spare"],
        "team_reviewers": team["reviewer_ids"],
        "report": report["id"],
    }


def ids_for(records: dict[str, Any], world: World, scope: str, role: Role, inside: bool) -> dict[str, Any] | None:
    """Path parameters naming a record inside (or outside) the role's scope; None when there is none."""
    f = world.firms
    firm_in = {Role.district_bureau: "home_other", Role.enterprise: "home_key"}.get(role, "home_key")
    firm_out = {
        Role.district_bureau: "away_key",
        Role.enterprise: "home_other",
        Role.reviewer: "away_key",
        Role.local_government: "away_key",
    }.get(role)
    everything = role in (Role.city_bureau, Role.support_center)
    if scope in ("none", "self"):
        return {} if inside else None
    if not inside and (everything or firm_out is None):
        return None
    name = firm_in if inside else firm_out
    assert name is not None
    match scope:
        case "enterprise":
            return {"enterprise_id": f[name]}
        case "hazard":
            return {"hazard_id": records["hazards"][name]}
        case "application":
            return {"application_id": records["applications"][name]}
        case "evidence":
            return {"evidence_id": records["evidence"][name]}
        case "reviewer":
            return {"reviewer_id": records["spare"]} if inside else None
        case "escalation":
            return {"escalation_id": records["escalations"]["home" if inside else "away"]}
        case "referral":
            return {"referral_id": records["referrals"]["home" if inside else "away"]}
        case "guidance":
            return {"assignment_id": records["guidance"]["home" if inside else "away"]}
        case "reviewer_report":
            return {"report_id": records["report"]} if inside else None
    raise AssertionError(f"no sample records for scope {scope}")


TRIGGER_FOR = {
    Role.city_bureau: "close",  # no reason given: refused by its guard, nothing changes
    Role.support_center: "pass_audit",
    Role.district_bureau: "close",
    Role.enterprise: "finish_rectification",
    Role.reviewer: "verify",
    Role.local_government: "verify",
}


def add_guidance(world: World) -> dict[str, int]:
    """An expert assigned to a firm of the home district and one elsewhere."""
    ids = {}
    with world.engine.begin() as conn:
        for side, name, district in (("home", "home_other", HOME), ("away", "away_key", ELSEWHERE)):
            result = conn.execute(
                sa.insert(GUIDANCE_ASSIGNMENTS).values(
                    enterprise_id=world.firms[name],
                    district_code=district,
                    person="王工",
                    kind="expert",
                    from_date=dt.date(2022, 6, 1),
                    assigned_by="test",
                    assigned_at=world.clock.now(),
                )
            )
            assert result.inserted_primary_key is not None
            ids[side] = int(result.inserted_primary_key[0])
    return ids


def request_for(route: APIRoute, method: str, username: str, world: World) -> dict[str, Any]:
    """A valid body for each route (so the answer speaks about access, not about a malformed request)."""
    key = (method, route.path)
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/api/auth/token"): {"data": {"username": username, "password": "correct horse battery"}},
        ("POST", "/api/enterprises/{enterprise_id}/transitions/{trigger}"): {"json": {"version": 1}},
        ("POST", "/api/enterprises/{enterprise_id}/self-assessments"): {"json": {"scores": {}}},
        ("POST", "/api/enterprises/{enterprise_id}/hazards"): {"json": {"description": "楼梯扶手松动"}},
        ("PATCH", "/api/hazards/{hazard_id}"): {"json": {"measures": "加固"}},
        ("POST", "/api/hazards/{hazard_id}/rectify"): {"json": {}},
        ("POST", "/api/hazards/{hazard_id}/accept"): {"json": {}},
        ("POST", "/api/hazards/{hazard_id}/reject"): {"json": {"note": "整改佐证不足"}},
        ("POST", "/api/enterprises/{enterprise_id}/evidence"): {
            "data": {"kind": "application_material"},
            "files": {"file": ("材料.pdf", io.BytesIO(PDF), "application/pdf")},
        },
        ("POST", "/api/applications/{application_id}/team"): {"json": {}},
        ("POST", "/api/applications/{application_id}/reviews"): {"json": {"sheet": sheet_for(world.campaign, 80)}},
        ("POST", "/api/applications/{application_id}/team/redraw"): {"json": {"reason": ""}},  # refused: no reason
        ("POST", "/api/applications/{application_id}/recusals"): {"json": {"reason": ""}},  # refused: no reason
        ("POST", "/api/reviewers/{reviewer_id}/employer"): {"json": {"enterprise_id": world.firms["away_other"]}},
        ("POST", "/api/reviewer-reports"): {
            "json": {
                "reviewer_id": world.users["spare"],
                "enterprise_id": world.firms["home_other"],
                "description": "x",
            }
        },
        ("POST", "/api/reviewer-reports/{report_id}/decision"): {"json": {"decision": "dismiss", "note": "查无实据"}},
        ("POST", "/api/applications/{application_id}/review-result"): {"json": {}},
        ("POST", "/api/reviewers/{reviewer_id}/consultancies"): {"json": {"enterprise_id": world.firms["away_other"]}},
        ("POST", "/api/reviewers/{reviewer_id}/disqualify"): {"json": {"reason": "替企业代写材料"}},
        ("POST", "/api/auth/logout"): {},
        ("POST", "/api/escalations/{escalation_id}/acknowledge"): {},
        ("POST", "/api/escalations/cases/acknowledge"): {
            "json": {"cases": [{"enterprise_id": world.firms["home_other"], "rule": "creation_end"}]}
        },
        ("POST", "/api/referrals"): {
            "json": {"enterprise_id": world.firms["home_key"], "grounds": "non_participating"}
        },
        ("POST", "/api/referrals/{referral_id}/confirm"): {"json": {}},
        ("POST", "/api/referrals/{referral_id}/decline"): {"json": {}},
        ("POST", "/api/referrals/{referral_id}/acknowledge"): {},
        ("POST", "/api/enterprises/{enterprise_id}/guidance"): {
            "json": {"person": "王工", "kind": "expert", "from_date": "2022-06-01"}
        },
        ("POST", "/api/guidance/{assignment_id}/visits"): {"json": {"visited_on": "2022-06-15", "note": "现场指导"}},
        ("POST", "/api/bulk/transitions/{trigger}"): {
            "json": {"items": [{"enterprise_id": world.firms["home_other"]}]}
        },
        ("GET", "/api/inspections/plan"): {"params": {"month": "2022-07"}},
        ("POST", "/api/users/{username}/disable"): {},
        ("POST", "/api/users/{username}/enable"): {},
        ("POST", "/api/users/{username}/reset-password"): {"json": {"password": "a long new passphrase"}},
        ("POST", "/api/users/{username}/revoke-sessions"): {},
        ("POST", "/api/enterprises/{enterprise_id}/benchmark"): {"json": {"reason": "示范"}},
        ("POST", "/api/enterprises/{enterprise_id}/benchmark/withdraw"): {"json": {"reason": "复查"}},
        ("PUT", "/api/enterprises/{enterprise_id}/prior-certificate"): {"json": {"level": "none"}},
        ("POST", "/api/enterprises/{enterprise_id}/inspections"): {
            "json": {"kind": "online", "held_on": "2022-06-20", "inspectors": ["王科长"], "items_checked": []}
        },
        ("POST", "/api/enterprises/{enterprise_id}/inspections/evidence"): {
            "files": {"file": ("检查照片.pdf", io.BytesIO(PDF), "application/pdf")}
        },
        ("POST", "/api/trainings"): {
            "json": {"kind": "training", "held_on": "2022-06-20", "topic": "专项培训", "attendees": {}}
        },
    }
    if (method in ("POST", "PATCH", "PUT") or "plan" in route.path) and key not in bodies:
        raise AssertionError(f"add a sample request for {method} {route.path} to this test")
    return bodies.get(key, {})


def test_every_route_for_every_role_in_and_out_of_scope(world: World) -> None:
    records = setup_records(world)
    world.add_user("managed", Role.enterprise, enterprise_id=world.firms["home_other"])  # for /api/users/…
    records["guidance"] = add_guidance(world)
    checked = 0
    for route in all_routes():
        rule = rule_of(route)
        assert rule is not None
        for method in sorted(route.methods):
            for role in Role:
                for inside in (True, False):
                    scope = "none" if isinstance(rule, Public) else rule.scope
                    params = ids_for(records, world, scope, role, inside)
                    if params is None:
                        continue
                    if "{trigger}" in route.path:
                        params["trigger"] = TRIGGER_FOR[role]
                    if "{username}" in route.path:
                        params["username"] = "managed"
                    path = route.path.format(**params)
                    username = records["users"][role]
                    if route.path == "/api/auth/logout":
                        world.tokens.pop(username, None)  # a fresh token, for this one to revoke
                    headers = {} if isinstance(rule, Public) else world.as_(username)
                    response = world.client.request(
                        method, path, headers=headers, **request_for(route, method, username, world)
                    )
                    if route.path == "/api/auth/logout":
                        world.tokens.pop(username, None)
                    label = f"{method} {path} as {role.value} ({'in' if inside else 'out of'} scope)"
                    allowed = isinstance(rule, Public) or rule.roles is None or role in rule.roles
                    if not allowed:
                        assert response.status_code == 403, f"{label}: {response.status_code} {response.text}"
                        assert response.json()["code"] == "not_allowed"
                    elif not inside:
                        assert response.status_code == 404, f"{label}: {response.status_code} {response.text}"
                    else:
                        assert response.status_code not in (401, 403, 404), (
                            f"{label}: {response.status_code} {response.text}"
                        )
                        assert response.status_code < 500, label
                    checked += 1
    assert checked > 100


def test_a_request_without_a_token_is_401(world: World) -> None:
    for path in ("/api/enterprises", "/api/me", f"/api/enterprises/{world.firms['home_key']}"):
        response = world.client.get(path)
        assert response.status_code == 401 and response.json()["code"] == "not_signed_in"
    expired = world.client.get("/api/me", headers={"Authorization": "Bearer not-a-token"})
    assert expired.status_code == 401


def test_lists_are_cut_to_the_scope(world: World) -> None:
    def codes(username: str, **params: Any) -> set[int]:
        body = ok(world.client.get("/api/enterprises", params=params, headers=world.as_(username)))
        return {item["id"] for item in body["items"]}

    f = world.firms
    assert codes("city") == set(f.values())
    assert codes("wujin") == {f["home_key"], f["home_other"]}
    assert codes("wujin", district="320481") == set()  # asking for another district shows nothing
    assert codes("firm") == {f["home_key"]}
    assert codes("city", key_field="true") == {f["home_key"], f["away_key"]}
    assert codes("city", q="武进") == {f["home_key"]}
    assert codes("city", state="closed") == set()
    bad = world.client.get("/api/enterprises", params={"state": "flying"}, headers=world.as_("city"))
    assert bad.status_code == 422 and "unknown state: flying" in bad.json()["message_en"]


@pytest.mark.parametrize("page_size", [0, 201])
def test_page_sizes_are_bounded(world: World, page_size: int) -> None:
    response = world.client.get("/api/enterprises", params={"page_size": page_size}, headers=world.as_("city"))
    assert response.status_code == 422 and response.json()["code"] == "invalid_input"


def test_dates_in_the_world_are_inside_the_evaluation_window(world: World) -> None:
    assert world.clock.now().date() == dt.date(2022, 7, 1)
