"""The request path on both backends: a token is looked up on every request, whether the request reads (on
PostgreSQL sharing the route's connection and transaction) or writes (an autocommit lookup first), so
switching an account off or signing out is felt by the very next request of each kind; the plain ASGI
middleware still times every request by its route template and status and still sets the security headers."""

from __future__ import annotations

import re

from tests.api_helpers import World


def test_a_switched_off_account_is_refused_at_once_on_reads_and_writes(world: World) -> None:
    firm = world.firms["home_key"]
    headers = world.as_("wujin")
    read = world.client.get(f"/api/enterprises/{firm}", headers=headers)
    assert read.status_code == 200
    version = read.json()["version"]
    assert world.client.post("/api/users/wujin/disable", headers=world.as_("city")).status_code == 200
    assert world.client.get(f"/api/enterprises/{firm}", headers=headers).status_code == 401
    post = world.client.post(f"/api/enterprises/{firm}/transitions/notify", json={"version": version}, headers=headers)
    assert post.status_code == 401
    # the refused write left the firm as it was
    assert world.client.get(f"/api/enterprises/{firm}", headers=world.as_("city")).json()["version"] == version


def test_a_signed_out_token_is_refused_by_the_next_read_and_write(world: World) -> None:
    firm = world.firms["home_key"]
    headers = world.as_("city")
    version = world.client.get(f"/api/enterprises/{firm}", headers=headers).json()["version"]
    assert world.client.post("/api/auth/logout", headers=headers).status_code == 204
    assert world.client.get(f"/api/enterprises/{firm}", headers=headers).status_code == 401
    post = world.client.post(f"/api/enterprises/{firm}/transitions/notify", json={"version": version}, headers=headers)
    assert post.status_code == 401


def test_a_read_after_a_write_sees_the_write(world: World) -> None:
    firm = world.firms["home_other"]
    headers = world.as_("city")
    version = world.client.get(f"/api/enterprises/{firm}", headers=headers).json()["version"]
    post = world.client.post(f"/api/enterprises/{firm}/transitions/notify", json={"version": version}, headers=headers)
    assert post.status_code == 200
    after = world.client.get(f"/api/enterprises/{firm}", headers=headers).json()
    assert after["version"] == version + 1
    assert [item["trigger"] for item in after["history"] if item["kind"] == "event"][-1] == "notify"


def count_of(metrics: str, route: str, status: str) -> float:
    pattern = rf'dabiao_request_seconds_count\{{[^}}]*route="{re.escape(route)}"[^}}]*status="{status}"[^}}]*\}} (\S+)'
    found = re.search(pattern, metrics)
    return float(found.group(1)) if found else 0.0


def test_every_request_is_timed_by_route_template_and_status(world: World) -> None:
    route = "/api/enterprises/{enterprise_id}"
    before = world.client.get("/metrics").text
    firm = world.firms["home_key"]
    assert world.client.get(f"/api/enterprises/{firm}", headers=world.as_("city")).status_code == 200
    assert world.client.get(f"/api/enterprises/{firm}").status_code == 401
    after = world.client.get("/metrics").text
    assert count_of(after, route, "200") == count_of(before, route, "200") + 1
    assert count_of(after, route, "401") == count_of(before, route, "401") + 1


def test_security_headers_on_the_api_and_on_pages(world: World) -> None:
    api = world.client.get("/api/me", headers=world.as_("city"))
    assert api.headers["X-Content-Type-Options"] == "nosniff"
    assert api.headers["Referrer-Policy"] == "same-origin"
    assert "Content-Security-Policy" not in api.headers
    page = world.client.get("/login?lang=en")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    assert "lang=en" in page.headers["set-cookie"] and "SameSite=lax" in page.headers["set-cookie"]
