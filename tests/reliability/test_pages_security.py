"""The HTML pages under attack, as they are: security headers on every page (CSP allowing only our own
scripts, no framing), CSRF on every form, sessions that expire, sign-out that revokes, sign-in throttled and
locked, and no password or token in the logs."""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.pages import ROUTERS
from api.pages.access import SESSION_COOKIE
from tests.api_helpers import HOME, PASSWORD, World
from tests.reliability.conftest import Ledger
from tests.test_pages_access import Browser, csrf_field

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def page_routes(method: str) -> list[str]:
    return sorted(
        {r.path for router in ROUTERS for r in router.routes if isinstance(r, APIRoute) and method in r.methods}
    )


def filled(path: str, world: World) -> str:
    values = {"enterprise_id": world.firms["home_key"], "district_code": HOME, "code": HOME}
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: str(values.get(m.group(1), 1)), path)


def test_every_page_sends_the_security_headers_and_runs_only_our_scripts(world: World, ledger: Ledger) -> None:
    city = Browser(world, "city")
    checked = 0
    for path in [*page_routes("GET"), "/login", "/no-such-page"]:
        response = city.get(filled(path, world))
        if response.status_code in (301, 302, 303, 307):
            continue
        checked += 1
        csp = response.headers.get("content-security-policy", "")
        policy = dict(part.strip().split(" ", 1) for part in csp.split(";") if part.strip())
        assert policy.get("script-src") == "'self'", (path, csp)
        assert policy.get("frame-ancestors") == "'none'" and policy.get("object-src") == "'none'", (path, csp)
        assert "unsafe" not in csp
        assert response.headers.get("x-frame-options") == "DENY", path
        assert response.headers.get("x-content-type-options") == "nosniff", path
        if response.headers.get("content-type", "").startswith("text/html"):
            for attrs, body in re.findall(r"<script\b([^>]*)>(.*?)</script>", response.text, flags=re.S | re.I):
                data_block = 'type="application/json"' in attrs  # data for our scripts, never run
                assert data_block or not body.strip(), (path, "inline script")
            for src in re.findall(r"<script\b[^>]*\bsrc=\"([^\"]*)\"", response.text, flags=re.I):
                assert src.startswith("/static/"), (path, src)
            assert not re.search(r"<[^>]+\son[a-z]+\s*=", response.text, flags=re.I), (path, "inline handler")
    assert checked >= 10
    ledger.record(
        "pages",
        "security headers and scripts on every page (GET routes, sign-in, a missing page) as the city bureau",
        backend="SQLite",
        tries=checked,
        detail="each: CSP script-src 'self', frame-ancestors 'none', no unsafe-*; X-Frame-Options DENY; "
        "nosniff; no inline script (JSON data blocks only) or handler, scripts only from /static/",
    )


def test_every_form_refuses_a_post_without_this_sessions_csrf_token(world: World, ledger: Ledger) -> None:
    wujin, other = Browser(world, "wujin"), Browser(world, "liyang")
    posts = [p for p in page_routes("POST") if p != "/login"]
    assert posts
    tries = 0
    for path in posts:
        url = filled(path, world)
        for token in (None, other.csrf, "0" * 64):
            data = {} if token is None else {"csrf": token}
            before = world.firm(world.firms["home_key"], "city")["version"]
            response = wujin.client.post(url, data=data)
            tries += 1
            assert response.status_code == 403, (url, token, response.status_code)
            assert world.firm(world.firms["home_key"], "city")["version"] == before
    anonymous = TestClient(world.client.app, follow_redirects=False)
    anonymous.get("/login")
    no_nonce = anonymous.post("/login", data={"username": "city", "password": PASSWORD, "csrf": "x" * 64})
    tries += 1
    assert no_nonce.status_code == 403 and SESSION_COOKIE not in no_nonce.cookies
    ledger.record(
        "pages",
        f"POST to every form ({len(posts)} routes and sign-in) without a CSRF token, with another session's, "
        "with a forged one",
        backend="SQLite",
        tries=tries,
        detail="all 403; nothing changed; no session issued",
    )


def test_sessions_expire_and_sign_out_revokes(world: World, ledger: Ledger) -> None:
    browser = Browser(world, "wujin")
    assert browser.get(f"/districts/{HOME}").status_code == 200
    stolen = browser.token
    assert browser.post("/logout").status_code == 303
    replay = TestClient(world.client.app, follow_redirects=False, cookies={SESSION_COOKIE: stolen})
    assert replay.get(f"/districts/{HOME}").status_code == 303  # back to the sign-in page
    assert world.client.get("/api/me", headers={"Authorization": f"Bearer {stolen}"}).status_code == 401

    later = Browser(world, "wujin")
    world.clock.advance(dt.timedelta(minutes=world.settings.token_ttl_minutes + 1))
    try:
        expired = later.get(f"/districts/{HOME}")
        assert expired.status_code == 303 and expired.headers["location"].startswith("/login")
    finally:
        world.clock.advance(-dt.timedelta(minutes=world.settings.token_ttl_minutes + 1))
    ledger.record(
        "pages",
        "a session cookie replayed after sign-out, and one used after its lifetime",
        backend="SQLite",
        tries=2,
        detail="both sent back to sign-in; the revoked token is refused by the API too (401)",
    )


def test_sign_in_is_throttled_then_locked_and_no_secret_reaches_the_logs(
    world: World, ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-password-Ωx7"
    caplog.set_level(logging.DEBUG)
    logging.getLogger().setLevel(logging.DEBUG)
    client = TestClient(world.client.app, follow_redirects=False)
    answers = []
    for _ in range(world.settings.login_lock_after):
        form = client.get("/login")
        answers.append(
            client.post("/login", data={"username": "wujin", "password": wrong, "csrf": csrf_field(form.text)})
        )
    form = client.get("/login")
    right = client.post("/login", data={"username": "wujin", "password": PASSWORD, "csrf": csrf_field(form.text)})
    assert [a.status_code for a in answers] == [401] * (world.settings.login_lock_after - 1) + [423]
    assert right.status_code == 423  # locked: the right password does not open it either
    api_locked = world.client.post("/api/auth/token", data={"username": "wujin", "password": PASSWORD})
    assert api_locked.status_code == 423
    # another account signs in (API and page), with a wrong password first
    assert world.client.post("/api/auth/token", data={"username": "city", "password": wrong}).status_code == 401
    token = world.client.post("/api/auth/token", data={"username": "city", "password": PASSWORD}).json()["access_token"]
    page = Browser(world, "center")
    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    for secret in (PASSWORD, wrong, token, page.token):
        assert secret not in logged
    ledger.record(
        "pages",
        f"{world.settings.login_lock_after} wrong passwords on the sign-in page, then the right one; "
        "logs captured at DEBUG through wrong and right sign-ins (page and API)",
        backend="SQLite",
        tries=world.settings.login_lock_after + 4,
        detail="401s then 423 (locked, page and API alike, the right password too); "
        f"{len(caplog.records)} log records, none holding a password or token",
    )
