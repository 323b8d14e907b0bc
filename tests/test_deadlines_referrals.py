"""Referrals, escalation acknowledgements, graded supervision and the files officials receive: who may do
what, what gets recorded and sent, and what the XLSX files hold."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlmodel import Session

from api.cli import main
from deadlines.escalations import acknowledge_escalation, list_escalations
from deadlines.referrals import (
    acknowledge_referral,
    confirm_referral,
    decline_referral,
    list_referrals,
    propose_referral,
)
from deadlines.supervision import grade_counts, inspection_plan
from states import InvalidInput, InvalidTransition, NotAllowed, OutOfScope, Role
from tests.deadline_helpers import Firm, sweep_on
from tests.factories import OPINION, make_firm
from workflow.actors import Actor
from workflow.campaign import Campaign
from workflow.certificates import name_benchmark
from workflow.clock import FixedClock
from workflow.context import Context
from workflow.tables import ENTERPRISES, ESCALATIONS, OUTBOX, REFERRAL_SUGGESTIONS, REFERRALS

D = dt.date
CITY = Actor("市局 张科长", Role.city_bureau)


def district(code: str = "320412") -> Actor:
    return Actor("武进区应急局 李股长", Role.district_bureau, district_code=code)


def local_government(code: str = "320412") -> Actor:
    return Actor("武进区政府办", Role.local_government, district_code=code)


def idle_key_firm(engine: sa.Engine, campaign: Campaign, code: str = "320412", name: str | None = None) -> int:
    firm = Firm(engine, campaign, make_firm(engine, key_field=True, district=code, name=name))
    firm.on(D(2022, 2, 10)).notify()
    return firm.id


def test_a_referral_goes_from_district_to_city_to_local_government(engine: sa.Engine, campaign: Campaign) -> None:
    firm = idle_key_firm(engine, campaign)
    clock = FixedClock.on(D(2023, 1, 5))
    with Session(engine) as s:
        ref = propose_referral(
            s, enterprise_id=firm, grounds="non_participating", actor=district(), context=Context(campaign, clock)
        )
    with Session(engine) as s, pytest.raises(InvalidTransition, match="already under way"):
        propose_referral(
            s, enterprise_id=firm, grounds="non_participating", actor=district(), context=Context(campaign, clock)
        )
    with Session(engine) as s, pytest.raises(OutOfScope):  # a proposal does not exist for the local government
        acknowledge_referral(s, referral_id=ref, actor=local_government(), clock=clock)
    with Session(engine) as s:
        confirm_referral(s, referral_id=ref, actor=CITY, context=Context(campaign, clock), note="多次督促无果")
    with engine.connect() as conn:
        mail = conn.execute(sa.select(OUTBOX).where(OUTBOX.c.kind == "referral")).one()
    assert (mail.audience, mail.district_code, mail.to_address) == (
        "local_government",
        "320412",
        "zf@wujin.example.com",
    )
    assert mail.context["grounds"] == "non_participating" and mail.context["note"] == "多次督促无果"
    assert mail.context["district_name"] == "武进区" and mail.dedupe_key == f"referral:{ref}:local_government"
    with Session(engine) as s, pytest.raises(OutOfScope):
        acknowledge_referral(s, referral_id=ref, actor=local_government("320481"), clock=clock)
    with Session(engine) as s:
        acknowledge_referral(s, referral_id=ref, actor=local_government(), clock=FixedClock.on(D(2023, 1, 9)))
    with engine.connect() as conn:
        row = conn.execute(sa.select(REFERRALS).where(REFERRALS.c.id == ref)).one()
        [listed] = list_referrals(conn, actor=local_government(), campaign=campaign)
        assert list_referrals(conn, actor=local_government("320481"), campaign=campaign) == []
    assert (row.status, row.proposed_by, row.decided_by, row.acknowledged_by) == (
        "acknowledged",
        "武进区应急局 李股长",
        "市局 张科长",
        "武进区政府办",
    )
    assert listed.local_government == "武进区人民政府" and listed.status == "acknowledged"


@pytest.mark.parametrize(
    ("action", "actor", "error"),
    [
        ("propose", Actor("企业", Role.enterprise, enterprise_id=1), NotAllowed),
        ("propose", Actor("市局", Role.city_bureau), NotAllowed),
        ("propose", Actor("溧阳", Role.district_bureau, district_code="320481"), OutOfScope),
        ("confirm", Actor("武进", Role.district_bureau, district_code="320412"), NotAllowed),
        ("decline", Actor("属地", Role.local_government, district_code="320412"), NotAllowed),
        ("acknowledge", Actor("市局", Role.city_bureau), NotAllowed),
    ],
)
def test_each_step_of_a_referral_belongs_to_one_office(
    engine: sa.Engine, campaign: Campaign, action: str, actor: Actor, error: type[Exception]
) -> None:
    firm = idle_key_firm(engine, campaign)
    clock = FixedClock.on(D(2023, 1, 5))
    with Session(engine) as s:
        ref = propose_referral(
            s, enterprise_id=firm, grounds="non_participating", actor=district(), context=Context(campaign, clock)
        )
    with Session(engine) as s, pytest.raises(error):
        if action == "propose":
            propose_referral(
                s, enterprise_id=firm, grounds="non_participating", actor=actor, context=Context(campaign, clock)
            )
        elif action in ("confirm", "decline"):
            decide = confirm_referral if action == "confirm" else decline_referral
            decide(s, referral_id=ref, actor=actor, context=Context(campaign, clock))
        else:
            acknowledge_referral(s, referral_id=ref, actor=actor, clock=clock)
    with engine.connect() as conn:
        assert conn.execute(sa.select(REFERRALS.c.status)).scalars().all() == ["proposed"]
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(OUTBOX).where(OUTBOX.c.kind == "referral")).scalar()
            == 0
        )


def test_a_referral_needs_its_grounds(engine: sa.Engine, campaign: Campaign) -> None:
    key = idle_key_firm(engine, campaign)
    other = make_firm(engine, key_field=False)
    before_milestone = FixedClock.on(D(2022, 11, 1))
    with Session(engine) as s, pytest.raises(InvalidInput, match="do not hold"):
        propose_referral(
            s,
            enterprise_id=key,
            grounds="non_participating",
            actor=district(),
            context=Context(campaign, before_milestone),
        )
    with Session(engine) as s, pytest.raises(InvalidInput, match="do not hold"):
        propose_referral(
            s,
            enterprise_id=key,
            grounds="failed_review_twice",
            actor=district(),
            context=Context(campaign, FixedClock.on(D(2023, 2, 1))),
        )
    with Session(engine) as s, pytest.raises(InvalidInput, match="only key-field firms"):
        propose_referral(
            s,
            enterprise_id=other,
            grounds="non_participating",
            actor=district(),
            context=Context(campaign, FixedClock.on(D(2023, 2, 1))),
        )


def test_a_declined_referral_is_not_suggested_again_by_the_sweep(engine: sa.Engine, campaign: Campaign) -> None:
    firm = idle_key_firm(engine, campaign)
    sweep_on(engine, campaign, D(2023, 1, 30))
    with engine.connect() as conn:
        assert conn.execute(sa.select(REFERRALS)).all() == []  # the sweep only suggests
        suggestion = conn.execute(sa.select(REFERRAL_SUGGESTIONS)).one()
    assert (suggestion.enterprise_id, suggestion.grounds, suggestion.status) == (firm, "non_participating", "open")
    with Session(engine) as s:
        ref = propose_referral(
            s,
            enterprise_id=firm,
            grounds="non_participating",
            actor=district(),
            context=Context(campaign, FixedClock.on(D(2023, 1, 31))),
        )
    with Session(engine) as s:
        decline_referral(s, referral_id=ref, actor=CITY, context=Context(campaign, FixedClock.on(D(2023, 2, 1))))
    sweep_on(engine, campaign, D(2023, 2, 2))
    with engine.connect() as conn:
        assert conn.execute(sa.select(REFERRALS.c.status)).scalars().all() == ["declined"]
        assert conn.execute(sa.select(REFERRAL_SUGGESTIONS.c.status)).scalars().all() == ["proposed"]


def test_offices_acknowledge_their_escalations(engine: sa.Engine, campaign: Campaign) -> None:
    idle_key_firm(engine, campaign)
    sweep_on(engine, campaign, D(2023, 1, 31))
    with engine.connect() as conn:
        steps = {r.step: r.id for r in conn.execute(sa.select(ESCALATIONS.c.step, ESCALATIONS.c.id))}
        assert len(list_escalations(conn, actor=district())) == 3
        assert list_escalations(conn, actor=district("320481")) == []
    clock = FixedClock.on(D(2023, 2, 1))
    with Session(engine) as s, pytest.raises(OutOfScope):
        acknowledge_escalation(s, escalation_id=steps["district"], actor=district("320481"), clock=clock)
    # a district may acknowledge, just not the city's step: the refusal names the office whose step it is
    with Session(engine) as s, pytest.raises(InvalidTransition, match="city bureau acknowledges"):
        acknowledge_escalation(s, escalation_id=steps["city"], actor=district(), clock=clock)
    with Session(engine) as s:
        acknowledge_escalation(s, escalation_id=steps["district"], actor=district(), clock=clock)
    with Session(engine) as s:
        acknowledge_escalation(s, escalation_id=steps["city"], actor=CITY, clock=clock)
    with Session(engine) as s, pytest.raises(InvalidTransition):
        acknowledge_escalation(s, escalation_id=steps["city"], actor=CITY, clock=clock)
    with engine.connect() as conn:
        listed = {r["step"]: r for r in list_escalations(conn, actor=CITY)}
    assert {s: r["status"] for s, r in listed.items()} == {
        "firm": "open",
        "district": "acknowledged",
        "city": "acknowledged",
    }
    assert listed["district"]["acknowledged_by"] == "武进区应急局 李股长"


def test_grades_and_the_monthly_inspection_plan(engine: sa.Engine, campaign: Campaign, tmp_path: Path) -> None:
    idle = idle_key_firm(engine, campaign, name='=HYPERLINK("http://x")化工')
    started = Firm(engine, campaign, make_firm(engine, key_field=True))
    started.on(D(2022, 2, 10)).notify()
    started.on(D(2022, 3, 1)).start()
    late = Firm(engine, campaign, make_firm(engine, key_field=False))
    late.on(D(2022, 2, 10)).notify()
    late.on(D(2022, 3, 1)).start()
    late.on(D(2022, 3, 1)).hazard(D(2022, 12, 1))
    certified = Firm(engine, campaign, make_firm(engine, key_field=False))
    certified.on(D(2022, 2, 10)).notify()
    certified.on(D(2022, 3, 1)).start()
    certified.on(D(2022, 7, 1)).submit()
    certified.fire("verify", Role.district_bureau, OPINION)
    certified.fire("pass_audit", Role.district_bureau)
    certified.review(80)
    certified.fire("certify", Role.city_bureau)
    with Session(engine) as s:  # 标杆 is the city's decision (评分不得低于75分), not a stamp at 75
        name_benchmark(
            s,
            enterprise_id=certified.id,
            reason="示范带动",
            actor=CITY,
            context=Context(campaign, FixedClock.on(D(2022, 9, 1))),
        )
    with engine.connect() as conn:
        grades = grade_counts(conn, campaign=campaign, as_of=D(2023, 1, 1), district="320412")
        per_month = [
            {
                line.enterprise_id: line.grade
                for line in inspection_plan(conn, campaign=campaign, district="武进区", month=D(2023, m, 1))
            }
            for m in range(1, 13)
        ]
    assert grades == {
        "referred": 0,
        "non_participating": 1,
        "not_started": 0,
        "on_track": 2,  # started; an overdue hazard is followed by its own escalation, not by the grade
        "compliant": 0,
        "benchmark": 1,
    }
    per_year = campaign.supervision.inspections_per_year
    seen = {firm: sum(firm in month for month in per_month) for firm in (idle, started.id, late.id, certified.id)}
    assert seen == {
        idle: per_year["non_participating"],
        started.id: per_year["on_track"],
        late.id: per_year["on_track"],
        certified.id: per_year["benchmark"],
    }
    assert per_month[0][idle] == "non_participating" and next(iter(per_month[0])) == idle  # strictest first

    out = tmp_path / "plan.xlsx"
    result = CliRunner().invoke(
        main,
        ["--database-url", str(engine.url.render_as_string(hide_password=False)), "inspections", "plan",
         "--district", "320412", "--month", "2023-01", "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    sheet = openpyxl.load_workbook(out).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[1][:3] == ("序号", "统一社会信用代码", "企业名称") and "监管等级" in rows[1]
    names = [r[2] for r in rows[2:]]
    assert '\'=HYPERLINK("http://x")化工' in names  # a formula is written as text
    listed = CliRunner().invoke(
        main,
        ["--database-url", str(engine.url.render_as_string(hide_password=False)), "inspections", "plan",
         "--district", "武进区", "--month", "2023-01", "--json"],
    )  # fmt: skip
    firms = json.loads(listed.output)["firms"]
    assert [f["enterprise_id"] for f in firms] == list(per_month[0])
    assert firms[0]["grade_label"] == "逾期未开展创建"


def test_the_command_line_sweeps_lists_and_exports(engine: sa.Engine, campaign: Campaign, tmp_path: Path) -> None:
    url = str(engine.url.render_as_string(hide_password=False))
    firm = idle_key_firm(engine, campaign, name="@SUM(1)化工有限公司")
    with engine.connect() as conn:
        credit_code = conn.execute(sa.select(ENTERPRISES.c.uscc).where(ENTERPRISES.c.id == firm)).scalar_one()

    def run(*args: str) -> str:
        result = CliRunner().invoke(main, ["--database-url", url, *args])
        assert result.exit_code == 0, result.output
        return result.output

    text = run("sweep", "--as-of", "2023-01-30")
    assert "2023-01-30" in text and "key_field_started" in text and "建议移交（待辖区研判） 1" in text
    assert "swept 2023-01-30: 0 new rows" in run("sweep", "--as-of", "2023-01-30")
    refused = CliRunner().invoke(main, ["--database-url", url, "sweep", "--as-of", "2023-01-01"])
    assert refused.exit_code == 1 and "[sweep_refused]" in refused.output
    listed = json.loads(run("escalations", "list", "--json", "--district", "武进区", "--status", "open"))
    assert sorted(e["step"] for e in listed) == ["district", "firm"]
    run("escalations", "ack", str(listed[0]["id"]), "--role", "district_bureau", "--district", "320412")
    assert len(json.loads(run("escalations", "list", "--json", "--status", "acknowledged"))) == 1
    assert json.loads(run("referrals", "list", "--json")) == []  # a suggestion is not a referral
    run("referrals", "propose", credit_code, "--grounds", "non_participating", "--as-of", "2023-01-31")
    [ref] = json.loads(run("referrals", "list", "--json"))
    assert ref["state"] == "mobilized" and ref["state_label"] and ref["state_since"]
    denied = CliRunner().invoke(
        main, ["--database-url", url, "referrals", "confirm", str(ref["id"]), "--role", "district_bureau"]
    )
    assert denied.exit_code == 1 and "[not_allowed]" in denied.output
    run("referrals", "confirm", str(ref["id"]), "--note", "=1+1")
    run("referrals", "acknowledge", str(ref["id"]))
    out = tmp_path / "referrals.xlsx"
    run("referrals", "export", "-o", str(out))
    rows = list(openpyxl.load_workbook(out).active.iter_rows(values_only=True))
    assert rows[1][:7] == ("序号", "统一社会信用代码", "企业名称", "辖区", "属地政府", "移交理由", "状态")
    assert rows[2][2] == "'@SUM(1)化工有限公司" and rows[2][5] == "逾期未启动创建" and rows[2][6] == "属地已签收"
    assert rows[2][11] == "'=1+1"
