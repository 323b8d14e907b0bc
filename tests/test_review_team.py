"""The review team is the only source of a score (评定人员库成员方可参加…审核工作; 组织评审组…进行线上和线下现场
评审; 严禁…评审走过场): typing a score is refused at every door; the server draws and anyone can redo the draw;
a reviewer steps aside (回避) without penalty, a conflict declared after the draw takes them off that firm's
open teams, and disqualification (弄虚作假) ends their access at once; districts report misconduct to the
center. Every draw, recusal, removal and score is in the firm's hash chain."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa

from states import Role
from tests.api_helpers import PASSWORD, World
from tests.factories import sheet_for
from tests.test_api_behaviour import audited_application
from tests.test_api_paths import ok
from tests.test_cli import run, uscc_of
from tests.test_pages_access import Browser
from workflow.audit import verify_chain
from workflow.pool import draw
from workflow.tables import APPLICATIONS, ENTERPRISES, EVENTS, REVIEW_ASSIGNMENTS, REVIEW_DRAWS, REVIEWER_PROFILES

TEAM_ONLY = "the review result comes only from the review team"


def state_of(world: World, firm: str) -> str:
    return str(world.firm(world.firms[firm], "city")["state"])


def version_of(world: World, firm: str) -> int:
    return int(world.firm(world.firms[firm], "city")["version"])


def kinds_of(world: World, firm: str) -> list[str]:
    with world.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(EVENTS.c.trigger).where(EVENTS.c.enterprise_id == world.firms[firm]).order_by(EVENTS.c.seq)
            ).scalars()
        )


def members_of(world: World, app_id: int) -> dict[int, str]:
    """The team now: reviewer id → status (active / done)."""
    with world.engine.connect() as conn:
        return {
            int(r.reviewer_id): r.status
            for r in conn.execute(
                sa.select(REVIEW_ASSIGNMENTS).where(
                    REVIEW_ASSIGNMENTS.c.application_id == app_id, REVIEW_ASSIGNMENTS.c.status.in_(("active", "done"))
                )
            )
        }


def draw_team(world: World, app_id: int, organiser: str = "center") -> list[int]:
    team = ok(world.client.post(f"/api/applications/{app_id}/team", json={}, headers=world.as_(organiser)), 201)
    return list(team["reviewer_ids"])


def score(world: World, app_id: int, reviewer_id: int, total: float, **extra: Any) -> Any:
    names = {v: k for k, v in world.users.items()}
    body = {"sheet": sheet_for(world.campaign, total)} | extra
    return world.client.post(f"/api/applications/{app_id}/reviews", json=body, headers=world.as_(names[reviewer_id]))


# ---- the bypasses, refused at every door ---------------------------------------------------------


def test_a_typed_score_is_refused_through_the_api_the_bulk_route_the_pages_and_the_command_line(
    world: World, db_url: str
) -> None:
    audited_application(world)  # home_key: key field, audited by the center
    audited_application(world, "home_other")  # non-key: its district organises the review
    for firm, office in (("home_key", "center"), ("home_other", "wujin")):
        before = version_of(world, firm)
        refused = world.fire(world.firms[firm], "record_review", office, {"score": 92})
        assert refused.status_code == 403 and TEAM_ONLY in refused.json()["message_en"], refused.text
        # the city, or anyone else, fares no better
        assert world.fire(world.firms[firm], "record_review", "city", {"score": 92}).status_code == 403
        assert state_of(world, firm) == "verified" and version_of(world, firm) == before
    bulk = world.client.post(
        "/api/bulk/transitions/record_review",
        json={"items": [{"enterprise_id": world.firms["home_other"]}], "data": {"score": 76}},
        headers=world.as_("wujin"),
    )
    assert bulk.status_code == 403 and TEAM_ONLY in bulk.json()["message_en"], bulk.text
    page = Browser(world, "center").post(
        f"/firms/{world.firms['home_key']}/transitions/record_review",
        data={"version": str(version_of(world, "home_key")), "score": "92"},
    )
    assert page.status_code == 403 and "评审结果只能由评审组全部成员评分后形成" in page.text
    cli = run(
        db_url,
        "fire",
        uscc_of(world.engine, world.firms["home_key"]),
        "record_review",
        "--role",
        "support_center",
        "--data",
        '{"score": 92}',
    )
    assert cli.exit_code == 1 and TEAM_ONLY in cli.output
    assert state_of(world, "home_key") == "verified" and state_of(world, "home_other") == "verified"
    # the firm page offers no such action, and the organiser is sent to the team instead
    firm_page = Browser(world, "center").get(f"/firms/{world.firms['home_key']}").text
    assert f"/firms/{world.firms['home_key']}/transitions/record_review" not in firm_page
    assert "组织评审、录入评审结果" in firm_page


def test_the_team_result_moves_the_firm_once_every_member_scored_and_stores_how_it_was_combined(
    world: World,
) -> None:
    app_id = audited_application(world)
    team = draw_team(world, app_id)
    for reviewer, total in zip(team, (70, 80, 90), strict=True):
        assert ok(score(world, app_id, reviewer, total), 201)["online_score"] == total
        again = score(world, app_id, reviewer, total)
        assert again.status_code == 422 and "already scored" in again.json()["message_en"]
    result = ok(world.client.post(f"/api/applications/{app_id}/review-result", json={}, headers=world.as_("center")))
    assert result["to_state"] == "reviewed"
    with world.engine.connect() as conn:
        app = conn.execute(sa.select(APPLICATIONS).where(APPLICATIONS.c.id == app_id)).one()
        last = conn.execute(
            sa.select(EVENTS).where(EVENTS.c.enterprise_id == world.firms["home_key"]).order_by(EVENTS.c.seq.desc())
        ).first()
    assert app.review_score == 80.0  # the mean of 70, 80, 90 (each member's online = on-site)
    assert last is not None and last.trigger == "record_review"
    combination = last.payload["combination"]
    assert combination["rule"] == "mean" and combination["online_weight"] == 0.4
    assert {int(k): v["weighted"] for k, v in combination["members"].items()} == dict(
        zip(team, (70, 80, 90), strict=True)
    )
    assert all(set(v["sheet"]) == {"online", "on_site"} for v in combination["members"].values())


def test_a_sheet_is_numbers_per_element_within_range_and_precision(world: World) -> None:
    app_id = audited_application(world)
    reviewer = draw_team(world, app_id)[0]
    good = sheet_for(world.campaign, 80)

    def refused(sheet: Any, **extra: Any) -> str:
        names = {v: k for k, v in world.users.items()}
        answer = world.client.post(
            f"/api/applications/{app_id}/reviews", json={"sheet": sheet} | extra, headers=world.as_(names[reviewer])
        )
        assert answer.status_code == 422, answer.text
        return str(answer.json()["message_en"])

    assert "must be a JSON number, not text" in refused(good | {"1": {"online": "1e1", "on_site": 10}})
    assert "must be a JSON number" in refused(good | {"1": {"online": True, "on_site": 10}})
    # element 1 (目标职责) has 14 points in the outline: 1.1–1.6 give 3 + 4 + 2 + 3 + 1 + 1
    assert "from 0 to 14" in refused(good | {"1": {"online": 14.5, "on_site": 10}})
    assert "from 0 to 14" in refused(good | {"1": {"online": -1, "on_site": 10}})
    assert "at most 1 decimal" in refused(good | {"1": {"online": 10.25, "on_site": 10}})
    assert "lacks outline elements: 8 Continuous improvement" in refused({k: v for k, v in good.items() if k != "8"})
    assert "not elements of the outline: 9" in refused(good | {"9": {"online": 1, "on_site": 1}})
    assert "needs an online and an on_site score" in refused(good | {"2": {"online": 1}})
    # findings: at most the campaign's local limit per member, so the team's findings fit its result
    limit = world.campaign.review.findings_per_member
    many = [{"description": f"问题{n}"} for n in range(limit + 1)]
    assert f"at most {limit} findings per reviewer" in refused(good, findings=many)
    long = [{"description": "很" * (world.campaign.review.finding_length + 1)}]
    assert "longer than" in refused(good, findings=long)
    assert members_of(world, app_id)[reviewer] == "active"  # nothing was recorded
    assert ok(score(world, app_id, reviewer, 80, findings=many[:limit]), 201)


# ---- the server draws ----------------------------------------------------------------------------


def test_the_server_draws_and_anyone_can_redo_the_draw(world: World, db_url: str) -> None:
    app_id = audited_application(world)
    seeded = world.client.post(f"/api/applications/{app_id}/team", json={"seed": 7}, headers=world.as_("center"))
    assert seeded.status_code == 422 and "a seed cannot be given" in seeded.json()["message_en"]
    team = draw_team(world, app_id)
    checked = run(db_url, "pool", "verify-draw", str(app_id))
    assert checked.exit_code == 0, checked.output
    assert "一致 / matches" in checked.output and "seed" in checked.output
    as_json = json.loads(run(db_url, "pool", "verify-draw", str(app_id), "--json").output)
    (only,) = as_json["draws"]
    assert only["team"] == only["redone"] == only["assigned"] == sorted(team) and as_json["matches"] is True
    assert only["candidates"] == sorted(world.users[f"expert{n}"] for n in range(1, 6))
    assert ok(world.client.get(f"/api/applications/{app_id}/draws", headers=world.as_("city")))["matches"] is True
    # a record whose team the seed does not give (a chosen reviewer swapped in) fails the check, and says so
    outsider = next(c for c in only["candidates"] if c not in team)
    forged = sorted([outsider, *team[1:]])
    assert draw(only["candidates"], size=3, seed=only["seed"]) != forged
    with world.engine.begin() as conn:
        conn.execute(sa.update(REVIEW_DRAWS).where(REVIEW_DRAWS.c.id == only["draw_id"]).values(team=forged))
    tampered = run(db_url, "pool", "verify-draw", str(app_id))
    assert tampered.exit_code == 1 and "DOES NOT MATCH" in tampered.output


def test_a_redraw_needs_a_reason_and_is_in_the_firms_chain(world: World, db_url: str) -> None:
    app_id = audited_application(world)
    for n in range(6, 9):  # enough for a whole new team
        world.add_user(f"expert{n}", Role.reviewer, organisation="江苏安全评价中心", trained_on=dt.date(2022, 3, 1))
    first = draw_team(world, app_id)
    no_reason = world.client.post(
        f"/api/applications/{app_id}/team/redraw", json={"reason": " "}, headers=world.as_("center")
    )
    assert no_reason.status_code == 422 and "a reason for the redraw is required" in no_reason.json()["message_en"]
    again = ok(
        world.client.post(
            f"/api/applications/{app_id}/team/redraw", json={"reason": "组员行程冲突"}, headers=world.as_("center")
        )
    )
    assert set(again["reviewer_ids"]).isdisjoint(first) and set(members_of(world, app_id)) == set(again["reviewer_ids"])
    assert kinds_of(world, "home_key")[-2:] == ["review_draw_team", "review_draw_redraw"]
    report = json.loads(run(db_url, "pool", "verify-draw", str(app_id), "--json").output)
    assert [d["kind"] for d in report["draws"]] == ["team", "redraw"] and report["matches"] is True
    assert report["draws"][1]["reason"] == "组员行程冲突"


# ---- recusal, conflicts, disqualification --------------------------------------------------------


def test_a_reviewer_who_steps_aside_leaves_the_team_but_stays_in_the_pool(world: World) -> None:
    app_id = audited_application(world)
    team = draw_team(world, app_id)
    names = {v: k for k, v in world.users.items()}
    leaving = team[0]
    answer = ok(
        world.client.post(
            f"/api/applications/{app_id}/recusals",
            json={"reason": "曾为该企业做过安全评价"},
            headers=world.as_(names[leaving]),
        )
    )
    assert answer["replacement"] not in team and set(members_of(world, app_id)) == {*team[1:], answer["replacement"]}
    assert kinds_of(world, "home_key")[-2:] == ["reviewer_recused", "review_draw_replacement"]
    # nothing else happens to them: still in the pool, still signed in, drawn for other firms
    pool = {r["id"]: r for r in ok(world.client.get("/api/reviewers", headers=world.as_("center")))}
    assert pool[leaving]["active"] is True and pool[leaving]["disqualified_at"] is None
    assert world.client.get("/api/worklists/assignments", headers=world.as_(names[leaving])).status_code == 200
    # but this application is no longer theirs to read or score
    assert world.client.get(f"/api/applications/{app_id}", headers=world.as_(names[leaving])).status_code == 404
    assert score(world, app_id, leaving, 80).status_code == 404
    other = audited_application(world, "home_other")
    ok(world.client.post(f"/api/applications/{other}/team", json={}, headers=world.as_("wujin")), 201)
    with world.engine.connect() as conn:
        candidates = conn.execute(sa.select(REVIEW_DRAWS.c.candidates).where(REVIEW_DRAWS.c.application_id == other))
        assert leaving in candidates.scalar_one()
    # the organiser may record it on a reviewer's behalf, through the pages too
    center = Browser(world, "center")
    stepped = center.post(
        f"/applications/{app_id}/recusal", data={"reviewer_id": str(team[1]), "reason": "亲属在该企业任职"}
    )
    assert stepped.status_code == 303 and team[1] not in members_of(world, app_id)


def test_a_conflict_declared_after_the_draw_takes_the_reviewer_off_that_firms_open_teams(world: World) -> None:
    app_id = audited_application(world)
    team = draw_team(world, app_id)
    answer = ok(
        world.client.post(
            f"/api/reviewers/{team[0]}/consultancies",
            json={"enterprise_id": world.firms["home_key"]},
            headers=world.as_("center"),
        ),
        201,
    )
    (moved,) = answer["reassigned"]
    assert moved["application_id"] == app_id and team[0] not in members_of(world, app_id)
    assert kinds_of(world, "home_key")[-2:] == ["reviewer_removed_conflict", "review_draw_replacement"]
    employed = ok(
        world.client.post(
            f"/api/reviewers/{team[1]}/employer",
            json={"enterprise_id": world.firms["home_key"]},
            headers=world.as_("center"),
        ),
        201,
    )
    assert [r["application_id"] for r in employed["reassigned"]] == [app_id]
    assert team[1] not in members_of(world, app_id) and len(members_of(world, app_id)) == 3


def test_a_disqualified_reviewer_loses_every_access_at_once(world: World, db_url: str) -> None:
    app_id = audited_application(world)
    team = draw_team(world, app_id)
    names = {v: k for k, v in world.users.items()}
    cheat = names[team[0]]
    page = Browser(world, cheat)
    assert page.get(f"/applications/{app_id}").status_code == 200
    assert world.client.get(f"/api/applications/{app_id}", headers=world.as_(cheat)).status_code == 200
    done = run(db_url, "pool", "disqualify", str(team[0]), "--reason", "替企业代写自评报告")
    assert done.exit_code == 0, done.output
    assert world.client.get(f"/api/applications/{app_id}", headers=world.as_(cheat)).status_code == 401
    assert page.get(f"/applications/{app_id}").status_code == 303  # the page session is over: sign in again
    relogin = world.client.post("/api/auth/token", data={"username": cheat, "password": PASSWORD})
    assert relogin.status_code in (401, 403)
    assert team[0] not in members_of(world, app_id) and len(members_of(world, app_id)) == 3
    assert kinds_of(world, "home_key")[-2:] == ["reviewer_disqualified", "review_draw_replacement"]
    with world.engine.connect() as conn:
        profile = conn.execute(sa.select(REVIEWER_PROFILES).where(REVIEWER_PROFILES.c.user_id == team[0])).one()
    assert profile.active is False and profile.disqualified_reason == "替企业代写自评报告"


def test_districts_report_misconduct_and_the_center_decides(world: World, db_url: str) -> None:
    app_id = audited_application(world)
    team = draw_team(world, app_id)
    body = {"reviewer_id": team[0], "enterprise_id": world.firms["home_key"], "application_id": app_id}
    empty = world.client.post("/api/reviewer-reports", json=body | {"description": " "}, headers=world.as_("wujin"))
    assert empty.status_code == 422 and "what happened is required" in empty.json()["message_en"]
    elsewhere = world.client.post(
        "/api/reviewer-reports", json=body | {"description": "收受企业好处"}, headers=world.as_("liyang")
    )
    assert elsewhere.status_code == 404  # a firm outside the district
    filed = ok(
        world.client.post(
            "/api/reviewer-reports", json=body | {"description": "收受企业好处"}, headers=world.as_("wujin")
        ),
        201,
    )
    second = run(
        db_url, "pool", "report", str(team[1]), uscc_of(world.engine, world.firms["home_key"]), "--what", "评审走过场"
    )
    assert second.exit_code == 0, second.output
    listed = ok(world.client.get("/api/reviewer-reports", headers=world.as_("center")))
    assert [(r["reviewer_id"], r["status"]) for r in listed] == [(team[0], "open"), (team[1], "open")]
    assert ok(world.client.get("/api/reviewer-reports", headers=world.as_("liyang"))) == []
    assert world.client.get("/api/reviewer-reports", headers=world.as_("firm")).status_code == 403
    page = Browser(world, "center").get("/reviewer-reports")
    assert "收受企业好处" in page.text and "评审走过场" in page.text
    refused = world.client.post(
        f"/api/reviewer-reports/{filed['id']}/decision",
        json={"decision": "disqualify", "note": "查实"},
        headers=world.as_("wujin"),
    )
    assert refused.status_code == 403
    decided = ok(
        world.client.post(
            f"/api/reviewer-reports/{filed['id']}/decision",
            json={"decision": "disqualify", "note": "查实"},
            headers=world.as_("center"),
        )
    )
    assert decided["status"] == "disqualified" and decided["reassigned"][0]["application_id"] == app_id
    dismissed = run(db_url, "pool", "decide", str(filed["id"] + 1), "--decision", "dismiss", "--note", "查无实据")
    assert dismissed.exit_code == 0, dismissed.output
    statuses = [r["status"] for r in ok(world.client.get("/api/reviewer-reports", headers=world.as_("city")))]
    assert statuses == ["disqualified", "dismissed"]
    pool = {r["id"]: r for r in ok(world.client.get("/api/reviewers", headers=world.as_("center")))}
    assert pool[team[0]]["active"] is False and pool[team[1]]["active"] is True


def test_every_step_of_a_review_is_in_the_chain_and_the_chain_verifies(world: World) -> None:
    app_id = audited_application(world)
    team = draw_team(world, app_id)
    names = {v: k for k, v in world.users.items()}
    ok(
        world.client.post(
            f"/api/applications/{app_id}/recusals", json={"reason": "回避"}, headers=world.as_(names[team[0]])
        )
    )
    for reviewer in members_of(world, app_id):
        ok(score(world, app_id, reviewer, 75), 201)
    ok(world.client.post(f"/api/applications/{app_id}/review-result", json={}, headers=world.as_("center")))
    kinds = kinds_of(world, "home_key")
    assert kinds[kinds.index("pass_audit") + 1 :] == [
        "review_draw_team",
        "reviewer_recused",
        "review_draw_replacement",
        "review_scored",
        "review_scored",
        "review_scored",
        "record_review",
    ]
    with world.engine.connect() as conn:
        assert verify_chain(conn).ok
        firm = conn.execute(sa.select(ENTERPRISES).where(ENTERPRISES.c.id == world.firms["home_key"])).one()
    assert firm.state == "reviewed" and firm.event_count == len(kinds)


def test_a_draw_recorded_only_on_its_assignments_is_still_redone(world: World, db_url: str) -> None:
    """Teams drawn before draws had a record of their own kept the seed and candidates on each assignment."""
    app_id = audited_application(world)
    team = draw_team(world, app_id)
    with world.engine.begin() as conn:
        conn.execute(sa.update(REVIEW_ASSIGNMENTS).values(draw_id=None))
        conn.execute(sa.delete(REVIEW_DRAWS))
    report = json.loads(run(db_url, "pool", "verify-draw", str(app_id), "--json").output)
    (only,) = report["draws"]
    assert only["kind"] == "recorded_on_assignments" and only["redone"] == sorted(team) and report["matches"]
    other = next(s for s in range(1, 100) if draw(only["candidates"], size=3, seed=s) != sorted(team))
    with world.engine.begin() as conn:  # a seed on the assignments that does not give this team
        conn.execute(sa.update(REVIEW_ASSIGNMENTS).values(draw_seed=other))
    assert run(db_url, "pool", "verify-draw", str(app_id)).exit_code == 1
