"""Who sees what, written by hand from the plan's roles (DESIGN.md, roles): role × kind of record × a record
of the own and of another district (own and other firm; a reviewer assigned and one not). Each cell is
checked through `workflow.actors` (the scope predicate and `require`) and through the JSON API, so a
divergence between the rule and either door fails here.

The plan's words behind the table:
- 市应急管理局 and 市应急保障中心 see every firm's records; the 辖市(区)应急管理局 only its own district's;
- a firm only its own (企业…自评、隐患、申请);
- 评定人员库成员 only the applications they are assigned to (评定人员库成员方可参加…审核工作), with their
  evidence and the draws of their team; one who is not on the team sees nothing;
- 属地政府 only the referrals the city confirmed for its area (将达标无望的重点监管领域企业名单按流程报送属地政府)
  and the firms named in them — not their hazards, applications or evidence.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from states import OutOfScope
from tests.api_helpers import ELSEWHERE, HOME, World
from tests.test_api_access import add_guidance, setup_records
from tests.test_api_paths import ok
from workflow.accounts import actor_of
from workflow.actors import Actor, require, visible
from workflow.tables import REFERRAL_SUGGESTIONS, REFERRALS, REVIEW_ASSIGNMENTS, REVIEW_DRAWS, USERS

ALL = "all"
# who: the signed-in people of the table (tests/api_helpers.py builds them; the reviewers come from the team).
WHO = ("city", "center", "district", "local_gov", "firm", "reviewer", "other_reviewer")

# kind -> who -> the sample records it sees (ALL: every sample). A name missing from a row sees none.
TABLE: dict[str, dict[str, Any]] = {
    # samples: home_key (own district, the firm's own, referred and confirmed), home_other (own district,
    # another firm), away_key (another district)
    "firm": {
        "city": ALL,
        "center": ALL,
        "district": {"home_key", "home_other"},
        "local_gov": {"home_key"},  # named in a confirmed referral of its area
        "firm": {"home_key"},
    },
    "application": {
        "city": ALL,
        "center": ALL,
        "district": {"home_key", "home_other"},
        "firm": {"home_key"},
        "reviewer": {"home_key"},  # the one it is assigned to
    },
    "hazard": {"city": ALL, "center": ALL, "district": {"home_key", "home_other"}, "firm": {"home_key"}},
    "evidence": {
        "city": ALL,
        "center": ALL,
        "district": {"home_key", "home_other"},
        "firm": {"home_key"},
        "reviewer": {"home_key"},
    },
    # samples: home, away (escalations the districts handle)
    "escalation": {"city": ALL, "center": ALL, "district": {"home"}},
    # samples: home (confirmed), home_proposed (not yet confirmed by the city), away (confirmed)
    "referral": {
        "city": ALL,
        "center": ALL,
        "district": {"home", "home_proposed"},
        "local_gov": {"home"},
    },
    "referral_suggestion": {"city": ALL, "center": ALL, "district": {"home"}},
    # samples: mine (the reviewer's own assignment), teammate (another member's, same team)
    "review_assignment": {"city": ALL, "center": ALL, "district": ALL, "reviewer": {"mine"}},
    # samples: home_key (the draw of the home key-field firm's team)
    "review_draw": {"city": ALL, "center": ALL, "district": ALL, "reviewer": ALL},
    # samples: home (reported by the home district), away (by another district)
    "reviewer_report": {"city": ALL, "center": ALL, "district": {"home"}},
    # samples: home, away (the guidance register is the bureaus': the city and the district)
    "guidance": {"city": ALL, "district": {"home"}},
}


def expected(kind: str, who: str, sample: str) -> bool:
    seen = TABLE[kind].get(who, set())
    return seen == ALL or sample in seen


def _inserted(conn: sa.Connection, table: sa.Table, **values: Any) -> int:
    key = conn.execute(sa.insert(table).values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


@pytest.fixture
def scene(world: World) -> dict[str, Any]:
    records = setup_records(world)
    records["guidance"] = add_guidance(world)
    c, f = world.client, world.firms
    names = {v: k for k, v in world.users.items()}
    reviewer = names[records["team_reviewers"][0]]
    teammate_id = records["team_reviewers"][1]
    away_report = ok(
        c.post(
            "/api/reviewer-reports",
            json={"reviewer_id": world.users["spare"], "enterprise_id": f["away_key"], "description": "代写材料"},
            headers=world.as_("liyang"),
        ),
        201,
    )
    now = world.clock.now()
    home_app = records["applications"]["home_key"]
    with world.engine.begin() as conn:
        proposed = _inserted(
            conn,
            REFERRALS,
            dedupe_key="table:proposed",
            enterprise_id=f["home_other"],
            district_code=HOME,
            grounds="non_participating",
            status="proposed",
            detail={},
            proposed_at=now,
            proposed_by="test",
        )
        suggestions = {
            side: _inserted(
                conn,
                REFERRAL_SUGGESTIONS,
                dedupe_key=f"table:{side}",
                enterprise_id=f[firm],
                district_code=district,
                grounds="non_participating",
                status="open",
                detail={},
                suggested_at=now,
            )
            for side, firm, district in (("home", "home_other", HOME), ("away", "away_key", ELSEWHERE))
        }
        assignments = {
            r.reviewer_id: r.id
            for r in conn.execute(
                sa.select(REVIEW_ASSIGNMENTS.c.id, REVIEW_ASSIGNMENTS.c.reviewer_id).where(
                    REVIEW_ASSIGNMENTS.c.application_id == home_app
                )
            )
        }
        draw = conn.execute(sa.select(sa.func.min(REVIEW_DRAWS.c.id)).where(REVIEW_DRAWS.c.application_id == home_app))
        draw_id = draw.scalar_one()
        users = {r.username: r for r in conn.execute(sa.select(USERS))}
    firms = {k: f[k] for k in ("home_key", "home_other", "away_key")}
    logins = {
        "city": "city",
        "center": "center",
        "district": "wujin",
        "local_gov": "wujin_gov",
        "firm": "firm",
        "reviewer": reviewer,
        "other_reviewer": "spare",
    }
    return {
        "logins": logins,
        "actors": {who: actor_of(users[name]) for who, name in logins.items()},
        "samples": {
            "firm": firms,
            "application": records["applications"],
            "hazard": records["hazards"],
            "evidence": records["evidence"],
            "escalation": records["escalations"],
            "referral": records["referrals"] | {"home_proposed": proposed},
            "referral_suggestion": suggestions,
            "review_assignment": {
                "mine": assignments[world.users[reviewer]],
                "teammate": assignments[teammate_id],
            },
            "review_draw": {"home_key": draw_id},
            "reviewer_report": {"home": records["report"], "away": away_report["id"]},
            "guidance": records["guidance"],
        },
        "firm_of": {records["hazards"][k]: f[k] for k in records["hazards"]},
        "app_of_assignment": home_app,
        "app_of_draw": {draw_id: home_app},
    }


def _listed(world: World, login: str, path: str, record_id: int, key: str = "id") -> bool:
    response = world.client.get(f"/api{path}", headers=world.as_(login))
    if response.status_code in (403, 404):
        return False
    body = ok(response)
    items = body["items"] if isinstance(body, dict) else body
    return any(item[key] == record_id for item in items)


def _opens(world: World, login: str, path: str) -> bool:
    response = world.client.get(f"/api{path}", headers=world.as_(login))
    assert response.status_code in (200, 403, 404), (path, response.status_code, response.text)
    return response.status_code == 200


def through_api(world: World, scene: dict[str, Any], kind: str, who: str, record_id: int) -> bool:
    """Whether the JSON API shows the record to this person (a refused role or a 404 both say no)."""
    login = scene["logins"][who]
    match kind:
        case "firm" if who == "local_gov":  # the local government reads firms as named in its referrals
            return _listed(world, login, "/referrals", record_id, key="enterprise_id")
        case "firm":
            return _opens(world, login, f"/enterprises/{record_id}")
        case "application":
            return _opens(world, login, f"/applications/{record_id}")
        case "hazard":
            return _listed(world, login, f"/enterprises/{scene['firm_of'][record_id]}/hazards", record_id)
        case "evidence":
            return _opens(world, login, f"/evidence/{record_id}")
        case "escalation":
            return _listed(world, login, "/escalations", record_id)
        case "referral":
            return _listed(world, login, "/referrals", record_id)
        case "referral_suggestion":
            return _listed(world, login, "/referrals/suggestions", record_id)
        case "review_assignment" if who in ("reviewer", "other_reviewer"):
            return _listed(world, login, "/worklists/assignments", record_id, key="assignment_id")
        case "review_assignment":  # the offices read a team through its draws
            return _opens(world, login, f"/applications/{scene['app_of_assignment']}/draws")
        case "review_draw":
            return _opens(world, login, f"/applications/{scene['app_of_draw'][record_id]}/draws")
        case "reviewer_report":
            return _listed(world, login, "/reviewer-reports", record_id)
        case "guidance":
            return _listed(world, login, "/guidance", record_id)
    raise AssertionError(f"no API probe for {kind}")


def test_the_table_covers_every_kind_of_record() -> None:
    from workflow.actors import SCOPES

    # the firm's certificate and self-assessment are read through the firm (its certificate route) and
    # have no route of their own: every other kind is in the table
    assert set(SCOPES) - set(TABLE) == {"certification", "self_assessment"}


@pytest.mark.parametrize("kind", sorted(TABLE))
def test_who_sees_what(world: World, scene: dict[str, Any], kind: str) -> None:
    wrong: list[str] = []
    with world.engine.connect() as conn:
        for who in WHO:
            actor: Actor = scene["actors"][who]
            for sample, record_id in scene["samples"][kind].items():
                want = expected(kind, who, sample)
                seen = visible(conn, actor, kind, record_id)
                if seen != want:
                    wrong.append(f"actors: {who} {'should' if want else 'should not'} see {kind} {sample}")
                try:
                    require(conn, actor, kind, record_id)
                    required = True
                except OutOfScope:
                    required = False
                if required != want:
                    wrong.append(f"require: {who} {'should' if want else 'should not'} get {kind} {sample}")
                if through_api(world, scene, kind, who, record_id) != want:
                    wrong.append(f"API: {who} {'should' if want else 'should not'} see {kind} {sample}")
    assert wrong == []
