"""The officials' task lists (`deadlines.tasks`, `GET /api/work`, the page `/work`): search on several words,
filters, both sorts, real pages, counts per kind, each office's scope, and the due date of each kind of task
— expected dates written out below from the campaign's time limits, not taken from the code."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import sqlalchemy as sa

from deadlines.tasks import TaskFilter, task_after, task_list
from states import InvalidInput, Role
from tests.api_helpers import ELSEWHERE, HOME, World
from tests.factories import Driver, make_firm
from tests.test_pages_access import Browser
from workflow.actors import Actor
from workflow.tables import APPLICATIONS, ENTERPRISES, REVIEW_ASSIGNMENTS

UTC = dt.UTC
TODAY = dt.date(2022, 7, 1)  # the test world's clock


def at(day: dt.date, hour: int = 2) -> dt.datetime:
    """An instant on a local (Asia/Shanghai) day: 02:00 UTC is 10:00 in Changzhou."""
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def application(
    world: World,
    *,
    name: str,
    status: str = "applied",
    district: str = HOME,
    key_field: bool = False,
    submitted: dt.date,
    verified: dt.date | None = None,
    audit_passed: dt.date | None = None,
    reviewed: dt.date | None = None,
) -> int:
    """A firm with an open application at a given step, written straight into the tables (the list reads
    only these columns; the engine's path is walked by the browser test)."""
    firm = make_firm(world.engine, district=district, key_field=key_field, name=name)
    state = {"applied": "applied", "verified": "verified", "reviewed": "reviewed"}[status]
    with world.engine.begin() as conn:
        conn.execute(
            sa.update(ENTERPRISES).where(ENTERPRISES.c.id == firm).values(state=state, notified_at=at(submitted))
        )
        conn.execute(
            sa.insert(APPLICATIONS).values(
                enterprise_id=firm,
                status=status,
                submitted_at=at(submitted),
                verified_at=verified and at(verified),
                audit_passed_at=audit_passed and at(audit_passed),
                reviewed_at=reviewed and at(reviewed),
                review_score=80.0 if reviewed else None,
            )
        )
    return firm


def actor(world: World, role: Role, district: str | None = None, user: str | None = None) -> Actor:
    return Actor(name="test", role=role, district_code=district, user_id=world.users.get(user or ""))


def listed(world: World, who: Actor, **filters: Any) -> dict[str, Any]:
    with world.engine.connect() as conn:
        return task_list(conn, actor=who, campaign=world.campaign, clock=world.clock, filters=TaskFilter(**filters))


def names(page: dict[str, Any]) -> list[str]:
    return [i["name"] for i in page["items"]]


def wujin(world: World) -> Actor:
    return actor(world, Role.district_bureau, HOME)


# ---- due dates ---------------------------------------------------------------------------------------

# (kind of task, arrived on (local day), expected due date, whose limit). The campaign file gives the officials
# 15 days to verify, 15 to audit online, 30 to record the review and 10 to certify (本地设置); the plan ends the
# evaluation phase on 2023-12-31 (考评验收阶段(2022年6月至2023年12月)), the last due date of any application.
DUE_DATES = [
    ("verification", dt.date(2022, 6, 20), dt.date(2022, 7, 5), "local"),
    ("verification", dt.date(2023, 12, 20), dt.date(2023, 12, 31), "plan"),  # 15 days would run to 2024-01-04
    ("audit", dt.date(2022, 6, 1), dt.date(2022, 6, 16), "local"),
    ("review", dt.date(2022, 6, 10), dt.date(2022, 7, 10), "local"),
    ("certification", dt.date(2022, 6, 21), dt.date(2022, 7, 1), "local"),
]


@pytest.mark.parametrize(("kind", "arrived", "due", "source"), DUE_DATES)
def test_the_due_date_comes_from_the_campaign_time_limits(
    world: World, kind: str, arrived: dt.date, due: dt.date, source: str
) -> None:
    steps: dict[str, dict[str, Any]] = {
        "verification": {"status": "applied"},
        "audit": {"status": "verified", "verified": arrived},
        "review": {"status": "verified", "verified": arrived, "audit_passed": arrived},
        "certification": {"status": "reviewed", "verified": arrived, "audit_passed": arrived, "reviewed": arrived},
    }
    application(world, name="常州期限测试有限公司", submitted=arrived, **steps[kind])
    who = actor(world, Role.city_bureau) if kind == "certification" else wujin(world)
    [item] = listed(world, who, kind=kind)["items"]
    assert item["due"] == due.isoformat()
    assert item["due_source"] == source
    assert item["days_overdue"] == max(0, (TODAY - due).days)
    assert item["due_today"] is (due == TODAY)
    assert item["days_waiting"] == (TODAY - arrived).days


def test_an_undeliverable_notice_is_due_when_mobilization_ends(world: World) -> None:
    firm = make_firm(world.engine, district=HOME, email=None, name="常州无邮箱机械有限公司")
    page = listed(world, wujin(world), kind="undeliverable")
    [item] = [i for i in page["items"] if i["enterprise_id"] == firm]
    assert item["due"] == "2022-02-28"  # 动员部署阶段(2022年2月底前)
    assert item["due_source"] == "plan" and item["days_overdue"] == 123
    assert item["principal"] == "张三" and item["phone"] == "13900000000"


# ---- search, filters, sort, pages --------------------------------------------------------------------


@pytest.fixture
def queue(world: World) -> dict[str, int]:
    """Seven applications of the home district and one elsewhere, arriving on different days."""
    firms = {
        "alpha": application(world, name="常州天宁精工机械有限公司", submitted=dt.date(2022, 6, 5)),
        "beta": application(world, name="常州武进精工化工有限公司", key_field=True, submitted=dt.date(2022, 6, 25)),
        "gamma": application(world, name="常州新北纺织有限公司", submitted=dt.date(2022, 6, 12)),
        "delta": application(world, name="常州精工纺织有限公司", submitted=dt.date(2022, 6, 30)),
        "epsilon": application(world, name="常州金坛电子有限公司", submitted=dt.date(2022, 6, 1)),
        # verified on 2022-06-10, online audit due 2022-06-25: overdue, but arrived at the district's desk later
        "zeta": application(
            world,
            name="常州溧阳建材有限公司",
            status="verified",
            submitted=dt.date(2022, 6, 2),
            verified=dt.date(2022, 6, 10),
        ),
        "eta": application(world, name="常州钟楼精工有限公司", submitted=dt.date(2022, 6, 18)),
        "away": application(world, name="溧阳精工机械有限公司", district=ELSEWHERE, submitted=dt.date(2022, 6, 1)),
    }
    return firms


def test_longest_waiting_comes_first_and_each_sort_orders_the_list(world: World, queue: dict[str, int]) -> None:
    page = listed(world, wujin(world))
    assert names(page) == [
        "常州金坛电子有限公司",  # 06-01
        "常州天宁精工机械有限公司",  # 06-05
        "常州溧阳建材有限公司",  # audit since 06-10
        "常州新北纺织有限公司",  # 06-12
        "常州钟楼精工有限公司",  # 06-18
        "常州武进精工化工有限公司",  # 06-25
        "常州精工纺织有限公司",  # 06-30
    ]
    assert names(listed(world, wujin(world), sort="recent")) == list(reversed(names(page)))
    by_due = listed(world, wujin(world), sort="due")["items"]
    # due: 06-16, 06-20, 06-25 (the audit: 06-10 + 15), 06-27, 07-03, 07-10, 07-15
    assert [i["due"] for i in by_due] == [
        "2022-06-16",
        "2022-06-20",
        "2022-06-25",
        "2022-06-27",
        "2022-07-03",
        "2022-07-10",
        "2022-07-15",
    ]
    assert [i["due"] for i in listed(world, wujin(world), sort="due_late")["items"]] == [i["due"] for i in by_due][::-1]


def test_every_word_of_the_search_must_match(world: World, queue: dict[str, int]) -> None:
    assert sorted(names(listed(world, wujin(world), q="精工"))) == sorted(
        ["常州天宁精工机械有限公司", "常州武进精工化工有限公司", "常州精工纺织有限公司", "常州钟楼精工有限公司"]
    )
    assert names(listed(world, wujin(world), q="精工 纺织")) == ["常州精工纺织有限公司"]
    assert names(listed(world, wujin(world), q="精工 纺织 化工")) == []
    with world.engine.connect() as conn:
        code = conn.execute(sa.select(ENTERPRISES.c.uscc).where(ENTERPRISES.c.id == queue["gamma"])).scalar_one()
    assert names(listed(world, wujin(world), q=code.lower())) == ["常州新北纺织有限公司"]
    assert names(listed(world, wujin(world), q=f"纺织 {code[:12]}")) == ["常州新北纺织有限公司"]
    assert names(listed(world, wujin(world), q="100%")) == []  # a wildcard is a character


def test_filters_by_field_sector_kind_and_overdue(world: World, queue: dict[str, int]) -> None:
    key = listed(world, wujin(world), key_field=True)
    assert names(key) == ["常州武进精工化工有限公司"]
    assert names(listed(world, wujin(world), sector="chemical")) == ["常州武进精工化工有限公司"]
    assert names(listed(world, wujin(world), kind="audit")) == ["常州溧阳建材有限公司"]
    late = listed(world, wujin(world), overdue=True)
    # due before 2022-07-01: 06-16 (金坛), 06-20 (天宁), 06-25 (溧阳建材 audit), 06-27 (新北)
    assert sorted(names(late)) == sorted(
        ["常州金坛电子有限公司", "常州天宁精工机械有限公司", "常州溧阳建材有限公司", "常州新北纺织有限公司"]
    )
    assert late["counts"]["verification"] == {"total": 3, "overdue": 3}
    assert late["counts"]["audit"] == {"total": 1, "overdue": 1}
    everything = listed(world, wujin(world))
    assert everything["counts"]["verification"] == {"total": 6, "overdue": 3}
    assert everything["counts"]["audit"] == {"total": 1, "overdue": 1}
    assert everything["counts"]["review"] == {"total": 0, "overdue": 0}
    assert everything["total"] == 7


def test_pages_hold_page_size_rows_and_jump(world: World, queue: dict[str, int]) -> None:
    first = listed(world, wujin(world), kind="verification", page_size=20)
    assert first["pages"] == 1 and first["total"] == 6
    for n in range(25):
        application(world, name=f"常州批量{n:02d}五金有限公司", submitted=dt.date(2022, 5, 1) + dt.timedelta(days=n))
    p1 = listed(world, wujin(world), kind="verification", page_size=20)
    p2 = listed(world, wujin(world), kind="verification", page_size=20, page=2)
    assert p1["total"] == 31 and p1["pages"] == 2
    assert len(p1["items"]) == 20 and len(p2["items"]) == 11
    assert names(p1)[0] == "常州批量00五金有限公司"
    assert names(p2)[-1] == "常州精工纺织有限公司"  # the newest (06-30) ends the last page
    assert not set(names(p1)) & set(names(p2))
    assert [i["position"] for i in p2["items"]] == list(range(20, 31))
    assert names(listed(world, wujin(world), kind="verification", page_size=20, page=5)) == []
    for bad in ({"page_size": 7}, {"page": 0}, {"sort": "name"}, {"kind": "certification"}, {"sector": "x"}):
        with pytest.raises(InvalidInput):
            listed(world, wujin(world), **bad)


def test_each_office_sees_its_own_tasks(world: World, queue: dict[str, int]) -> None:
    assert "溧阳精工机械有限公司" not in names(listed(world, wujin(world), page_size=100))
    # a district asking for another district's firms gets none of them
    assert names(listed(world, wujin(world), district=ELSEWHERE)) == []
    liyang = listed(world, actor(world, Role.district_bureau, ELSEWHERE))
    assert names(liyang) == ["溧阳精工机械有限公司"]
    center = listed(world, actor(world, Role.support_center))
    assert center["kinds"] == ["audit", "review"] and names(center) == []  # the audit waiting is a non-key firm's
    city = listed(world, actor(world, Role.city_bureau))
    assert city["kinds"] == ["certification", "undeliverable"]
    assert listed(world, actor(world, Role.enterprise))["kinds"] == []


def test_the_next_task_follows_the_firm_or_takes_its_place(world: World, queue: dict[str, int]) -> None:
    filters = TaskFilter(kind="verification")
    who = wujin(world)
    with world.engine.connect() as conn:
        first = task_after(
            conn,
            actor=who,
            campaign=world.campaign,
            clock=world.clock,
            filters=filters,
            position=0,
            enterprise_id=queue["epsilon"],
        )
    assert first is not None and first["name"] == "常州天宁精工机械有限公司" and first["position"] == 1
    Driver(world.engine, world.campaign, queue["epsilon"]).fire(
        "return_application", Role.district_bureau, {"reason": "缺少安全生产责任制文件"}
    )
    with world.engine.connect() as conn:  # the returned firm left the list: the next one moved to its place
        after = task_after(
            conn,
            actor=who,
            campaign=world.campaign,
            clock=world.clock,
            filters=filters,
            position=0,
            enterprise_id=queue["epsilon"],
        )
        last = task_after(
            conn,
            actor=who,
            campaign=world.campaign,
            clock=world.clock,
            filters=filters,
            position=4,
            enterprise_id=queue["delta"],
        )
    assert after is not None and after["name"] == "常州天宁精工机械有限公司" and after["position"] == 0
    assert last is None


# ---- the API and the page ------------------------------------------------------------------------------


def test_the_api_lists_the_same_tasks_with_role_and_scope(world: World, queue: dict[str, int]) -> None:
    answer = world.client.get("/api/work", params={"q": "精工", "sort": "due"}, headers=world.as_("wujin"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [i["name"] for i in body["items"]] == names(listed(world, wujin(world), q="精工", sort="due"))
    assert body["counts"]["verification"]["total"] == 4  # 天宁精工, 武进精工, 精工纺织, 钟楼精工
    assert body["limits"]["verification"] == {"days": 15, "date": None, "source": "local", "words": "核实：15 天"}
    away = world.client.get("/api/work", headers=world.as_("liyang")).json()
    assert [i["name"] for i in away["items"]] == ["溧阳精工机械有限公司"]
    assert world.client.get("/api/work", headers=world.as_("firm")).status_code == 403
    assert world.client.get("/api/work", headers=world.as_("wujin_gov")).status_code == 403
    bad = world.client.get("/api/work", params={"page_size": 7}, headers=world.as_("wujin"))
    assert bad.status_code == 422 and "每页" in bad.text
    late = world.client.get("/api/work", params={"overdue": "true", "kind": "audit"}, headers=world.as_("wujin"))
    assert [i["name"] for i in late.json()["items"]] == ["常州溧阳建材有限公司"]


def test_the_page_shows_filters_counts_due_dates_and_the_legend(world: World, queue: dict[str, int]) -> None:
    page = Browser(world, "wujin").get("/work?q=精工+纺织")
    assert page.status_code == 200
    assert "常州精工纺织有限公司" in page.text and "常州天宁精工机械有限公司" not in page.text
    assert "本地设置" in page.text and "已逾期" in page.text and "今日到期" in page.text
    english = Browser(world, "wujin").get("/work?kind=verification&lang=en")
    assert "Overdue" in english.text and "local setting" in english.text
    assert Browser(world, "wujin").get("/work?page_size=7").status_code == 422


def test_key_field_audits_are_the_support_centers_and_a_reviewer_sees_only_its_own_sheets(world: World) -> None:
    application(
        world,
        name="常州重点化工有限公司",
        key_field=True,
        status="verified",
        submitted=dt.date(2022, 6, 1),
        verified=dt.date(2022, 6, 20),
    )
    other = application(
        world,
        name="常州评审中机械有限公司",
        status="verified",
        submitted=dt.date(2022, 6, 1),
        verified=dt.date(2022, 6, 5),
        audit_passed=dt.date(2022, 6, 8),
    )
    center = listed(world, actor(world, Role.support_center), kind="audit")
    assert names(center) == ["常州重点化工有限公司"] and center["items"][0]["due"] == "2022-07-05"
    assert "常州重点化工有限公司" not in names(listed(world, wujin(world), page_size=100))
    with world.engine.begin() as conn:
        application_id = conn.execute(
            sa.select(APPLICATIONS.c.id).where(APPLICATIONS.c.enterprise_id == other)
        ).scalar_one()
        conn.execute(
            sa.insert(REVIEW_ASSIGNMENTS).values(
                application_id=application_id,
                reviewer_id=world.users["expert1"],
                status="active",
                draw_seed=1,
                draw_pool=[world.users["expert1"]],
                assigned_at=at(dt.date(2022, 6, 9)),
                assigned_by="wujin",
            )
        )
    mine = listed(world, actor(world, Role.reviewer, user="expert1"))
    assert mine["kinds"] == ["assignment"] and names(mine) == ["常州评审中机械有限公司"]
    assert mine["items"][0]["due"] == "2022-07-09"  # the review's 30 days (本地设置) from the draw on 06-09
    assert names(listed(world, actor(world, Role.reviewer, user="expert2"))) == []


def test_a_batch_names_every_firm_it_could_not_act_on(world: World, queue: dict[str, int]) -> None:
    district = Browser(world, "wujin")
    versions = {}
    with world.engine.connect() as conn:
        for name, firm in queue.items():
            versions[name] = conn.execute(sa.select(ENTERPRISES.c.version).where(ENTERPRISES.c.id == firm)).scalar_one()
    picked = [f"{queue[n]}:{versions[n]}" for n in ("alpha", "zeta", "away")]
    picked.append(f"{queue['gamma']}:{versions['gamma'] + 1}")  # the list showed another version
    answer = district.post(
        "/work/batch",
        data={
            "trigger": "return_application",
            "kind": "verification",
            "reason": "缺少安全生产责任制文件",
            "firm": picked,
        },
    )
    assert answer.status_code == 200, answer.text
    rows = re.findall(r'<tr class="(ok-row|refused-row)">(.*?)</tr>', answer.text, re.S)
    assert [kind for kind, _ in rows] == ["ok-row", "refused-row", "refused-row", "refused-row"]
    assert "常州天宁精工机械有限公司" in rows[0][1] and "成功" in rows[0][1]
    assert "常州溧阳建材有限公司" in rows[1][1] and "不能执行“退回申请”" in rows[1][1]  # verified already
    assert "找不到该企业" in rows[2][1]  # another district's firm is not even named
    assert "常州新北纺织有限公司" in rows[3][1]
    assert "成功 1 家，未执行 3 家" in answer.text
    with world.engine.connect() as conn:
        states = dict(
            conn.execute(
                sa.select(ENTERPRISES.c.id, ENTERPRISES.c.state).where(ENTERPRISES.c.id.in_(list(queue.values())))
            ).all()
        )
    assert states[queue["alpha"]] == "self_assessing" and states[queue["gamma"]] == "applied"
    assert states[queue["away"]] == "applied"
    # a verification without its opinion (核实意见) is refused firm by firm, in words
    refused = district.post(
        "/work/batch",
        data={"trigger": "verify", "kind": "verification", "firm": [f"{queue['delta']}:{versions['delta']}"]},
    )
    assert "请填写核实意见" in refused.text
    # nothing ticked, or an action this list does not offer
    assert district.post("/work/batch", data={"trigger": "verify", "kind": "verification"}).status_code == 422
    assert district.post("/work/batch", data={"trigger": "certify", "kind": "verification"}).status_code == 422
