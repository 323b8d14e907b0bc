"""The API's promises one by one: retries, conflicts, guard answers, sign-in throttling, tokens, uploads,
the evaluator pool's conflicts and disqualification, health and metrics."""

from __future__ import annotations

import datetime as dt
import io
import random
import zipfile
from typing import Any

import pytest
import sqlalchemy as sa

from states import Role
from tests.api_helpers import PASSWORD, World
from tests.factories import sheet_for
from tests.test_api_paths import PDF, ok
from workflow.context import Context
from workflow.pool import draw
from workflow.tables import EVENTS, OUTBOX, REVIEW_ASSIGNMENTS


def events_of(world: World, firm_id: int) -> int:
    with world.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).where(EVENTS.c.enterprise_id == firm_id)).scalar_one()


# ---- transitions --------------------------------------------------------------------------------


def test_a_retried_transition_returns_the_first_answer(world: World) -> None:
    firm = world.firms["home_key"]
    request = {"json": {"version": 1}, "headers": world.as_("wujin") | {"Idempotency-Key": "notify-0001"}}
    first = world.client.post(f"/api/enterprises/{firm}/transitions/notify", **request)
    again = world.client.post(f"/api/enterprises/{firm}/transitions/notify", **request)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert events_of(world, firm) == 1
    reused = world.client.post(
        f"/api/enterprises/{firm}/transitions/close",
        json={"version": 2, "data": {"reason": "x"}},
        headers=world.as_("wujin") | {"Idempotency-Key": "notify-0001"},
    )
    assert reused.status_code == 422 and "different request" in reused.json()["message_en"]


def test_the_same_key_from_another_user_is_another_request(world: World) -> None:
    firm = world.firms["home_key"]
    headers = {"Idempotency-Key": "k-1"}
    ok(
        world.client.post(
            f"/api/enterprises/{firm}/transitions/notify", json={"version": 1}, headers=world.as_("wujin") | headers
        )
    )
    second = world.client.post(
        f"/api/enterprises/{firm}/transitions/start_self_assessment",
        json={"version": 2},
        headers=world.as_("firm") | headers,
    )
    assert second.status_code == 200 and second.json()["to_state"] == "self_assessing"


def test_a_stale_version_is_409_and_changes_nothing(world: World) -> None:
    firm = world.firms["home_key"]
    ok(world.fire(firm, "notify", "wujin"))
    stale = world.client.post(
        f"/api/enterprises/{firm}/transitions/start_self_assessment", json={"version": 1}, headers=world.as_("firm")
    )
    assert stale.status_code == 409
    body = stale.json()
    assert body["code"] == "version_conflict" and "version 2, not 1" in body["message_en"] and body["message_zh"]
    assert world.firm(firm, "firm")["state"] == "mobilized"


def test_a_guard_refusal_is_422_with_the_guard_and_its_reason(world: World) -> None:
    firm = world.firms["home_key"]
    refused = world.fire(firm, "close", "wujin", {"reason": "  "})
    assert refused.status_code == 422
    assert refused.json() | {"message": ""} == {
        "code": "guard_failed",
        "guard": "reason_given",
        "message": "",
        "message_zh": "请填写理由",
        "message_en": "a reason is required",
    }


def test_a_trigger_from_the_wrong_state_is_409_and_an_unknown_one_404(world: World) -> None:
    firm = world.firms["home_key"]
    wrong = world.fire(firm, "certify", "city")
    assert wrong.status_code == 409 and wrong.json()["code"] == "invalid_transition"
    unknown = world.fire(firm, "teleport", "city")
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_trigger"


def test_the_firm_sees_what_it_may_do_next(world: World) -> None:
    firm = world.firms["home_key"]
    assert world.firm(firm, "firm")["allowed_triggers"] == ["start_self_assessment"]
    assert world.firm(firm, "wujin")["allowed_triggers"] == ["notify", "close"]
    detail = world.firm(firm, "firm")
    assert detail["next_deadline"] == {"date": "2022-12-31", "rule": "key_field_started", "days_left": 183}


# ---- accounts -----------------------------------------------------------------------------------


def sign_in(world: World, username: str, password: str) -> Any:
    return world.client.post("/api/auth/token", data={"username": username, "password": password})


def test_wrong_passwords_are_slowed_down_then_locked(world: World) -> None:
    from workflow.accounts import _delay

    assert [
        _delay(world.settings.model_copy(update={"login_delay_seconds": 0.5, "login_delay_max_seconds": 4}), n)
        for n in range(1, 7)
    ] == [0, 0.5, 1, 2, 4, 4]
    for _ in range(4):
        wrong = sign_in(world, "wujin", "not the password")
        assert wrong.status_code == 401 and wrong.json()["code"] == "login_failed"
    locked = sign_in(world, "wujin", "still not it")
    assert locked.status_code == 423 and locked.json()["code"] == "account_locked"
    assert sign_in(world, "wujin", PASSWORD).status_code == 423  # even the right password, for a while
    world.clock.advance(dt.timedelta(minutes=16))
    assert sign_in(world, "wujin", PASSWORD).status_code == 200


def test_one_address_guessing_across_accounts_is_locked_out_too(world: World) -> None:
    context = world.client.app.state.context  # type: ignore[attr-defined]
    context.settings = context.settings.model_copy(update={"login_source_lock_after": 6})
    answers = [
        sign_in(world, name, "Password123!").status_code
        for name in ("city", "center", "wujin", "liyang", "firm", "nobody")
    ]
    assert answers == [401, 401, 401, 401, 401, 423]
    assert sign_in(world, "expert1", PASSWORD).status_code == 423  # the address waits, whichever account
    world.clock.advance(dt.timedelta(minutes=16))
    assert sign_in(world, "expert1", PASSWORD).status_code == 200


def test_an_unknown_user_gets_the_same_answer_as_a_wrong_password(world: World) -> None:
    unknown, wrong = sign_in(world, "nobody", "whatever123"), sign_in(world, "city", "whatever123")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


def test_logout_revokes_and_tokens_expire(world: World) -> None:
    headers = world.as_("city")
    assert world.client.get("/api/me", headers=headers).json()["role"] == "city_bureau"
    assert world.client.post("/api/auth/logout", headers=headers).status_code == 204
    assert world.client.get("/api/me", headers=headers).status_code == 401
    world.tokens.pop("city")
    fresh = world.as_("city")
    world.clock.advance(dt.timedelta(minutes=world.settings.token_ttl_minutes + 1))
    assert world.client.get("/api/me", headers=fresh).status_code == 401


def test_passwords_are_stored_as_argon2_hashes(world: World) -> None:
    from workflow.tables import USERS

    with world.engine.connect() as conn:
        stored = conn.execute(sa.select(USERS.c.password_hash).where(USERS.c.username == "city")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


# ---- evidence -----------------------------------------------------------------------------------


def upload(world: World, name: str, content: bytes, user: str = "firm", firm: str = "home_key") -> Any:
    return world.client.post(
        f"/api/enterprises/{world.firms[firm]}/evidence",
        data={"kind": "application_material"},
        files={"file": (name, io.BytesIO(content), "application/octet-stream")},
        headers=world.as_(user),
    )


def office_file(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


DOCX_TYPES = (
    b'<Types><Override PartName="/word/document.xml" ContentType="application/'
    b'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
DOCX = office_file({"[Content_Types].xml": DOCX_TYPES, "word/document.xml": b"<w:document/>"})


def test_good_files_are_kept_once_by_content_and_served_in_scope(world: World) -> None:
    first = ok(upload(world, "../../etc/passwd/自评报告.pdf", PDF), 201)
    second = ok(upload(world, "副本.pdf", PDF), 201)
    assert first["sha256"] == second["sha256"] and first["id"] != second["id"]
    assert first["filename"] == "自评报告.pdf"  # folders in the name are dropped
    stored = world.settings.data_dir / "evidence" / first["sha256"][:2] / first["sha256"]
    assert stored.read_bytes() == PDF
    assert ok(upload(world, "制度汇编.docx", DOCX), 201)["content_type"].endswith("wordprocessingml.document")
    got = world.client.get(f"/api/evidence/{first['id']}", headers=world.as_("wujin"))
    assert got.status_code == 200 and got.content == PDF
    assert world.client.get(f"/api/evidence/{first['id']}", headers=world.as_("liyang")).status_code == 404
    assert world.client.get(f"/api/evidence/{first['id']}", headers=world.as_("firm_other")).status_code == 404


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("big.pdf", PDF + b"0" * (64 * 1024), "larger than"),
        ("report.pdf", b"MZ\x90\x00 this is a windows program", "only these file types"),
        ("photo.jpg", PDF, "does not match its extension .jpg"),
        ("macro.xlsx", DOCX, "does not match its extension .xlsx"),
        (
            "bomb.docx",
            office_file({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"0" * 5_000_000}),
            "zip bomb",
        ),
        ("empty.pdf", b"", "empty"),
        ("noext", PDF, "does not match its extension (none)"),
    ],
)
def test_bad_uploads_are_refused(world: World, name: str, content: bytes, message: str) -> None:
    response = upload(world, name, content)
    assert response.status_code == 422, response.text
    assert message in response.json()["message_en"]
    assert not any((world.settings.data_dir / "evidence").glob("??/*"))


def test_a_firm_cannot_upload_to_another_firm(world: World) -> None:
    assert upload(world, "a.pdf", PDF, user="firm", firm="home_other").status_code == 404


# ---- evaluator pool -----------------------------------------------------------------------------


def audited_application(world: World, firm: str = "home_key") -> int:
    firm_id = world.firms[firm]
    user = "firm" if firm == "home_key" else "firm_other"
    ok(world.fire(firm_id, "notify", "wujin"))
    ok(world.fire(firm_id, "start_self_assessment", user))
    outline = ok(world.client.get("/api/campaign/outline", headers=world.as_(user)))
    ok(
        world.client.post(
            f"/api/enterprises/{firm_id}/self-assessments",
            json={"scores": {i["code"]: i["points"] for e in outline for i in e["items"]}},
            headers=world.as_(user),
        ),
        201,
    )
    for kind in ("self_assessment_report", "application_form"):
        ok(
            world.client.post(
                f"/api/enterprises/{firm_id}/evidence",
                data={"kind": kind},
                files={"file": (f"{kind}.pdf", io.BytesIO(PDF + kind.encode()), "application/pdf")},
                headers=world.as_(user),
            ),
            201,
        )
    ok(world.fire(firm_id, "submit_application", user))
    ok(world.fire(firm_id, "verify", "wujin", {"opinion": "材料齐全，与企业实际相符"}))
    ok(world.fire(firm_id, "pass_audit", "center" if firm == "home_key" else "wujin"))
    return int(world.firm(firm_id, "city")["application"]["id"])


def test_teams_are_drawn_only_from_trained_active_reviewers_without_a_conflict(world: World) -> None:
    app_id = audited_application(world)
    firm_id = world.firms["home_key"]
    world.add_user("untrained", Role.reviewer, organisation="某咨询公司")
    employer = world.add_user("insider", Role.reviewer, organisation="本企业", trained_on=dt.date(2022, 1, 1))
    from workflow.tables import REVIEWER_PROFILES

    with world.engine.begin() as conn:
        conn.execute(
            sa.update(REVIEWER_PROFILES)
            .where(REVIEWER_PROFILES.c.user_id == employer)
            .values(employer_enterprise_id=firm_id)
        )
    for consultant in ("expert1", "expert2"):
        ok(
            world.client.post(
                f"/api/reviewers/{world.users[consultant]}/consultancies",
                json={"enterprise_id": firm_id},
                headers=world.as_("center"),
            ),
            201,
        )
    chosen = world.client.post(f"/api/applications/{app_id}/team", json={"seed": 2022}, headers=world.as_("center"))
    assert chosen.status_code == 422 and "the server draws the review team" in chosen.json()["message_en"]
    team = ok(world.client.post(f"/api/applications/{app_id}/team", json={}, headers=world.as_("center")), 201)
    eligible = sorted(world.users[n] for n in ("expert3", "expert4", "expert5"))
    assert sorted(team["reviewer_ids"]) == eligible
    # the draw is reproducible from the recorded seed and the recorded candidates
    with world.engine.connect() as conn:
        rows = conn.execute(sa.select(REVIEW_ASSIGNMENTS).where(REVIEW_ASSIGNMENTS.c.application_id == app_id)).all()
    assert {r.draw_seed for r in rows} == {team["seed"]}
    assert draw(rows[0].draw_pool, size=3, seed=team["seed"]) == sorted(team["reviewer_ids"])
    again = world.client.post(f"/api/applications/{app_id}/team", json={}, headers=world.as_("center"))
    assert again.status_code == 409


def test_too_few_eligible_reviewers_is_said_plainly(world: World) -> None:
    app_id = audited_application(world)
    for n in (1, 2, 3):
        ok(
            world.client.post(
                f"/api/reviewers/{world.users[f'expert{n}']}/consultancies",
                json={"enterprise_id": world.firms["home_key"]},
                headers=world.as_("center"),
            ),
            201,
        )
    refused = world.client.post(f"/api/applications/{app_id}/team", json={}, headers=world.as_("center"))
    assert refused.status_code == 422 and "only 2 eligible reviewer(s), 3 needed" in refused.json()["message_en"]


def test_a_disqualified_reviewer_is_replaced_and_their_score_no_longer_counts(world: World) -> None:
    app_id = audited_application(world)
    team = ok(world.client.post(f"/api/applications/{app_id}/team", json={}, headers=world.as_("center")), 201)
    names = {v: k for k, v in world.users.items()}
    cheat, *honest = team["reviewer_ids"]
    ok(
        world.client.post(
            f"/api/applications/{app_id}/reviews",
            json={"sheet": sheet_for(world.campaign, 100)},
            headers=world.as_(names[cheat]),
        ),
        201,
    )
    for reviewer in honest:
        ok(
            world.client.post(
                f"/api/applications/{app_id}/reviews",
                json={"sheet": sheet_for(world.campaign, 70)},
                headers=world.as_(names[reviewer]),
            ),
            201,
        )
    result = ok(
        world.client.post(
            f"/api/reviewers/{cheat}/disqualify", json={"reason": "收受企业咨询费"}, headers=world.as_("center")
        )
    )
    replacement = result["reassigned"][0]["replacement"]
    assert result["reassigned"][0]["application_id"] == app_id and replacement not in team["reviewer_ids"]
    pool = {r["id"]: r for r in ok(world.client.get("/api/reviewers", headers=world.as_("center")))}
    assert pool[cheat]["active"] is False and pool[cheat]["disqualified_reason"] == "收受企业咨询费"
    # the cheat can no longer score; the team waits for the replacement
    # their access ended at once: the token they held is refused, and they cannot sign in again
    assert world.client.get("/api/worklists/assignments", headers=world.as_(names[cheat])).status_code == 401
    assert world.client.get(f"/api/applications/{app_id}", headers=world.as_(names[cheat])).status_code == 401
    world.tokens.pop(names[cheat])
    relogin = world.client.post("/api/auth/token", data={"username": names[cheat], "password": PASSWORD})
    assert relogin.status_code in (401, 403)
    waiting = world.client.post(f"/api/applications/{app_id}/review-result", json={}, headers=world.as_("center"))
    assert waiting.status_code == 409 and "1 reviewer(s) have not scored" in waiting.json()["message_en"]
    ok(
        world.client.post(
            f"/api/applications/{app_id}/reviews",
            json={"sheet": sheet_for(world.campaign, 70)},
            headers=world.as_(names[replacement]),
        ),
        201,
    )
    recorded = ok(world.client.post(f"/api/applications/{app_id}/review-result", json={}, headers=world.as_("center")))
    assert recorded["record"] == {"application_id": app_id} and recorded["to_state"] == "reviewed"
    assert world.firm(world.firms["home_key"], "center")["application"]["review_score"] == 70.0
    with world.engine.connect() as conn:
        kinds = [r.kind for r in conn.execute(sa.select(OUTBOX.c.kind).order_by(OUTBOX.c.id))]
    assert kinds.count("reviewer_assignment") == 4 and kinds.count("reviewer_disqualified") == 1


def test_a_reviewer_sees_only_assigned_applications(world: World) -> None:
    app_id = audited_application(world)
    team = ok(world.client.post(f"/api/applications/{app_id}/team", json={}, headers=world.as_("center")), 201)
    names = {v: k for k, v in world.users.items()}
    outsider = next(
        n for n in ("expert1", "expert2", "expert3", "expert4", "expert5") if world.users[n] not in team["reviewer_ids"]
    )
    member = names[team["reviewer_ids"][0]]
    assert world.client.get(f"/api/applications/{app_id}", headers=world.as_(member)).status_code == 200
    assert world.client.get(f"/api/applications/{app_id}", headers=world.as_(outsider)).status_code == 404
    scored = world.client.post(
        f"/api/applications/{app_id}/reviews", json={"sheet": sheet_for(world.campaign, 1)}, headers=world.as_(outsider)
    )
    assert scored.status_code == 404


def test_the_same_seed_draws_the_same_team_and_other_seeds_others() -> None:
    pool = list(range(100, 140))
    seeds = [random.Random(n).randrange(2**31) for n in range(20)]
    assert all(draw(pool, size=3, seed=s) == draw(list(pool), size=3, seed=s) for s in seeds)
    teams = {tuple(draw(pool, size=3, seed=s)) for s in seeds}
    assert len(teams) > 10 and all(set(t) <= set(pool) and len(set(t)) == 3 for t in teams)


# ---- operations ---------------------------------------------------------------------------------


def test_health_and_metrics(world: World) -> None:
    ok(world.fire(world.firms["home_key"], "notify", "wujin"))
    assert ok(world.client.get("/healthz")) == {"status": "up"}  # no details for anyone who asks
    assert world.client.get("/api/ops/health").status_code == 401
    assert world.client.get("/api/ops/health", headers=world.as_("wujin")).status_code == 403
    health = ok(world.client.get("/api/ops/health", headers=world.as_("city")))
    assert health["status"] == "ok" and health["database"] is True and health["outbox_pending"] == 1
    metrics = world.client.get("/metrics").text
    assert 'dabiao_transitions_total{trigger="notify"}' in metrics
    assert 'dabiao_outbox_messages{status="pending"} 1.0' in metrics
    assert 'route="/api/enterprises/{enterprise_id}/transitions/{trigger}"' in metrics
    from deadlines.sweep import sweep

    sweep(world.engine, context=Context(world.campaign, world.clock), through=dt.date(2022, 7, 1))
    metrics = world.client.get("/metrics").text
    assert "dabiao_sweep_seconds_count 1.0" in metrics


# ---- oversight ----------------------------------------------------------------------------------


def test_a_referral_goes_from_district_to_city_to_local_government(world: World) -> None:
    firm = world.firms["home_key"]
    early = world.client.post(
        "/api/referrals", json={"enterprise_id": firm, "grounds": "non_participating"}, headers=world.as_("wujin")
    )
    assert early.status_code == 422 and "do not hold" in early.json()["message_en"]  # before the milestone
    world.clock.at = dt.datetime(2023, 1, 16, 10, tzinfo=world.clock.tz)
    world.tokens.clear()  # half a year later: everyone signs in again
    foreign = world.client.post(
        "/api/referrals",
        json={"enterprise_id": world.firms["away_key"], "grounds": "non_participating"},
        headers=world.as_("wujin"),
    )
    assert foreign.status_code == 404
    referral = ok(
        world.client.post(
            "/api/referrals",
            json={"enterprise_id": firm, "grounds": "non_participating", "note": "多次督促仍未启动创建"},
            headers=world.as_("wujin"),
        ),
        201,
    )
    queue = ok(world.client.get("/api/worklists/referrals", headers=world.as_("city")))
    assert [r["id"] for r in queue] == [referral["id"]] and queue[0]["grounds_label"]
    assert queue[0]["days_waiting"] == 0
    assert ok(world.client.get("/api/worklists/referrals", headers=world.as_("wujin_gov"))) == []
    ok(
        world.client.post(
            f"/api/referrals/{referral['id']}/confirm", json={"note": "同意移交"}, headers=world.as_("city")
        )
    )
    waiting = ok(world.client.get("/api/worklists/referrals", headers=world.as_("wujin_gov")))
    assert [(r["id"], r["status"], r["local_government"]) for r in waiting] == [
        (referral["id"], "confirmed", "武进区人民政府")
    ]
    ok(world.client.post(f"/api/referrals/{referral['id']}/acknowledge", headers=world.as_("wujin_gov")))
    again = world.client.post(f"/api/referrals/{referral['id']}/acknowledge", headers=world.as_("wujin_gov"))
    assert again.status_code == 409
    with world.engine.connect() as conn:
        mail = conn.execute(sa.select(OUTBOX).where(OUTBOX.c.kind == "referral")).one()
    assert (mail.audience, mail.to_address, mail.context["grounds"]) == (
        "local_government",
        "zf@wujin.example.com",
        "non_participating",
    )


def test_the_inspection_plan_is_the_districts_own(world: World) -> None:
    plan = ok(world.client.get("/api/inspections/plan", params={"month": "2022-07"}, headers=world.as_("wujin")))
    assert plan["district"] == "320412"
    assert {line["enterprise_id"] for line in plan["firms"]} <= {world.firms["home_key"], world.firms["home_other"]}
    other = world.client.get(
        "/api/inspections/plan", params={"month": "2022-07", "district": "320481"}, headers=world.as_("wujin")
    )
    assert other.status_code == 404
    city = ok(
        world.client.get(
            "/api/inspections/plan", params={"month": "2022-07", "district": "320481"}, headers=world.as_("city")
        )
    )
    assert {line["enterprise_id"] for line in city["firms"]} <= {world.firms["away_key"], world.firms["away_other"]}
    bad = world.client.get("/api/inspections/plan", params={"month": "July"}, headers=world.as_("city"))
    assert bad.status_code == 422
