"""A hostile user against the sign-in, the accounts and the quiet surfaces, through the API and the pages:
lockouts that cannot be turned against an account's owner, accounts an administrator switches off at once,
capped sign-in fields, bounded metrics, a server-issued sign-in nonce, Secure cookies, real office and PDF
structure, phone numbers exported as text, and deadlines far outside the calendar still swept.

Addresses are documentation ranges (RFC 5737) given to the in-process test client: no traffic leaves."""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import time
import zipfile
from typing import Any

import openpyxl
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from api.commands.serve import uvicorn_options as _uvicorn_options
from api.pages.access import LOGIN_COOKIE, SESSION_COOKIE, csrf_token
from tests.api_helpers import PASSWORD, World
from tests.deadline_helpers import sweep_on
from tests.reliability.conftest import Ledger, backend_of
from tests.reliability.faults import DABIAO, ROOT
from tests.test_pages_access import Browser, csrf_field
from workflow.settings import Settings
from workflow.tables import ESCALATIONS, HAZARDS, LOGIN_THROTTLES, USERS

ATTACKER = "203.0.113.66"
OWNER = "198.51.100.7"


def client_at(world: World, address: str, app: Any = None) -> TestClient:
    return TestClient(app or world.client.app, follow_redirects=False, client=(address, 50000))


def api_sign_in(client: TestClient, username: str, password: str, **kw: Any) -> Any:
    return client.post("/api/auth/token", data={"username": username, "password": password}, **kw)


def page_sign_in(client: TestClient, username: str, password: str) -> Any:
    form = client.get("/login")
    return client.post("/login", data={"username": username, "password": password, "csrf": csrf_field(form.text)})


def test_lockout_cannot_be_turned_against_an_account(world: World, db_url: str, ledger: Ledger) -> None:
    s = world.settings
    attacker = client_at(world, "127.0.0.1")
    # finding 1: a username that looks like an address key locked every account from that address
    for name in ("@127.0.0.1", "@testclient", "city"):
        for _ in range(s.login_lock_after + 2):
            api_sign_in(attacker, name, "not the password")
    owner = client_at(world, OWNER)
    assert api_sign_in(owner, "city", PASSWORD).status_code == 200  # the owner, elsewhere, is not locked out
    assert page_sign_in(client_at(world, OWNER), "city", PASSWORD).status_code == 303
    assert api_sign_in(client_at(world, "127.0.0.2"), "center", PASSWORD).status_code == 200
    assert api_sign_in(attacker, "city", PASSWORD).status_code == 423  # the guessing address is
    with world.engine.connect() as conn:
        keys = {(r.scope, r.username, r.address) for r in conn.execute(sa.select(LOGIN_THROTTLES))}
    assert ("pair", "@127.0.0.1", "127.0.0.1") in keys and ("address", "", "127.0.0.1") in keys
    assert not any(scope == "pair" and name == "center" for scope, name, _ in keys)

    # many addresses against one account: locked for those addresses only, never for a fresh one
    addresses = [f"192.0.2.{n}" for n in range(1, s.login_account_lock_sources + 8)]
    tries = 0
    while tries < s.login_account_lock_after + s.login_lock_after:
        for address in addresses:
            api_sign_in(client_at(world, address), "center", "still not the password")
            tries += 1
    assert api_sign_in(client_at(world, addresses[0]), "center", PASSWORD).status_code == 423
    assert api_sign_in(client_at(world, OWNER), "center", PASSWORD).status_code == 200
    assert page_sign_in(client_at(world, "198.51.100.8"), "center", PASSWORD).status_code == 303

    # X-Forwarded-For: ignored unless the peer is a trusted proxy (default: none)
    spoofer = client_at(world, ATTACKER)
    for n in range(s.login_source_lock_after):
        api_sign_in(spoofer, f"nobody{n}", "wrong password", headers={"X-Forwarded-For": f"192.0.2.{200 + n % 50}"})
    refused = api_sign_in(spoofer, "wujin", PASSWORD, headers={"X-Forwarded-For": "198.51.100.99"})
    assert refused.status_code == 423 and "address" in refused.json()["message"]
    behind = Settings(**{**s.model_dump(), "trusted_proxies": ATTACKER})
    proxied = create_app(settings=behind, campaign=world.campaign, engine=world.engine, clock=world.clock)
    proxy = client_at(world, ATTACKER, proxied)
    passed = api_sign_in(proxy, "wujin", PASSWORD, headers={"X-Forwarded-For": "198.51.100.99, " + ATTACKER})
    assert passed.status_code == 200  # behind a trusted proxy, the client's own address counts
    assert _uvicorn_options(Settings())["proxy_headers"] is False
    assert _uvicorn_options(behind) == {
        "server_header": False,
        "proxy_headers": True,
        "forwarded_allow_ips": [ATTACKER],
    }
    ledger.record(
        "sign-in",
        "lockout as a weapon: usernames `@127.0.0.1`/`@testclient` and `city` guessed from one address; "
        f"`center` guessed {tries}× from {len(addresses)} addresses; X-Forwarded-For forged by an untrusted peer",
        backend=backend_of(db_url),
        tries=3 * (s.login_lock_after + 2) + tries + s.login_source_lock_after,
        detail="the owners signed in (API 200, page 303) from addresses that had not failed; only the guessing "
        "addresses got 423; no username collides with an address key; a forged X-Forwarded-For counts only "
        "behind a trusted proxy; `dabiao serve` runs uvicorn with proxy headers off unless proxies are set",
    )


def test_login_fields_are_capped_before_any_hashing(world: World, db_url: str, ledger: Ledger) -> None:
    huge = "x" * 200_000  # under the request body limit, so the sign-in's own caps answer
    client = client_at(world, OWNER)
    megabyte = api_sign_in(client, "y" * 1_000_000, "y" * 1_000_000)
    assert megabyte.status_code in (413, 422)  # over the body limit: refused before it is read
    started = time.perf_counter()
    long_name = api_sign_in(client, huge, "whatever password")
    long_password = api_sign_in(client, "city", huge)
    page = page_sign_in(client_at(world, OWNER), "city", "p" * 300)
    took = time.perf_counter() - started
    assert long_name.status_code == 422 and "at most 80" in long_name.json()["message"]
    assert long_password.status_code == 422 and "at most 256" in long_password.json()["message"]
    assert page.status_code == 422 and "最多" in page.text
    with world.engine.connect() as conn:
        longest = conn.execute(sa.select(sa.func.max(sa.func.length(LOGIN_THROTTLES.c.username)))).scalar()
    assert (longest or 0) <= 80
    ledger.record(
        "sign-in",
        "1 MB username and password, 200 kB username, 200 kB password to the API, a 300-character password to the page",
        backend=backend_of(db_url),
        tries=4,
        detail=f"413 for the megabyte; 422 with “at most 80 / 256 characters”, nothing stored or hashed "
        f"({took:.2f} s for all three)",
    )


def test_an_administrator_switches_accounts_off_and_every_session_dies(
    world: World, db_url: str, ledger: Ledger
) -> None:
    city = Browser(world, "city")
    firm_page = Browser(world, "firm")
    firm_api = world.as_("firm")
    assert world.client.get("/api/me", headers=firm_api).status_code == 200
    off = world.client.post("/api/users/firm/disable", headers=world.as_("city"))
    assert off.status_code == 200 and off.json()["revoked"] >= 2 and off.json()["active"] is False
    assert world.client.get("/api/me", headers=firm_api).status_code == 401
    assert firm_page.get("/").status_code == 303  # back to the sign-in form
    assert api_sign_in(client_at(world, OWNER), "firm", PASSWORD).status_code == 401
    assert world.client.post("/api/users/city/disable", headers=world.as_("city")).status_code == 422  # not oneself
    assert world.client.post("/api/users/firm/enable", headers=world.as_("wujin")).status_code == 403
    assert city.post("/users/firm/enable").status_code == 303
    assert api_sign_in(client_at(world, OWNER), "firm", PASSWORD).status_code == 200

    # reset by the page: old sessions die, the old password stops working, weak ones are refused
    again = Browser(world, "firm")
    weak = {
        "a" * 12: "repeat",
        "password1234": "common",
        "firmfirmfirm99": "username",
        "short": "at least 12",
    }
    for password, why in weak.items():
        answer = city.post("/users/firm/reset-password", data={"password": password})
        assert answer.status_code == 422, why
    assert city.post("/users/firm/reset-password", data={"password": "a brand new passphrase"}).status_code == 303
    assert again.get("/").status_code == 303 and again.get(f"/firms/{world.firms['home_key']}").status_code == 303
    assert api_sign_in(client_at(world, OWNER), "firm", PASSWORD).status_code == 401
    assert api_sign_in(client_at(world, OWNER), "firm", "a brand new passphrase").status_code == 200
    revoked = world.client.post("/api/users/firm/revoke-sessions", headers=world.as_("city")).json()["revoked"]
    assert revoked >= 1

    # the CLI: the same services
    env = {**os.environ, "DABIAO_DATABASE_URL": db_url}
    disable = subprocess.run([DABIAO, "users", "disable", "wujin"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert disable.returncode == 0, disable.stderr
    with world.engine.connect() as conn:
        assert conn.execute(sa.select(USERS.c.active).where(USERS.c.username == "wujin")).scalar() is False
    reset = subprocess.run(
        [DABIAO, "users", "reset-password", "wujin", "--password-stdin"],
        input="aaaaaaaaaaaaaaaa\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert reset.returncode == 1 and "repeat" in reset.stdout + reset.stderr
    crlf = subprocess.run(
        [DABIAO, "users", "create", "--username", "mailer", "--role", "city_bureau", "--password-stdin",
         "--email", "x@example.com\r\nBcc: victim@example.com"],
        input="a long enough passphrase\n", capture_output=True, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    assert crlf.returncode == 1 and "e-mail" in crlf.stdout + crlf.stderr
    ledger.record(
        "accounts",
        "an account switched off (API), on again (page), its password reset (page: 4 weak ones first), "
        "signed out everywhere (API); `dabiao users disable`, a repeated-letter reset and an e-mail with CR/LF "
        "(CLI)",
        backend=backend_of(db_url),
        tries=12,
        detail="every token and page session died at once; the old password failed, the new one worked; weak "
        "passwords (one letter repeated, common, built from the username, short) and CR/LF refused",
    )


def test_metrics_stay_bounded_and_health_says_only_up(world: World, db_url: str, ledger: Ledger) -> None:
    client = world.client
    client.request("BREW", "/")
    before = len(client.get("/metrics").text.splitlines())
    for n in range(300):
        client.request(f"X{n}INVENTED", "/api/me")
    after = client.get("/metrics").text
    assert len(after.splitlines()) - before < 40 and 'method="other"' in after and "X1INVENTED" not in after
    assert client.get("/healthz").json() == {"status": "up"}
    assert client.get("/api/ops/health").status_code == 401
    guarded = create_app(
        settings=Settings(**{**world.settings.model_dump(), "metrics_token": "scrape-secret"}),
        campaign=world.campaign,
        engine=world.engine,
        clock=world.clock,
    )
    scraper = TestClient(guarded)
    assert scraper.get("/metrics").status_code == 401
    assert scraper.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}).status_code == 200
    ledger.record(
        "quiet surfaces",
        "300 invented HTTP methods, then /metrics; /healthz and /api/ops/health without a login; /metrics "
        "behind DABIAO_METRICS_TOKEN",
        backend=backend_of(db_url),
        tries=304,
        detail=f"/metrics grew by {len(after.splitlines()) - before} lines (one `other` label); /healthz says "
        "`up` only; details 401 without a login; the token setting answers 401 without it",
    )


def office(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


WORD_TYPES = (
    b'<Types><Override PartName="/word/document.xml" ContentType="application/'
    b'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)


def test_smaller_findings_through_the_api_and_the_pages(world: World, db_url: str, ledger: Ledger) -> None:
    firm = world.firms["home_key"]

    def upload(name: str, data: bytes) -> Any:
        return world.client.post(
            f"/api/enterprises/{firm}/evidence",
            data={"kind": "application_material"},
            files={"file": (name, io.BytesIO(data), "application/octet-stream")},
            headers=world.as_("firm"),
        )

    # uploads: the structure behind the name
    assert (
        upload("fake.docx", office({"[Content_Types].xml": b"<Types/>", "word/x.html": b"<script>"})).status_code == 422
    )
    assert upload("cut.pdf", b"%PDF-1.7\n1 0 obj<<>>endobj\n").status_code == 422
    assert (
        upload(
            "real.docx", office({"[Content_Types].xml": WORD_TYPES, "word/document.xml": b"<w:document/>"})
        ).status_code
        == 201
    )
    # the sign-in nonce: one the client brings is refused, one the server issued works
    planted = TestClient(world.client.app, follow_redirects=False)
    planted.cookies.set(LOGIN_COOKIE, "chosen-by-attacker", path="/login")
    forged = planted.post(
        "/login", data={"username": "city", "password": PASSWORD, "csrf": csrf_token("chosen-by-attacker", "login")}
    )
    assert forged.status_code == 403 and SESSION_COOKIE not in planted.cookies
    # cookies are Secure by default
    default = create_app(
        settings=Settings(**{**world.settings.model_dump(), "cookie_secure": True}),
        campaign=world.campaign,
        engine=world.engine,
        clock=world.clock,
    )
    secure = TestClient(default, base_url="https://testserver", follow_redirects=False, client=("198.51.100.50", 1))
    signed = page_sign_in(secure, "center", PASSWORD)
    cookie = next(v for k, v in signed.headers.multi_items() if k == "set-cookie" and v.startswith(SESSION_COOKIE))
    assert signed.status_code == 303 and "Secure" in cookie
    assert Settings().cookie_secure is True
    # phone numbers: text cells without a visible quote; formulas still neutralised
    with world.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE enterprises SET phone = '+1-555-0100', principal = '=1+1' WHERE id = :id"), {"id": firm}
        )
    sheet = Browser(world, "city").get("/firms.xlsx")
    rows = list(openpyxl.load_workbook(io.BytesIO(sheet.content)).active.iter_rows(values_only=False))
    header = [c.value for c in rows[1]]  # under the title row
    phone, principal = header.index("联系电话"), header.index("主要负责人")
    mine = next(r for r in rows[2:] if r[phone].value == "+1-555-0100")
    assert mine[phone].data_type == "s" and mine[phone].number_format == "@"
    assert mine[principal].value == "'=1+1"
    ledger.record(
        "quiet surfaces",
        "a ZIP with [Content_Types].xml and word/x.html as .docx, a PDF without %%EOF; a planted sign-in nonce; "
        "cookies over https by default; a phone `+1-555-0100` and a principal `=1+1` exported",
        backend=backend_of(db_url),
        tries=6,
        detail="both uploads 422 (a real .docx 201); the planted nonce 403; the session cookie Secure; the "
        "phone a text cell (format @) without a quote, the formula written as text",
    )


def test_deadlines_far_outside_the_calendar_are_swept(world: World, db_url: str, ledger: Ledger) -> None:
    firm = world.firms["home_key"]
    assert world.fire(firm, "notify", "wujin").status_code == 200
    assert world.fire(firm, "start_self_assessment", "firm").status_code == 200
    ids = []
    for _ in range(3):
        answer = world.client.post(
            f"/api/enterprises/{firm}/hazards", json={"description": "配电柜无防护"}, headers=world.as_("firm")
        )
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    far = [dt.date(1, 1, 1), dt.date(1899, 12, 31), dt.date(1900, 1, 1)]
    with world.engine.begin() as conn:  # stored before any bound at entry
        for hazard_id, day in zip(ids, far, strict=True):
            conn.execute(sa.update(HAZARDS).where(HAZARDS.c.id == hazard_id).values(deadline=day))
    sweep_on(world.engine, world.campaign, dt.date(2022, 7, 1))
    with world.engine.connect() as conn:
        keys = set(conn.execute(sa.select(ESCALATIONS.c.dedupe_key)).scalars())
    swept = [h for h in ids if any(k.startswith(f"hazard_deadline:hazard:{h}:") for k in keys)]
    assert swept == ids
    ledger.record(
        "deadlines",
        "hazard deadlines stored as 0001-01-01, 1899-12-31 and 1900-01-01, then the day's sweep",
        backend=backend_of(db_url),
        tries=len(far),
        detail="each hazard escalated as overdue (the sweep's first band starts at the calendar's first day)",
    )
