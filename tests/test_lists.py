"""The firm list as a bureau uses it: sorted by any column shown (both ways, ties by the directory's order),
pages by number and by their neighbours, page sizes within bounds, searches of several words, and a sort
key nobody offers refused in words. The expected orders come from the rows written below, sorted here by
the rules the list page states — never from the query's own table."""

from __future__ import annotations

import datetime as dt
import random
import re
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from states import Role
from tests.api_helpers import World
from tests.test_pages_access import Browser
from workflow import uscc
from workflow.actors import Actor
from workflow.guidance import assign_guide
from workflow.tables import ENTERPRISES, ESCALATIONS, REFERRALS

# the states in the order the campaign passes through them (the machine's path, then closed)
CAMPAIGN_ORDER = [
    "mobilized",
    "self_assessing",
    "rectifying",
    "applied",
    "verified",
    "reviewed",
    "certified",
    "closed",
]
WORD = "样本"  # in every name below and in no other firm of the test world
# name, district, key field, above size, state, day it entered the state, overdue (an open escalation)
ROWS = [
    ("常州样本丙化工有限公司", "320412", True, True, "applied", dt.date(2022, 5, 3), True),
    ("常州样本甲机械有限公司", "320481", False, True, "mobilized", dt.date(2022, 1, 10), False),
    ("常州样本乙化工有限公司", "320412", True, False, "certified", dt.date(2022, 6, 1), False),
    ("常州样本丁纺织有限公司", "320402", False, False, "self_assessing", dt.date(2022, 3, 15), True),
    ("常州样本戊机械有限公司", "320412", False, True, "closed", dt.date(2022, 5, 3), False),
    ("常州样本己化工有限公司", "320481", True, True, "rectifying", dt.date(2022, 4, 20), False),
    ("常州样本庚五金有限公司", "320402", False, True, "mobilized", dt.date(2022, 1, 10), True),
]
DISTRICT_NAMES = {"320402": "天宁区", "320412": "武进区", "320481": "溧阳市"}


def write_rows(world: World) -> list[dict[str, Any]]:
    """The rows above as firms of the directory (ids in the order written), with their credit codes."""
    firms = []
    with world.engine.begin() as conn:
        for n, (name, district, key, above, state, day, overdue) in enumerate(ROWS):
            since = dt.datetime.combine(day, dt.time(4), tzinfo=dt.UTC)
            code = uscc.make(random.Random(1000 + n), division=district)
            firm_id = conn.execute(
                sa.insert(ENTERPRISES).values(
                    uscc=code,
                    name=name,
                    district_code=district,
                    sector="chemical" if key else "machinery",
                    key_field=key,
                    above_size=above,
                    principal="张三",
                    phone="13900000000",
                    email=f"f{n}@example.com",
                    state=state,
                    version=1,
                    state_since=since,
                    created_at=since,
                    updated_at=since,
                )
            ).inserted_primary_key[0]
            if overdue:
                conn.execute(
                    sa.insert(ESCALATIONS).values(
                        dedupe_key=f"key_field_started:{firm_id}:firm",
                        rule="key_field_started",
                        subject_kind="enterprise",
                        subject_id=firm_id,
                        enterprise_id=firm_id,
                        district_code=district,
                        step="firm",
                        deadline=dt.date(2022, 12, 31),
                        days_overdue=3,
                        status="open",
                        detail={},
                        created_at=since,
                    )
                )
            firms.append(
                {
                    "id": int(firm_id),
                    "name": name,
                    "uscc": code,
                    "district": district,
                    "field": (key, above),
                    "state": CAMPAIGN_ORDER.index(state),
                    "state_since": since,
                    "overdue": overdue,
                }
            )
    return firms


def expected(firms: list[dict[str, Any]], key: str, descending: bool) -> list[str]:
    # code-point order for names and codes (SQLite's and PostgreSQL's C collation); ties by id, same direction
    ordered = sorted(firms, key=lambda f: (f[key], f["id"]), reverse=descending)
    return [f["name"] for f in ordered]


def api_names(world: World, **params: Any) -> list[str]:
    response = world.client.get("/api/enterprises", params={"q": WORD, **params}, headers=world.as_("city"))
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


def page_names(html: str) -> list[str]:
    return re.findall(r'<td><a href="/firms/\d+">([^<]+)</a></td>', html)


SORTS = ["name", "uscc", "district", "field", "state", "state_since", "overdue"]


@pytest.mark.parametrize("key", SORTS)
def test_every_column_sorts_both_ways_on_the_api_and_the_page(world: World, key: str) -> None:
    firms = write_rows(world)
    browser = Browser(world, "city")
    for descending in (False, True):
        sort = ("-" if descending else "") + key
        want = expected(firms, key, descending)
        assert api_names(world, sort=sort) == want, sort
        page = browser.get("/firms", params={"q": WORD, "sort": sort})
        assert page.status_code == 200
        assert page_names(page.text) == want, sort
    # the header links sort by the column, keeping the search; the sorted column's link turns the order round
    page = browser.get("/firms", params={"q": WORD, "sort": key})
    links = re.findall(r'<a class="sort[^"]*" href="([^"]+)"', page.text)
    assert any(f"sort=-{key}" in link and "q=" in link for link in links), links
    assert all("q=" in link for link in links)


def test_the_directory_order_is_the_default(world: World) -> None:
    firms = write_rows(world)
    assert api_names(world) == [f["name"] for f in firms]


def test_jump_next_and_previous_pages(world: World) -> None:
    firms = write_rows(world)
    want = expected(firms, "name", True)
    headers = world.as_("city")

    def get(**params: Any) -> dict[str, Any]:
        response = world.client.get(
            "/api/enterprises", params={"q": WORD, "sort": "-name", "page_size": 3, **params}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    second = get(page=2)  # a jump
    assert [i["name"] for i in second["items"]] == want[3:6]
    assert (second["total"], second["pages"]) == (7, 3)
    third = get(page=3, after=second["last_id"])  # the next page, sought from the last row of the one before
    assert [i["name"] for i in third["items"]] == want[6:]
    assert [i["name"] for i in get(page=3)["items"]] == want[6:]  # the same page jumped to
    first = get(page=1, before=second["first_id"])  # the previous page, sought backwards
    assert [i["name"] for i in first["items"]] == want[:3]
    assert get(page=4)["items"] == []  # past the end: nothing, not an error

    # the page: the jump form keeps the filters and sort; next and previous carry their neighbour
    browser = Browser(world, "city")
    page = browser.get("/firms", params={"q": WORD, "sort": "-name", "page_size": 20, "page": 1})
    assert page_names(page.text) == want
    page = browser.get("/firms", params={"q": WORD, "sort": "state", "page_size": 20})
    assert 'name="sort" value="state"' in page.text and 'name="page_size"' in page.text
    small = browser.get("/firms", params={"q": WORD, "sort": "-name", "page_size": 20, "page": 1})
    assert "跳至页码" in small.text
    names_by_page = []
    path = f"/firms?q={WORD}&sort=-name&page_size=2"
    for _ in range(4):
        page = browser.get(path)
        names_by_page += page_names(page.text)
        found = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        if found is None:
            break
        path = found.group(1).replace("&amp;", "&")
        assert "after=" in path and "sort=-name" in path and "q=" in path
    assert names_by_page == want
    back = re.search(r'<a href="([^"]+)" rel="prev">', page.text)
    assert back is not None and "before=" in back.group(1)
    assert page_names(browser.get(back.group(1).replace("&amp;", "&")).text) == want[4:6]


@pytest.mark.parametrize("size", [0, 201, -1])
def test_page_size_out_of_bounds_is_refused(world: World, size: int) -> None:
    response = world.client.get("/api/enterprises", params={"page_size": size}, headers=world.as_("city"))
    assert response.status_code == 422
    page = Browser(world, "city").get("/firms", params={"page_size": size})
    assert page.status_code == 422


@pytest.mark.parametrize("size", [1, 20, 200])
def test_page_sizes_within_bounds(world: World, size: int) -> None:
    write_rows(world)
    body = world.client.get("/api/enterprises", params={"q": WORD, "page_size": size}, headers=world.as_("city")).json()
    assert len(body["items"]) == min(size, len(ROWS)) and body["page_size"] == size
    page = Browser(world, "city").get("/firms", params={"q": WORD, "page_size": size})
    assert len(page_names(page.text)) == min(size, len(ROWS))


def test_several_words_must_all_match(world: World) -> None:
    firms = write_rows(world)
    assert sorted(api_names(world, q="样本 化工")) == sorted(n for n, *_ in ROWS if "化工" in n)
    assert sorted(api_names(world, q="化工　样本")) == sorted(n for n, *_ in ROWS if "化工" in n)  # 全角空格
    assert api_names(world, q="样本 化工 甲") == []  # 甲 is a machine works
    assert api_names(world, q="样本 丙 化工") == ["常州样本丙化工有限公司"]
    code = firms[1]["uscc"]
    assert api_names(world, q=code) == [firms[1]["name"]]  # a whole credit code
    assert api_names(world, q=code.lower()) == [firms[1]["name"]]
    prefix = firms[1]["uscc"][:12]
    assert firms[1]["name"] in api_names(world, q=f"{prefix} 机械")  # a code's start and a word of the name
    page = Browser(world, "city").get("/firms", params={"q": "样本 化工"})
    assert sorted(page_names(page.text)) == sorted(n for n, *_ in ROWS if "化工" in n)
    assert "共 3 家" in page.text


def test_the_search_stays_in_the_callers_district(world: World) -> None:
    write_rows(world)
    response = world.client.get("/api/enterprises", params={"q": "样本 化工"}, headers=world.as_("wujin"))
    names = [i["name"] for i in response.json()["items"]]
    assert sorted(names) == sorted(n for n, d, *_ in ROWS if "化工" in n and d == "320412")


def test_an_unknown_sort_key_is_refused_in_words(world: World) -> None:
    response = world.client.get("/api/enterprises", params={"sort": "password"}, headers=world.as_("city"))
    assert response.status_code == 422
    assert "password" in response.text and "state_since" in response.text  # what was asked, what may be
    page = Browser(world, "city").get("/firms", params={"sort": "-principal"})
    assert page.status_code == 422 and "不能按“principal”排序" in page.text
    too_many = world.client.get("/api/enterprises", params={"q": "a b c d e f"}, headers=world.as_("city"))
    assert too_many.status_code == 422 and "at most 5" in too_many.text


# the referral of each firm above (by its row): grounds, status, day proposed
REFERRED = {
    0: ("failed_review_twice", "confirmed", dt.date(2023, 2, 3)),
    1: ("non_participating", "proposed", dt.date(2023, 1, 5)),
    2: ("major_hazard_overdue", "acknowledged", dt.date(2023, 3, 1)),
    3: ("non_participating", "declined", dt.date(2023, 1, 5)),
    5: ("non_participating", "withdrawn", dt.date(2023, 2, 20)),
    6: ("major_hazard_overdue", "proposed", dt.date(2022, 12, 30)),
}
GROUNDS_ORDER = ["non_participating", "failed_review_twice", "major_hazard_overdue"]  # the catalogue's order
REFERRAL_ORDER = ["proposed", "confirmed", "acknowledged", "declined", "withdrawn"]  # its path, then its ends


def write_referrals(world: World, firms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    with world.engine.begin() as conn:
        for n, (grounds, status, day) in REFERRED.items():
            firm = firms[n]
            at = dt.datetime.combine(day, dt.time(4), tzinfo=dt.UTC)
            referral_id = conn.execute(
                sa.insert(REFERRALS).values(
                    dedupe_key=f"referral:{grounds}:enterprise:{firm['id']}",
                    enterprise_id=firm["id"],
                    district_code=firm["district"],
                    grounds=grounds,
                    status=status,
                    detail={},
                    proposed_at=at,
                    proposed_by="test",
                )
            ).inserted_primary_key[0]
            rows.append(
                {
                    **firm,
                    "id": int(referral_id),
                    "grounds": GROUNDS_ORDER.index(grounds),
                    "status": REFERRAL_ORDER.index(status),
                    "proposed_at": at,
                }
            )
    return rows


REFERRAL_SORTS = ["name", "uscc", "district", "grounds", "status", "state", "proposed_at"]


def test_the_referral_list_sorts_by_every_column_and_pages(world: World) -> None:
    referrals = write_referrals(world, write_rows(world))
    browser = Browser(world, "city")
    for key in REFERRAL_SORTS:
        for descending in (False, True):
            sort = ("-" if descending else "") + key
            want = expected(referrals, key, descending)
            page = browser.get("/referrals", params={"sort": sort, "page_size": 200})
            assert page.status_code == 200
            assert page_names(page.text) == want, sort
            api = world.client.get("/api/referrals", params={"sort": sort}, headers=world.as_("city"))
            assert [r["enterprise_name"] for r in api.json()] == want, sort
    want = expected(referrals, "proposed_at", True)
    page = browser.get("/referrals", params={"sort": "-proposed_at", "page_size": 4, "page": 2})
    assert page_names(page.text) == want[4:] and "共 6 项" in page.text
    assert "第 2 / 2 页" in page.text
    refused = browser.get("/referrals", params={"sort": "detail"})
    assert refused.status_code == 422 and "不能按“detail”排序" in refused.text
    assert world.client.get("/api/referrals", params={"sort": "x"}, headers=world.as_("city")).status_code == 422
    assert browser.get("/referrals", params={"page_size": 500}).status_code == 422


def test_every_page_of_every_size_by_jump(world: World) -> None:
    """A jump reads the page from the start of the list or, in its second half, from its end: the same rows."""
    want = expected(write_rows(world), "state_since", False)
    for size in range(1, len(ROWS) + 1):
        for page in range(1, -(-len(ROWS) // size) + 1):
            body = world.client.get(
                "/api/enterprises",
                params={"q": WORD, "sort": "state_since", "page_size": size, "page": page},
                headers=world.as_("city"),
            ).json()
            assert [i["name"] for i in body["items"]] == want[(page - 1) * size : page * size], (size, page)


def test_guidance_and_accounts_sort_by_their_columns(world: World) -> None:
    browser = Browser(world, "city")
    page = browser.get("/users", params={"sort": "-username"})
    assert page.status_code == 200
    shown = re.findall(r"<tr>\s*<td>([^<]+)</td>", page.text)
    assert shown == sorted(world.users, reverse=True)
    assert browser.get("/users", params={"sort": "password_hash"}).status_code == 422
    firms = write_rows(world)
    # who was sent where: firm row, person, kind, from
    sent = [
        (0, "王工", "expert", dt.date(2022, 9, 1)),
        (2, "李科长", "officer", dt.date(2022, 8, 1)),
        (5, "赵工", "expert", dt.date(2022, 10, 1)),
    ]
    actor = Actor("city", Role.city_bureau)
    for n, person, kind, day in sent:
        with Session(world.engine) as session:
            assign_guide(
                session,
                enterprise_id=firms[n]["id"],
                person=person,
                kind=kind,
                from_date=day,
                actor=actor,
                clock=world.clock,
            )
    rows = [{**firms[n], "person": p, "kind": ["expert", "officer"].index(k), "from_date": d} for n, p, k, d in sent]
    for n, row in enumerate(rows):
        row["id"] = n  # ties by the assignment's id, in the order sent
    for key in ("name", "state", "person", "kind", "from_date"):
        for descending in (False, True):
            sort = ("-" if descending else "") + key
            page = browser.get("/guidance", params={"sort": sort})
            assert page.status_code == 200
            found = re.findall(r'<td><a href="/firms/\d+#guidance">([^<]+)</a></td>', page.text)
            assert found == expected(rows, key, descending), sort
    refused = browser.get("/guidance", params={"sort": "note"})
    assert refused.status_code == 422 and "不能按“note”排序" in refused.text
