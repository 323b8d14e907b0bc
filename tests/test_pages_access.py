"""Page access follows the API's matrix: every page route × every role × a record in and out of the role's
scope. A wrong role gets the 403 page, a record outside the scope the 404 page (its existence is not
revealed), no session the sign-in form; a route without an access rule — or without a case here — fails.
Also: forms without this session's CSRF token are refused, and every page carries the security headers."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.pages import ROUTERS
from api.pages.access import SESSION_COOKIE, Page, PagePublic, csrf_token
from states import Role
from tests.api_helpers import ELSEWHERE, HOME, PASSWORD, World
from tests.test_api_access import add_guidance, setup_records
from tests.test_api_paths import PDF
from workflow.safety_code import code_for, code_key
from workflow.tables import ESCALATIONS, EVENTS, REFERRALS


def rule_of(route: APIRoute) -> Page | PagePublic | None:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Page | PagePublic):
            return dep.call
        stack.extend(dep.dependencies)
    return None


def page_routes() -> list[APIRoute]:
    return [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]


class Browser:
    """One signed-in person: a client of its own with the session cookie from the real sign-in form."""

    def __init__(self, world: World, username: str | None) -> None:
        self.client = TestClient(world.client.app, follow_redirects=False)
        self.username = username
        self.token = ""
        if username is not None:
            form = self.client.get("/login")
            answer = self.client.post(
                "/login",
                data={"username": username, "password": PASSWORD, "csrf": csrf_field(form.text)},
            )
            assert answer.status_code == 303, answer.text
            self.token = self.client.cookies[SESSION_COOKIE]

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, **kw)

    def post(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        return self.client.post(path, data={"csrf": self.csrf, **(data or {})}, **kw)


def csrf_field(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]*)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def add_referrals(world: World, status: str = "confirmed") -> dict[str, int]:
    """A referral the city confirmed in the home district and one elsewhere (a local government sees only
    confirmed ones)."""
    ids = {}
    with world.engine.begin() as conn:
        for name, district in (("home_key", HOME), ("away_key", ELSEWHERE)):
            result = conn.execute(
                sa.insert(REFERRALS).values(
                    dedupe_key=f"referral:non_participating:enterprise:{world.firms[name]}",
                    enterprise_id=world.firms[name],
                    district_code=district,
                    grounds="non_participating",
                    status=status,
                    detail={},
                    proposed_at=world.clock.now(),
                    proposed_by="test",
                )
            )
            assert result.inserted_primary_key is not None
            ids[name] = int(result.inserted_primary_key[0])
    return ids


def add_escalations(world: World) -> dict[str, int]:
    """An open escalation at the district step in the home district and one elsewhere."""
    ids = {}
    with world.engine.begin() as conn:
        for name, district in (("home_key", HOME), ("away_key", ELSEWHERE)):
            result = conn.execute(
                sa.insert(ESCALATIONS).values(
                    dedupe_key=f"key_field_started:{world.firms[name]}:district",
                    rule="key_field_started",
                    subject_kind="enterprise",
                    subject_id=world.firms[name],
                    enterprise_id=world.firms[name],
                    district_code=district,
                    step="district",
                    deadline=world.clock.now().date(),
                    days_overdue=8,
                    status="open",
                    detail={},
                    created_at=world.clock.now(),
                )
            )
            assert result.inserted_primary_key is not None
            ids[name] = int(result.inserted_primary_key[0])
    return ids


def ids_for(records: dict[str, Any], world: World, scope: str, role: Role, inside: bool) -> dict[str, Any] | None:
    """Path parameters naming a record inside (or outside) the role's scope; None when there is none."""
    f = world.firms
    everything = role in (Role.city_bureau, Role.support_center)
    if scope in ("none", "self"):
        return {} if inside else None
    if scope == "district":
        if role is Role.district_bureau or everything:
            return {"district_code": HOME} if inside else (None if everything else {"district_code": ELSEWHERE})
        return {"district_code": HOME} if inside else None
    if scope == "escalation":
        if role in (Role.city_bureau, Role.support_center):
            return {"escalation_id": records["escalations"]["home_key"]} if inside else None
        return {"escalation_id": records["escalations"]["home_key" if inside else "away_key"]}
    if scope == "reviewer_report":
        return {"report_id": records["report"]} if inside else None
    if scope == "referral":
        if role is Role.city_bureau:
            return {"referral_id": records["referrals"]["home_key"]} if inside else None
        return {"referral_id": records["referrals"]["home_key" if inside else "away_key"]}
    if scope == "guidance":
        if role is Role.city_bureau:
            return {"assignment_id": records["guidance"]["home"]} if inside else None
        return {"assignment_id": records["guidance"]["home" if inside else "away"]}
    firm_in = {Role.district_bureau: "home_other", Role.enterprise: "home_key"}.get(role, "home_key")
    firm_out = {
        Role.district_bureau: "away_key",
        Role.enterprise: "home_other",
        Role.reviewer: "away_key",
        Role.local_government: "away_key",
    }.get(role)
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
    raise AssertionError(f"no sample records for scope {scope}")


TRIGGER_FOR = {
    Role.city_bureau: "close",  # no reason given: refused by its guard, nothing changes
    Role.support_center: "pass_audit",
    Role.district_bureau: "close",
    Role.enterprise: "finish_rectification",
    Role.reviewer: "verify",
    Role.local_government: "verify",
}
DECISION_FOR = {Role.city_bureau: "decline", Role.local_government: "acknowledge"}


def safety_code(world: World, firm_id: int) -> str:
    with world.engine.connect() as conn:
        return code_for(code_key(conn), firm_id)


def form_for(route: APIRoute, method: str, world: World) -> dict[str, Any]:
    """A well-formed form for each page that takes one (so the answer speaks about access)."""
    forms: dict[str, dict[str, Any]] = {
        "/login": {"data": {"username": "nobody", "password": "wrong password"}},  # 401: about the password
        "/escalations/acknowledge": {"data": {"case": f"{world.firms['home_key']}:key_field_started"}},
        "/outbox/{outbox_id}/retry": {},
        "/logout": {},
        "/firms/{enterprise_id}/transitions/{trigger}": {"data": {"version": "1"}},
        "/firms/{enterprise_id}/self-assessment": {"data": {"score_1.1": "1"}},
        "/firms/{enterprise_id}/hazards": {"data": {"description": "楼梯扶手松动"}},
        "/hazards/{hazard_id}": {"data": {"measures": "加固"}},
        "/hazards/{hazard_id}/rectify": {},
        "/hazards/{hazard_id}/accept": {},
        "/hazards/{hazard_id}/reject": {"data": {"note": "整改佐证不足"}},
        "/firms/{enterprise_id}/evidence": {
            "data": {"kind": "application_material"},
            "files": {"file": ("材料.pdf", io.BytesIO(PDF), "application/pdf")},
        },
        "/applications/{application_id}/scores": {
            "data": {f"{part}_{e.code}": "1" for e in world.campaign.outline for part in ("online", "on_site")}
        },
        "/applications/{application_id}/team": {},
        "/applications/{application_id}/redraw": {"data": {"reason": ""}},  # refused: no reason
        "/applications/{application_id}/recusal": {"data": {"reason": ""}},  # refused: no reason
        "/reviewer-reports": {
            "data": {"reviewer_id": str(world.users["spare"]), "enterprise_id": str(world.firms["home_other"])}
        },
        "/reviewer-reports/{report_id}/decision": {"data": {"decision": "dismiss", "note": "查无实据"}},
        "/applications/{application_id}/review-result": {"data": {"version": "1"}},
        "/referrals/{referral_id}/{decision}": {"data": {"note": "核查"}},
        "/firms/{enterprise_id}/referral": {"data": {"grounds": "non_participating"}},
        "/escalations/{escalation_id}/acknowledge": {},
        "/users/{username}/{action}": {},
        "/firms/{enterprise_id}/benchmark": {"data": {"reason": "示范"}},
        "/firms/{enterprise_id}/prior-certificate": {"data": {"level": "none"}},
        "/firms/{enterprise_id}/inspections": {"data": {"kind": "online", "held_on": "2022-06-20"}},
        "/districts/{district_code}/trainings": {"data": {"kind": "training", "held_on": "2022-06-20"}},
        "/firms/{enterprise_id}/guidance": {"data": {"person": "王工", "kind": "expert", "from_date": "2022-06-01"}},
        "/guidance/{assignment_id}/visits": {"data": {"visited_on": "2022-06-15", "note": "现场指导"}},
        "/work/batch": {"data": {"trigger": "verify", "kind": "verification"}},  # no firm ticked: refused, 422
    }
    if method == "POST" and route.path not in forms:
        raise AssertionError(f"add a sample form for {method} {route.path} to this test")
    return forms.get(route.path, {}) if method == "POST" else {}


def test_every_page_route_has_an_access_rule() -> None:
    missing = [f"{sorted(r.methods)} {r.path}" for r in page_routes() if rule_of(r) is None]
    assert missing == []
    assert len(page_routes()) > 20


def test_every_page_for_every_role_in_and_out_of_scope(world: World) -> None:
    records = setup_records(world)
    records["referrals"] = add_referrals(world)
    records["escalations"] = add_escalations(world)
    records["guidance"] = add_guidance(world)
    from tests.test_outbox_page import mail  # (that module reads this one's Browser)

    records["outbox"] = mail(world, "access", status="failed", last_error="550 refused")
    users = records["users"]
    browsers = {role: Browser(world, users[role]) for role in Role}
    checked = 0
    for route in page_routes():
        rule = rule_of(route)
        assert rule is not None
        for method in sorted(route.methods):
            for role in Role:
                for inside in (True, False):
                    scope = "none" if isinstance(rule, PagePublic) else rule.scope
                    params = ids_for(records, world, scope, role, inside)
                    if params is None:
                        continue
                    if "{trigger}" in route.path:
                        params["trigger"] = TRIGGER_FOR[role]
                    if "{username}" in route.path:
                        params |= {"username": "firm_other", "action": "revoke-sessions"}
                    if "{decision}" in route.path:
                        params["decision"] = DECISION_FOR.get(role, "decline")
                    if "{outbox_id}" in route.path:  # the city bureau sees every message: no scope to cut
                        params["outbox_id"] = records["outbox"]
                    if "{token}" in route.path:  # a firm's safety code: anyone may scan it
                        params["token"] = safety_code(world, world.firms["home_key"])
                    path = route.path.format(**params)
                    browser = browsers[role]
                    form = form_for(route, method, world)
                    if route.path == "/logout":
                        browser = Browser(world, users[role])  # a session of its own, for this one to end
                    if method == "POST" and route.path == "/login":  # its token is bound to the server's nonce
                        fresh = TestClient(world.client.app, follow_redirects=False)
                        form["data"]["csrf"] = csrf_field(fresh.get("/login").text)
                        response = fresh.post(path, **form)
                    elif method == "POST":
                        response = browser.post(path, **form)
                    else:
                        response = browser.get(path)
                    label = f"{method} {path} as {role.value} ({'in' if inside else 'out of'} scope)"
                    allowed = isinstance(rule, PagePublic) or rule.roles is None or role in rule.roles
                    if not allowed:
                        assert response.status_code == 403, f"{label}: {response.status_code}"
                        assert "无权访问" in response.text and response.headers["content-type"].startswith("text/html")
                    elif not inside:
                        assert response.status_code == 404, f"{label}: {response.status_code}"
                        assert "找不到该页面或记录" in response.text
                    else:
                        refused = (403, 404) if route.path == "/login" else (401, 403, 404)
                        assert response.status_code not in refused, f"{label}: {response.status_code}"
                        assert response.status_code < 500, label
                    checked += 1
    assert checked > 150


def test_without_a_session_every_page_but_sign_in_sends_you_to_sign_in(world: World) -> None:
    anonymous = Browser(world, None)
    for route in page_routes():
        if isinstance(rule_of(route), PagePublic):
            continue
        path = re.sub(r"\{[a-z_]+\}", "1", route.path)
        for method in route.methods:
            response = anonymous.client.request(method, path)
            assert response.status_code == 303, f"{method} {path}: {response.status_code}"
            assert response.headers["location"].startswith("/login")
    # the page asked for comes back after signing in, but never another site
    assert anonymous.get("/firms?state=applied").headers["location"] == "/login?next=%2Ffirms%3Fstate%3Dapplied"
    form = anonymous.get("/login?next=//evil.example/x")
    signed = anonymous.client.post(
        "/login",
        data={"username": "wujin", "password": PASSWORD, "csrf": csrf_field(form.text), "next": "//evil.example/x"},
    )
    assert signed.status_code == 303 and signed.headers["location"] == f"/districts/{HOME}"


def test_a_form_without_this_sessions_csrf_token_is_refused_and_changes_nothing(world: World) -> None:
    firm = world.firms["home_key"]
    district = Browser(world, "wujin")
    other = Browser(world, "liyang")
    before = events_of(world, firm)
    for data in ({}, {"csrf": "0" * 64}, {"csrf": other.csrf}):  # none, forged, another session's
        response = district.client.post(f"/firms/{firm}/transitions/notify", data={"version": "1", **data})
        assert response.status_code == 403
        assert "表单已失效" in response.text and "防伪令牌" in response.text
    assert events_of(world, firm) == before
    done = district.post(f"/firms/{firm}/transitions/notify", data={"version": "1"})
    assert done.status_code == 303 and events_of(world, firm) == before + 1
    # the sign-in form has a token too (bound to a cookie set with the form)
    bare = TestClient(world.client.app, follow_redirects=False)
    refused = bare.post("/login", data={"username": "wujin", "password": PASSWORD, "csrf": "x"})
    assert refused.status_code == 403 and SESSION_COOKIE not in bare.cookies


def events_of(world: World, firm_id: int) -> int:
    with world.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).where(EVENTS.c.enterprise_id == firm_id)).scalar_one())


@pytest.mark.parametrize(
    "path", ["/login", "/districts/320412", "/firms", "/firms/{firm}", "/no-such-page", "/dashboard"]
)
def test_pages_carry_the_security_headers(world: World, path: str) -> None:
    district = Browser(world, "wujin")
    response = district.get(path.format(firm=world.firms["home_key"]))
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["cache-control"] == "no-store"
    assert "<script>" not in response.text and " on" + "click=" not in response.text  # no inline script
    for src in re.findall(r'<script[^>]*\ssrc="([^"]+)"', response.text):
        assert src.startswith("/static/")
    assert "http://" not in re.sub(r'xmlns="[^"]*"', "", response.text.split("</head>")[0])


def test_the_session_cookie_is_http_only_and_same_site_and_logout_revokes_it(world: World) -> None:
    bare = TestClient(world.client.app, follow_redirects=False)
    form = bare.get("/login")
    answer = bare.post("/login", data={"username": "firm", "password": PASSWORD, "csrf": csrf_field(form.text)})
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and v.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    token = bare.cookies[SESSION_COOKIE]
    assert answer.headers["location"] == f"/firms/{world.firms['home_key']}"
    out = bare.post("/logout", data={"csrf": csrf_token(token)})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    replay = TestClient(world.client.app, follow_redirects=False, cookies={SESSION_COOKIE: token})
    assert replay.get("/firms").status_code == 303  # the old token no longer opens anything
    api = world.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 401


def test_wrong_passwords_are_throttled_and_lock_the_account_as_in_the_api(world: World) -> None:
    bare = TestClient(world.client.app, follow_redirects=False)
    form = csrf_field(bare.get("/login").text)
    for _ in range(world.settings.login_lock_after - 1):
        wrong = bare.post("/login", data={"username": "city", "password": "not the password", "csrf": form})
        assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text
        assert 'value="city"' in wrong.text  # the name stays filled in
        form = csrf_field(wrong.text)  # each form comes with a fresh nonce from the server
    locked = bare.post("/login", data={"username": "city", "password": "not the password", "csrf": form})
    assert locked.status_code == 423 and "账号已锁定" in locked.text
    right = bare.post("/login", data={"username": "city", "password": PASSWORD, "csrf": csrf_field(locked.text)})
    assert right.status_code == 423 and SESSION_COOKIE not in bare.cookies
    english = bare.post(
        "/login?lang=en", data={"username": "city", "password": PASSWORD, "csrf": csrf_field(right.text)}
    )
    assert "too many failed logins" in english.text
