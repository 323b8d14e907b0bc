"""The sweep on both backends: idempotent on one day, a gap caught up exactly as day by day, days only
forward, escalations resolving when the firm moves on, service levels counted in local days."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from deadlines.sweep import SweepRefused, sweep
from states import Role
from tests.deadline_helpers import (
    Firm,
    bulk_firms,
    days,
    escalation_days,
    forget_sweeps,
    outbox_days,
    snapshot,
    sweep_on,
    sweep_runs,
)
from tests.factories import OPINION, make_firm
from workflow.campaign import Campaign
from workflow.clock import SHANGHAI, FixedClock
from workflow.context import Context
from workflow.tables import ESCALATIONS, OUTBOX

D = dt.date


def busy_directory(engine: sa.Engine, campaign: Campaign) -> dict[str, Firm]:
    """A handful of firms that keep several rules busy around the key-field milestone."""
    firms = {
        "idle_key": Firm(engine, campaign, make_firm(engine, key_field=True, district="320481")),
        "idle_other": Firm(engine, campaign, make_firm(engine, key_field=False, district="320402")),
        "unnotified": Firm(engine, campaign, make_firm(engine, key_field=False, above_size=False)),
        "hazard": Firm(engine, campaign, make_firm(engine, key_field=True, district="320411")),
        "applied": Firm(engine, campaign, make_firm(engine, key_field=False, district="320404")),
        "no_mail": Firm(engine, campaign, make_firm(engine, key_field=True, email=None)),
    }
    for name in ("idle_key", "idle_other", "hazard", "applied", "no_mail"):
        firms[name].on(D(2022, 2, 10)).notify()
    firms["hazard"].on(D(2022, 3, 1)).start()
    firms["hazard"].on(D(2022, 3, 1)).hazard(D(2022, 12, 20), "major")
    firms["applied"].on(D(2022, 11, 25)).start()
    firms["applied"].on(D(2022, 11, 25)).submit()
    return firms


def test_a_second_sweep_of_the_same_day_writes_nothing(engine: sa.Engine, campaign: Campaign) -> None:
    busy_directory(engine, campaign)
    first = sweep_on(engine, campaign, D(2023, 2, 5))
    assert first[0].written > 0
    before = snapshot(engine)
    again = sweep_on(engine, campaign, D(2023, 2, 5))
    assert again[0].written == 0 and again[0].runs == 2
    assert snapshot(engine) == before
    assert [(r.as_of, r.status, r.runs) for r in sweep_runs(engine)] == [(D(2023, 2, 5), "finished", 2)]


def test_a_gap_is_caught_up_exactly_as_day_by_day(engine: sa.Engine, campaign: Campaign) -> None:
    busy_directory(engine, campaign)
    start, end = D(2022, 11, 20), D(2023, 2, 5)
    for day in days(start, end):
        sweep_on(engine, campaign, day)
    daily = snapshot(engine, with_times=False)
    daily_days = (outbox_days(engine), {k: v[0] for k, v in escalation_days(engine).items()})
    forget_sweeps(engine)

    sweep_on(engine, campaign, start)
    reports = sweep(engine, context=Context(campaign, FixedClock.on(end, hour=2)), through=end)
    assert [r.as_of for r in reports] == days(start + dt.timedelta(days=1), end)
    assert snapshot(engine, with_times=False) == daily
    # the reminders of 30, 7 and 1 days before the milestone each went out once, as day by day
    kinds = sorted(k for k in outbox_days(engine) if k.startswith("reminder:key_field_started"))
    assert len(kinds) == 3 * 2  # two key-field firms still mobilized
    assert daily_days[1] and all(d >= start for d in daily_days[0].values())


def test_sweeps_only_move_forward(engine: sa.Engine, campaign: Campaign) -> None:
    make_firm(engine, key_field=True)
    sweep_on(engine, campaign, D(2023, 1, 10))
    with pytest.raises(SweepRefused, match="before the last finished sweep"):
        sweep_on(engine, campaign, D(2023, 1, 9))
    future = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=3)
    with pytest.raises(SweepRefused, match="in the future"):
        sweep(engine, context=Context(campaign, FixedClock.on(future)), through=future)
    assert [r.as_of for r in sweep_runs(engine)] == [D(2023, 1, 10)]


def test_escalations_resolve_when_the_firm_moves_on(engine: sa.Engine, campaign: Campaign) -> None:
    firms = busy_directory(engine, campaign)
    sweep_on(engine, campaign, D(2023, 1, 9))
    idle = firms["idle_key"].id
    hazard_id = firms["hazard"].hazards[0]
    with engine.connect() as conn:
        open_steps = conn.execute(
            sa.select(ESCALATIONS.c.step).where(
                ESCALATIONS.c.subject_id == idle, ESCALATIONS.c.rule == "key_field_started"
            )
        ).scalars()
        assert sorted(open_steps) == ["district", "firm"]
    firms["idle_key"].on(D(2023, 1, 9)).start()
    firms["hazard"].on(D(2023, 1, 9)).rectify(hazard_id)
    sweep_on(engine, campaign, D(2023, 1, 10))
    got = escalation_days(engine)
    assert got[f"key_field_started:enterprise:{idle}:firm"] == (D(2023, 1, 9), D(2023, 1, 10))
    assert got[f"key_field_started:enterprise:{idle}:district"] == (D(2023, 1, 9), D(2023, 1, 10))
    assert got[f"hazard_deadline:hazard:{hazard_id}:district"] == (D(2023, 1, 9), D(2023, 1, 10))
    # the other firm, still idle, stays open
    other = firms["no_mail"].id
    assert got[f"key_field_started:enterprise:{other}:district"] == (D(2023, 1, 9), None)


def test_overdue_notices_reach_the_firm_and_name_the_deadline(engine: sa.Engine, campaign: Campaign) -> None:
    firms = busy_directory(engine, campaign)
    sweep_on(engine, campaign, D(2023, 1, 1))
    with engine.connect() as conn:
        rows = {
            r.dedupe_key: r
            for r in conn.execute(sa.select(OUTBOX).where(OUTBOX.c.kind.in_(("deadline_overdue", "deadline_reminder"))))
        }
    idle = rows[f"overdue:key_field_started:enterprise:{firms['idle_key'].id}"]
    assert (idle.audience, idle.status, idle.attempts, idle.lang) == ("enterprise", "pending", 0, "zh-CN")
    assert (idle.district_code, idle.to_address) == ("320481", "safety@example.com")
    assert idle.context == {
        "rule": "key_field_started",
        "deadline": "2022-12-31",
        "days_overdue": 1,
        "enterprise_name": idle.context["enterprise_name"],
        "uscc": idle.context["uscc"],
        "district_name": "溧阳市",
    }
    assert idle.context["enterprise_name"].startswith("常州测试")
    no_mail = rows[f"overdue:key_field_started:enterprise:{firms['no_mail'].id}"]
    assert no_mail.to_address is None  # written anyway; dispatch records that nobody can be reached
    hazard = rows[f"overdue:hazard_deadline:hazard:{firms['hazard'].hazards[0]}"]
    assert (hazard.context["deadline"], hazard.context["days_overdue"]) == ("2022-12-20", 12)


def test_a_late_subject_gets_the_reminder_it_is_in_not_every_one_it_missed(
    engine: sa.Engine, campaign: Campaign
) -> None:
    firm = Firm(engine, campaign, make_firm(engine, key_field=True))
    firm.on(D(2022, 2, 10)).notify()
    firm.on(D(2022, 3, 1)).start()
    sweep_on(engine, campaign, D(2022, 6, 1))
    hazard = firm.on(D(2022, 6, 1)).hazard(D(2022, 6, 6))  # five days away when reported
    sweep_on(engine, campaign, D(2022, 6, 2))
    reminders = {k: v for k, v in outbox_days(engine).items() if k.startswith("reminder:hazard_deadline")}
    assert reminders == {f"reminder:hazard_deadline:hazard:{hazard}:7": D(2022, 6, 2)}
    with engine.connect() as conn:
        context = conn.execute(
            sa.select(OUTBOX.c.context).where(OUTBOX.c.dedupe_key == f"reminder:hazard_deadline:hazard:{hazard}:7")
        ).scalar_one()
    assert (context["days_left"], context["deadline"]) == (4, "2022-06-06")


def test_service_levels_count_local_days(engine: sa.Engine, campaign: Campaign) -> None:
    """An application submitted at 23:30 Beijing time (15:30 UTC) counts from that local day."""
    firm = Firm(engine, campaign, make_firm(engine, key_field=False))
    firm.on(D(2022, 2, 10)).notify()
    firm.on(D(2022, 3, 1)).start()
    firm.driver.clock = FixedClock(dt.datetime(2022, 7, 1, 23, 30, tzinfo=SHANGHAI))
    firm.submit()
    app = firm.applications[0]
    days_allowed = campaign.deadlines.rules.sla_verification.days
    due = D(2022, 7, 1) + dt.timedelta(days=days_allowed)
    sweep_on(engine, campaign, due)
    assert f"sla_verification:application:{app}:district" not in escalation_days(engine)
    sweep_on(engine, campaign, due + dt.timedelta(days=1))
    assert escalation_days(engine)[f"sla_verification:application:{app}:district"] == (
        due + dt.timedelta(days=1),
        None,
    )
    with engine.connect() as conn:
        row = conn.execute(sa.select(ESCALATIONS).where(ESCALATIONS.c.subject_id == app)).one()
    assert (row.deadline, row.days_overdue, row.step) == (due, 1, "district")
    firm.on(due + dt.timedelta(days=1)).fire("verify", Role.district_bureau, OPINION)
    sweep_on(engine, campaign, due + dt.timedelta(days=2))
    assert escalation_days(engine)[f"sla_verification:application:{app}:district"][1] == due + dt.timedelta(days=2)


def test_a_sweep_over_many_firms_is_set_based(engine: sa.Engine, campaign: Campaign) -> None:
    """Two thousand idle key-field firms: every one gets each step once, through a handful of statements."""
    bulk_firms(engine, 2000, seed=11, notified=True)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    sweep_on(engine, campaign, D(2023, 2, 1))
    got = escalation_days(engine)
    assert sum(1 for k in got if k.startswith("key_field_started:")) == 2000 * 3
    assert sum(1 for k in outbox_days(engine) if k.startswith("overdue:key_field_started")) == 2000
    assert len(statements) < 120  # independent of the number of firms


def test_a_first_sweep_leaves_the_planner_statistics_of_the_escalations_it_wrote(
    engine: sa.Engine, campaign: Campaign
) -> None:
    """Without them the planner reads every escalation of a rule for a day's overdue notices (SQLite) or
    anti-joins the whole table for each ladder step (PostgreSQL)."""
    bulk_firms(engine, 300, seed=12, notified=True)
    sweep_on(engine, campaign, D(2023, 2, 1))
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            stats = conn.exec_driver_sql("SELECT stat FROM sqlite_stat1 WHERE tbl = 'escalations'").scalars().all()
            assert stats and all(int(stat.split()[0]) > 0 for stat in stats)
        else:  # ANALYZE sets the row estimate at once (-1: never analyzed)
            rows = conn.exec_driver_sql(
                "SELECT reltuples FROM pg_class WHERE oid = to_regclass(current_schema() || '.escalations')"
            ).scalar_one()
            assert rows > 0


def test_ordinary_days_find_exactly_what_a_full_look_finds(engine: sa.Engine, campaign: Campaign) -> None:
    """Each day is swept the ordinary way (today's steps and what changed), then looked at in full: the full
    look must find nothing more, whatever the firms did in between."""
    from sqlmodel import Session

    from tests.factories import actor_for
    from workflow.records import FiveImplementations, update_hazard

    firms = busy_directory(engine, campaign)
    late = Firm(engine, campaign, make_firm(engine, key_field=True, district="320413"))
    late.on(D(2022, 2, 10)).notify()
    returned = Firm(engine, campaign, make_firm(engine, key_field=False, district="320491"))
    returned.on(D(2022, 2, 10)).notify()
    returned.on(D(2022, 3, 1)).start()
    moves = {
        D(2023, 1, 3): lambda: late.on(D(2023, 1, 3)).start(),
        D(2023, 1, 5): lambda: firms["unnotified"].on(D(2023, 1, 5)).notify(),
        D(2023, 1, 9): lambda: firms["hazard"].on(D(2023, 1, 9)).hazard(D(2023, 1, 10), "major"),
        D(2023, 1, 12): lambda: late.on(D(2023, 1, 12)).hazard(D(2023, 6, 30)),
        # a deadline moves back to the hazard's report day (the earliest the campaign's calendar allows)
        D(2023, 2, 14): lambda: move_deadline(late.hazards[0], D(2023, 1, 12)),
        D(2023, 1, 16): lambda: Firm(engine, campaign, make_firm(engine, key_field=True, district="320402")),
        D(2023, 1, 18): lambda: (
            firms["applied"].on(D(2023, 1, 18)).fire("return_application", Role.district_bureau, {"reason": "材料不全"})
        ),
        D(2023, 1, 20): lambda: (
            firms["idle_other"].on(D(2023, 1, 20)).fire("close", Role.district_bureau, {"reason": "企业已注销"})
        ),
        D(2023, 1, 25): lambda: returned.on(D(2023, 1, 25)).submit(),
    }

    def move_deadline(hazard_id: int, deadline: dt.date) -> None:
        with Session(engine) as session:
            update_hazard(
                session,
                hazard_id=hazard_id,
                implementations=FiveImplementations(deadline=deadline),
                actor=actor_for(engine, Role.enterprise, late.id),
                clock=late.driver.clock,
            )

    for day in days(D(2022, 12, 28), D(2023, 2, 16)):
        [ordinary] = sweep_on(engine, campaign, day)
        assert not ordinary.full or day == D(2022, 12, 28)
        [full] = sweep(engine, context=Context(campaign, FixedClock.on(day, hour=2)), through=day, full=True)
        assert full.full and full.written == 0, (day, full.rules)
        assert all(counts.get("resolved", 0) == 0 for counts in full.rules.values()), (day, full.rules)
        if day in moves:
            moves[day]()
    got = escalation_days(engine)
    # the hazard given an earlier deadline on 02-14 (33 days past) climbed at once, the next ordinary day
    assert got[f"hazard_deadline:hazard:{late.hazards[0]}:city"] == (D(2023, 2, 15), None)
    assert sum(1 for k in got if k.startswith("key_field_started")) >= 9
