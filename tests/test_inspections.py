"""Supervision carried out: inspections from the plan with their findings raised as the bureau's hazards, the
plan held against what was done, penalty decisions with the grade's band, the firm's safety code, training."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlmodel import Session

from api.cli import main
from deadlines.inspections import (
    Finding,
    inspection_record,
    inspections_of,
    more_inspections_due,
    plan_report,
    plan_worklist,
    record_inspection,
)
from states import InvalidInput, NotAllowed, NotFound, OutOfScope, Role
from tests.api_helpers import World
from tests.factories import Driver, actor_for, clock, complete_five, make_firm, rectify
from tests.test_pages_access import Browser
from workflow.actors import Actor
from workflow.campaign import Campaign
from workflow.records import decide_rectification, update_hazard
from workflow.safety_code import code_for, code_key, enterprise_of, public_status, scan
from workflow.tables import CERTIFICATIONS, ENTERPRISES, EVENTS, HAZARDS, INSPECTIONS
from workflow.trainings import record_training, training_reach, trainings_of

WUJIN, XINBEI = "320412", "320411"
# The campaign file's local settings (本地设置) for a firm that has not started yet and has no duty yet:
# four inspections a year, so one month in three (the plan gives no figure).
NOT_STARTED_INTERVAL = 3


def officer(district: str = WUJIN, name: str = "王科长") -> Actor:
    return Actor(name=name, role=Role.district_bureau, district_code=district)


def planned_month(firm_id: int, start: dt.date = dt.date(2022, 7, 1)) -> dt.date:
    """The month of the plan a not-yet-started firm falls in (firm id + month number divisible by 3)."""
    for k in range(NOT_STARTED_INTERVAL):
        month = dt.date(start.year, start.month + k, 1)
        if (firm_id + month.year * 12 + month.month - 1) % NOT_STARTED_INTERVAL == 0:
            return month
    raise AssertionError("no month")


def item_codes(campaign: Campaign, n: int = 3) -> list[str]:
    return [item.code for item in campaign.outline_items][:n]


def inspect(engine: sa.Engine, campaign: Campaign, firm: int, day: dt.date, **kw: object) -> dict:
    values: dict = {
        "kind": "onsite",
        "held_on": day,
        "inspectors": ["王科长", "李队员"],
        "items_checked": item_codes(campaign),
        "findings": [Finding("配电箱未接地"), Finding("危化品仓库未设置防爆灯具", "major")],
        "actor": officer(),
        "campaign": campaign,
        "clock": clock(day),
    }
    values.update(kw)
    with Session(engine) as session:
        return record_inspection(session, enterprise_id=firm, **values)


def test_an_inspection_from_the_plan_raises_the_bureaus_hazards_and_is_done(
    engine: sa.Engine, campaign: Campaign, db_url: str
) -> None:
    firm = make_firm(engine, district=WUJIN)
    other = make_firm(engine, district=WUJIN)
    month = planned_month(firm)
    day = month + dt.timedelta(days=9)
    result = inspect(engine, campaign, firm, day)
    assert result["plan_month"] == month.isoformat()
    assert len(result["hazard_ids"]) == 2
    with engine.connect() as conn:
        hazards = conn.execute(sa.select(HAZARDS).where(HAZARDS.c.enterprise_id == firm).order_by(HAZARDS.c.id)).all()
        assert [(h.source, h.status, h.severity) for h in hazards] == [
            ("inspection", "open", "general"),
            ("inspection", "open", "major"),
        ]
        # the five implementations are the firm's to fill
        assert all(h.responsible_person is None and h.deadline is None for h in hazards)
        items = {
            i.line.enterprise_id: i
            for i in plan_worklist(
                conn, campaign=campaign, district=WUJIN, month=month, actor=officer(), clock=clock(day)
            )
        }
        assert items[firm].status == "done"
        assert items[firm].inspectors == ("王科长", "李队员")
        assert items[firm].held_on == day
        # the firm sees its inspection and the findings in it
        seen = inspections_of(conn, enterprise_id=firm, actor=actor_for(engine, Role.enterprise, firm))
        assert [f["description"] for f in seen[0]["findings"]] == ["配电箱未接地", "危化品仓库未设置防爆灯具"]
        with pytest.raises(OutOfScope):
            inspections_of(conn, enterprise_id=firm, actor=actor_for(engine, Role.enterprise, other))
        with pytest.raises(OutOfScope):
            inspection_record(conn, inspection_id=result["inspection_id"], actor=officer(XINBEI))
        event = conn.execute(sa.select(EVENTS).where(EVENTS.c.enterprise_id == firm)).all()[-1]
        assert event.trigger == "inspection_onsite"
        assert event.payload["inspectors"] == ["王科长", "李队员"]
        assert [f["hazard_id"] for f in event.payload["findings"]] == result["hazard_ids"]
    # the firm answers the findings (五落实 and a rectification file) but cannot close them: the bureau does
    driver = Driver(engine, campaign, firm, day=day)
    driver.fire("notify", Role.district_bureau)
    driver.fire("start_self_assessment", Role.enterprise)
    the_firm = actor_for(engine, Role.enterprise, firm)
    first, second = result["hazard_ids"]
    for hazard in (first, second):
        with Session(engine) as session:
            update_hazard(
                session,
                hazard_id=hazard,
                implementations=replace(complete_five(), deadline=day + dt.timedelta(days=30)),
                actor=the_firm,
                clock=clock(day),
                campaign=campaign,
            )
        assert rectify(engine, firm, hazard, at=clock(day)) == "submitted"
    with Session(engine) as session, pytest.raises(NotAllowed, match="提出该问题的部门"):
        decide_rectification(session, hazard_id=first, accept=True, note=None, actor=the_firm, clock=clock(day))
    with Session(engine) as session, pytest.raises(OutOfScope):
        decide_rectification(session, hazard_id=first, accept=True, note=None, actor=officer(XINBEI), clock=clock(day))
    with Session(engine) as session:
        decide_rectification(session, hazard_id=first, accept=True, note="复查合格", actor=officer(), clock=clock(day))
    with engine.connect() as conn:
        query = sa.select(HAZARDS.c.id, HAZARDS.c.status).where(HAZARDS.c.enterprise_id == firm)
        statuses = {h: status for h, status in conn.execute(query)}
    assert statuses == {first: "accepted", second: "submitted"}
    # the records are in the firm's chain, which verifies
    verified = CliRunner().invoke(main, ["--database-url", db_url, "audit", "verify"])
    assert verified.exit_code == 0, verified.output
    # a month later, a planned firm nobody inspected is overdue; the inspected one stays done
    after = clock(month + dt.timedelta(days=40))
    with engine.connect() as conn:
        statuses = {
            i.line.enterprise_id: i.status
            for i in plan_worklist(conn, campaign=campaign, district=WUJIN, month=month, actor=officer(), clock=after)
        }
        report = plan_report(conn, campaign=campaign, month=month, actor=officer(), clock=after)
    assert statuses[firm] == "done"
    assert set(statuses.values()) <= {"done", "overdue"}
    total = report.totals()
    assert total.planned == len(statuses)
    assert total.done == 1
    assert total.overdue == len(statuses) - 1


def test_on_site_needs_two_inspectors_and_outline_items(engine: sa.Engine, campaign: Campaign) -> None:
    firm = make_firm(engine, district=WUJIN)
    day = dt.date(2022, 7, 12)
    with pytest.raises(InvalidInput, match=r"至少 2 名检查人员.*王科长"):
        inspect(engine, campaign, firm, day, inspectors=["王科长", " 王科长 "])
    with pytest.raises(InvalidInput, match="X-99"):
        inspect(engine, campaign, firm, day, items_checked=[*item_codes(campaign, 1), "X-99"])
    with pytest.raises(InvalidInput, match="勾选"):
        inspect(engine, campaign, firm, day, items_checked=[])
    # an online patrol is made by one officer
    patrol = inspect(engine, campaign, firm, day, kind="online", inspectors=["王科长"], findings=[])
    assert patrol["hazard_ids"] == []
    with pytest.raises(InvalidInput, match="晚于今天"):
        inspect(engine, campaign, firm, day + dt.timedelta(days=1), clock=clock(day))


def test_who_records_an_inspection(engine: sa.Engine, campaign: Campaign) -> None:
    firm = make_firm(engine, district=WUJIN)
    day = dt.date(2022, 7, 12)
    with pytest.raises(OutOfScope):
        inspect(engine, campaign, firm, day, actor=officer(XINBEI))
    with pytest.raises(NotAllowed):
        inspect(engine, campaign, firm, day, actor=actor_for(engine, Role.enterprise, firm))
    with pytest.raises(NotAllowed):
        inspect(engine, campaign, firm, day, actor=Actor(name="市局", role=Role.city_bureau))
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(HAZARDS)).scalar_one() == 0


def test_a_penalty_decision_carries_its_legal_basis_and_the_grades_band(engine: sa.Engine, campaign: Campaign) -> None:
    # a key-field firm still not started after 2022-12-31 (重点监管领域…2022年底前全部开展创建) is graded
    # non-participating: the campaign's local setting puts it in the stricter band (从重, ×1.2)
    firm = make_firm(engine, district=WUJIN, key_field=True)
    day = dt.date(2023, 2, 14)
    with pytest.raises(InvalidInput, match="法律依据"):
        inspect(engine, campaign, firm, day, penalty_decision="罚款人民币二万元")
    result = inspect(
        engine,
        campaign,
        firm,
        day,
        penalty_decision="罚款人民币二万元",
        legal_basis="《中华人民共和国安全生产法》第一百零一条",
    )
    assert result["grade"] == "non_participating"
    assert result["penalty"]["band"] == "从重"
    assert result["penalty"]["factor"] == 1.2
    assert result["penalty"]["local_setting"] is True
    assert result["penalty"]["legal_basis"] == "《中华人民共和国安全生产法》第一百零一条"


def test_firms_graded_for_more_inspections_not_inspected_show_on_the_task_list(
    engine: sa.Engine, campaign: Campaign
) -> None:
    late = make_firm(engine, district=WUJIN, key_field=True)  # not started after 2022-12-31
    seen = make_firm(engine, district=WUJIN, key_field=True)
    calm = make_firm(engine, district=WUJIN, key_field=True)
    with engine.begin() as conn:  # a firm that started is not graded for more inspections
        conn.execute(sa.update(ENTERPRISES).where(ENTERPRISES.c.id == calm).values(state="self_assessing"))
    day = dt.date(2023, 3, 20)
    inspect(engine, campaign, seen, dt.date(2023, 3, 2), findings=[], clock=clock(day))
    with engine.connect() as conn:
        due = more_inspections_due(conn, campaign=campaign, district=WUJIN, actor=officer(), clock=clock(day))
        assert [r["enterprise_id"] for r in due] == [late]
        assert due[0]["last_inspected"] is None
        with pytest.raises(OutOfScope):
            more_inspections_due(conn, campaign=campaign, district=WUJIN, actor=officer(XINBEI), clock=clock(day))


# ---- the safety code ------------------------------------------------------------------------------


def test_the_public_page_of_a_code_shows_name_and_status_only(engine: sa.Engine, campaign: Campaign) -> None:
    firm = make_firm(engine, district=WUJIN, name="常州安码机械有限公司")
    certified = make_firm(engine, district=WUJIN, name="常州达标机械有限公司")
    with engine.begin() as conn:
        conn.execute(sa.update(ENTERPRISES).where(ENTERPRISES.c.id == certified).values(state="certified"))
        conn.execute(
            sa.insert(CERTIFICATIONS).values(
                enterprise_id=certified,
                application_id=_application(conn, certified),
                level="compliant",
                score=70.0,
                certified_at=dt.datetime(2022, 12, 1, tzinfo=dt.UTC),
                valid_until=dt.date(2025, 11, 30),
            )
        )
    with engine.connect() as conn:
        key = code_key(conn)
        status = public_status(conn, key=key, token=code_for(key, firm), clock=clock())
        assert (status.name, status.label, status.valid_until) == ("常州安码机械有限公司", "创建中", None)
        status = public_status(conn, key=key, token=code_for(key, certified), clock=clock())
        assert (status.label, status.valid_until, status.expired) == ("达标", dt.date(2025, 11, 30), False)
        assert set(status.__dict__) == {"name", "status", "label", "label_en", "valid_until", "expired"}


def _application(conn: sa.Connection, firm: int) -> int:
    from workflow.tables import APPLICATIONS

    result = conn.execute(
        sa.insert(APPLICATIONS).values(
            enterprise_id=firm, status="certified", materials=[], submitted_at=dt.datetime(2022, 9, 1, tzinfo=dt.UTC)
        )
    )
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def test_a_forged_or_another_districts_code_opens_nothing(engine: sa.Engine, campaign: Campaign) -> None:
    firm = make_firm(engine, district=WUJIN)
    neighbour = make_firm(engine, district=WUJIN)
    with engine.connect() as conn:
        key = code_key(conn)
        token = code_for(key, firm)
        assert code_key(conn) == key  # stable: the same code every time it is printed
        assert scan(conn, key=key, token=token, actor=officer()) == firm
        assert scan(conn, key=key, token=token, actor=Actor(name="市局", role=Role.city_bureau)) == firm
        with pytest.raises(OutOfScope):
            scan(conn, key=key, token=token, actor=officer(XINBEI))
        with pytest.raises(OutOfScope):
            scan(conn, key=key, token=token, actor=actor_for(engine, Role.enterprise, firm))
        forged = [
            token[:-1] + ("a" if token[-1] != "a" else "b"),  # one character changed
            f"{neighbour}-{token.split('-')[1]}",  # another firm's number under this signature
            str(firm),
            "",
            code_for(b"another database's key", firm),
        ]
        for bad in forged:
            with pytest.raises(NotFound):
                enterprise_of(key, bad)
            with pytest.raises(NotFound):
                public_status(conn, key=key, token=bad, clock=clock())


# ---- training ------------------------------------------------------------------------------------------


def test_training_sessions_and_who_attended(engine: sa.Engine, campaign: Campaign, db_url: str) -> None:
    trained = make_firm(engine, district=WUJIN)
    untrained = make_firm(engine, district=WUJIN)
    elsewhere = make_firm(engine, district=XINBEI)
    day = dt.date(2022, 3, 15)
    with Session(engine) as session, pytest.raises(NotFound, match=str(elsewhere)):
        record_training(
            session,
            kind="training",
            held_on=day,
            topic="达标创建专项培训",
            attendees={trained: 2, elsewhere: 1},
            actor=officer(),
            campaign=campaign,
            clock=clock(day),
        )
    with Session(engine) as session:
        record_training(
            session,
            kind="briefing",
            held_on=day,
            topic="企业宣讲：创建大纲解读",
            attendees={trained: 3},
            actor=officer(),
            campaign=campaign,
            clock=clock(day),
        )
    with engine.begin() as conn:  # the trained firm started in April, the other in June
        for firm, start in (
            (trained, dt.datetime(2022, 4, 1, tzinfo=dt.UTC)),
            (untrained, dt.datetime(2022, 6, 1, tzinfo=dt.UTC)),
        ):
            conn.execute(
                sa.update(ENTERPRISES)
                .where(ENTERPRISES.c.id == firm)
                .values(state="self_assessing", left_mobilized_at=start)
            )
    with engine.connect() as conn:
        attended = trainings_of(conn, enterprise_id=trained, actor=actor_for(engine, Role.enterprise, trained))
        assert [(a["kind_label"], a["topic"], a["people"]) for a in attended] == [
            ("企业宣讲", "企业宣讲：创建大纲解读", 3)
        ]
        assert trainings_of(conn, enterprise_id=untrained, actor=officer()) == []
        reach = training_reach(conn, actor=officer())
        assert (reach.directory, reach.trained, reach.sessions, reach.people) == (2, 1, 1, 3)
        assert reach.earlier_by_days == 61  # 2022-04-01 against 2022-06-01
        with pytest.raises(OutOfScope):
            training_reach(conn, actor=officer(XINBEI), district=WUJIN)
        event = conn.execute(sa.select(EVENTS).where(EVENTS.c.enterprise_id == trained)).all()[-1]
        assert (event.trigger, event.payload["topic"]) == ("briefing_attended", "企业宣讲：创建大纲解读")
    verified = CliRunner().invoke(main, ["--database-url", db_url, "audit", "verify"])
    assert verified.exit_code == 0, verified.output


# ---- guidance visits are supervision records -------------------------------------------------------------


def test_a_guidance_visit_is_one_record_for_the_register_and_the_inspections(
    engine: sa.Engine, campaign: Campaign
) -> None:
    from workflow.guidance import assign_guide, list_guidance, record_visit

    firm = make_firm(engine, district=WUJIN)
    with engine.begin() as conn:  # a benchmark candidate has started its creation work
        conn.execute(sa.update(ENTERPRISES).where(ENTERPRISES.c.id == firm).values(state="self_assessing"))
    day = dt.date(2022, 7, 20)
    with Session(engine) as session:
        assignment = assign_guide(
            session,
            enterprise_id=firm,
            person="王工",
            kind="expert",
            from_date=dt.date(2022, 7, 1),
            actor=officer(),
            clock=clock(day),
        )
    with Session(engine) as session:
        record_visit(
            session,
            assignment_id=assignment,
            visited_on=dt.date(2022, 7, 5),
            note="现场指导",
            actor=officer(),
            clock=clock(day),
        )
    # the inspection form's kind "guidance" names the assignment; a finding is raised like any other
    with pytest.raises(InvalidInput, match="派驻"):
        inspect(engine, campaign, firm, day, kind="guidance", inspectors=[], items_checked=[], findings=[])
    result = inspect(
        engine,
        campaign,
        firm,
        day,
        kind="guidance",
        inspectors=[],
        items_checked=item_codes(campaign, 1),
        findings=[Finding("双重预防机制台账不全")],
        summary="对照标杆要求逐项指导",
        guidance_assignment_id=assignment,
    )
    assert result["inspectors"] == ["王工"] and result["plan_month"] is None
    with engine.connect() as conn:
        register = list_guidance(conn, actor=officer(), enterprise_id=firm)
        records = inspections_of(conn, enterprise_id=firm, actor=officer())
        kinds = list(
            conn.execute(
                sa.select(EVENTS.c.trigger).where(EVENTS.c.enterprise_id == firm).order_by(EVENTS.c.seq)
            ).scalars()
        )
    assert [(v.visited_on, v.note) for v in register[0].visits] == [
        (dt.date(2022, 7, 5), "现场指导"),
        (day, "对照标杆要求逐项指导"),
    ]
    assert sorted(r["id"] for r in records) == sorted(v.id for v in register[0].visits)
    assert {r["kind"] for r in records} == {"guidance"}
    assert kinds[-2:] == ["guidance_visit", "guidance_visit"]
    # another firm's assignment cannot carry this firm's visit
    other = make_firm(engine, district=WUJIN)
    with pytest.raises(NotFound):
        inspect(
            engine, campaign, other, day, kind="guidance", inspectors=[], findings=[], guidance_assignment_id=assignment
        )


def test_the_migration_moves_recorded_guidance_visits_into_the_records(tmp_path: object, campaign: Campaign) -> None:
    from alembic import command

    from workflow.db import alembic_config, make_engine

    engine = make_engine(f"sqlite:///{tmp_path}/old.db")  # type: ignore[str-bytes-safe]
    config = alembic_config(engine)
    command.upgrade(config, "0008_referrals")
    at = "2022-07-05 02:00:00"
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO districts (code, name, name_en) VALUES ('320412', '武进区', 'Wujin')")
        conn.exec_driver_sql(
            "INSERT INTO enterprises (id, uscc, name, district_code, sector, key_field, above_size, principal, phone, "
            "lang, state, version, state_since, event_count, chain_head, created_at, updated_at) VALUES "
            f"(1, '91320412MA0000000X', '常州指导机械有限公司', '320412', 'machinery', 0, 1, '张三', '', 'zh-CN', "
            f"'self_assessing', 1, '{at}', 0, '{'0' * 64}', '{at}', '{at}')"
        )
        conn.exec_driver_sql(
            "INSERT INTO guidance_assignments (id, enterprise_id, district_code, person, kind, from_date, assigned_by, "
            f"assigned_at) VALUES (7, 1, '320412', '王工', 'expert', '2022-07-01', '王科长', '{at}')"
        )
        conn.exec_driver_sql(
            "INSERT INTO guidance_visits (assignment_id, enterprise_id, visited_on, note, recorded_by, recorded_at) "
            f"VALUES (7, 1, '2022-07-05', '现场指导', '王科长', '{at}')"
        )
    command.upgrade(config, "head")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(INSPECTIONS)).all()
        assert not sa.inspect(conn).has_table("guidance_visits")
    assert [(r.kind, r.held_on, r.inspectors, r.summary, r.guidance_assignment_id) for r in rows] == [
        ("guidance", dt.date(2022, 7, 5), ["王工"], "现场指导", 7)
    ]
    command.downgrade(config, "0008_referrals")
    with engine.connect() as conn:
        back = conn.exec_driver_sql("SELECT assignment_id, visited_on, note FROM guidance_visits").all()
    assert [tuple(r) for r in back] == [(7, "2022-07-05", "现场指导")]
    engine.dispose()


def test_the_command_line_records_reports_and_prints_codes(
    engine: sa.Engine, campaign: Campaign, db_url: str, tmp_path: Path
) -> None:
    firm = make_firm(engine, district=WUJIN, name="常州命令行机械有限公司")
    make_firm(engine, district=WUJIN)
    month = planned_month(firm)
    day = month + dt.timedelta(days=3)
    run = CliRunner()
    base = ["--database-url", db_url]
    with engine.connect() as conn:
        uscc = conn.execute(sa.select(ENTERPRISES.c.uscc).where(ENTERPRISES.c.id == firm)).scalar_one()
    item = item_codes(campaign, 1)[0]
    one = run.invoke(main, [*base, "inspections", "record", uscc, "--kind", "onsite", "--date", str(day),
                            "--inspector", "王科长", "--item", item, "--as-of", str(day)])  # fmt: skip
    assert one.exit_code == 1 and "至少 2 名检查人员" in one.output
    done = run.invoke(main, [*base, "inspections", "record", uscc, "--kind", "onsite", "--date", str(day),
                             "--inspector", "王科长", "--inspector", "李队员", "--item", item,
                             "--finding", "配电箱未接地", "--as-of", str(day)])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert f"计入{month:%Y-%m}检查计划" in done.output and "提出隐患 1 项" in done.output
    later = str(month + dt.timedelta(days=40))
    report = run.invoke(main, [*base, "inspections", "report", "--month", f"{month:%Y-%m}", "--json", "--as-of", later])
    total = json.loads(report.output)["total"]
    assert total["done"] == 1 and total["overdue"] == total["planned"] - 1
    xlsx = tmp_path / "report.xlsx"
    written = run.invoke(main, [*base, "inspections", "report", "--month", f"{month:%Y-%m}", "-o", str(xlsx)])
    assert written.exit_code == 0, written.output
    rows = list(openpyxl.load_workbook(xlsx).worksheets[0].iter_rows(values_only=True))
    assert rows[1][:4] == ("辖区", "监管等级", "计划检查（家）", "已完成")
    assert rows[-1][0] == "合计" and rows[-1][3] == 1
    sheet = tmp_path / "codes.pdf"
    printed = run.invoke(main, [*base, "codes", "sheet", "--district", "武进区", "-o", str(sheet)])
    assert printed.exit_code == 0 and "2 家企业" in printed.output
    body = sheet.read_bytes()
    assert body.startswith(b"%PDF-") and body.count(b"/Type /Page ") == 1 and body.rstrip().endswith(b"%%EOF")
    png = tmp_path / "code.png"
    shown = run.invoke(main, [*base, "codes", "show", uscc, "-o", str(png)])
    with engine.connect() as conn:
        assert shown.output.strip().endswith(f"/code/{code_for(code_key(conn), firm)}")
    assert png.read_bytes().startswith(b"\x89PNG")


def test_what_a_scanned_code_opens_for_whom(world: World) -> None:
    firm = world.firms["home_key"]  # a firm of 武进区
    with world.engine.connect() as conn:
        token = code_for(code_key(conn), firm)
        uscc = conn.execute(sa.select(ENTERPRISES.c.uscc).where(ENTERPRISES.c.id == firm)).scalar_one()
    anyone = Browser(world, None).get(f"/code/{token}")
    assert anyone.status_code == 200 and "创建中" in anyone.text
    assert uscc not in anyone.text and "/firms/" not in anyone.text
    public = world.client.get("/api/safety-code", params={"code": token}).json()
    assert set(public) == {"name", "status", "label", "label_en", "valid_until", "expired"}
    own = Browser(world, "wujin").get(f"/code/{token}")
    assert own.status_code == 303 and own.headers["location"] == f"/firms/{firm}/supervision"
    assert Browser(world, "city").get(f"/code/{token}").headers["location"] == f"/firms/{firm}/supervision"
    assert Browser(world, "liyang").get(f"/code/{token}").status_code == 404  # another district's code
    forged = token[:-1] + ("a" if token[-1] != "a" else "b")
    for who in (None, "wujin"):
        assert Browser(world, who).get(f"/code/{forged}").status_code == 404
    assert world.client.get("/api/safety-code", params={"code": forged}).status_code == 404
