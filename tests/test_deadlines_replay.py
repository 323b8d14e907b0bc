"""The whole campaign replayed on a synthetic directory: a sweep every day from 2022-02-08 to 2024-01-31
while scripted firms move; the right firms are reminded, escalated, resolved and referred on the right
days, and nothing happens twice."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from deadlines.referrals import acknowledge_referral, confirm_referral, decline_referral, propose_referral
from states import Role
from tests.deadline_helpers import (
    DEADLINE_KINDS,
    Firm,
    days,
    escalation_days,
    outbox_days,
    referral_days,
    sweep_on,
    sweep_runs,
)
from tests.factories import OPINION, make_firm
from workflow.actors import Actor
from workflow.campaign import Campaign, DeadlineRule
from workflow.clock import FixedClock
from workflow.context import Context
from workflow.tables import ENTERPRISES, ESCALATIONS, OUTBOX, REFERRALS

FIRST, LAST = dt.date(2022, 2, 8), dt.date(2024, 1, 31)
DISTRICTS = ("320481", "320413", "320412", "320411", "320402", "320404", "320491")
D = dt.date


class Expected:
    """What the sweeps must write, worked out from the script and the campaign's rules."""

    def __init__(self) -> None:
        self.outbox: dict[str, dt.date] = {}
        self.escalations: dict[str, tuple[dt.date, dt.date | None]] = {}
        self.referrals: dict[str, tuple[dt.date, str]] = {}

    def rule(
        self,
        rule: str,
        kind: str,
        subject: int,
        deadline: dt.date,
        cfg: DeadlineRule,
        *,
        until: dt.date | None = None,
        holder: str | None = None,
    ) -> None:
        """The subject is held by `rule` until it moves at noon of `until` (sweeps that day still see it);
        `holder` is the office a `holder` step goes to."""
        days_before = sorted(cfg.reminder_days, reverse=True)
        for before in days_before:
            day = deadline - dt.timedelta(days=before)
            if FIRST <= day <= LAST and (until is None or day <= until):
                self.outbox[f"reminder:{rule}:{kind}:{subject}:{before}"] = day
        for ladder_step, after in cfg.steps():
            step = holder if ladder_step == "holder" and holder else ladder_step
            day = deadline + dt.timedelta(days=after)
            if day > LAST or (until is not None and day > until):
                continue
            resolved = None if until is None or until + dt.timedelta(days=1) > LAST else until + dt.timedelta(days=1)
            self.escalations[f"{rule}:{kind}:{subject}:{step}"] = (day, resolved)
            if step == "firm":
                self.outbox[f"overdue:{rule}:{kind}:{subject}"] = day


def test_the_campaign_replayed_day_by_day(engine: sa.Engine, campaign: Campaign) -> None:
    rules = campaign.deadlines.rules
    key_milestone = next(m.date for m in campaign.milestones if m.applies_to == "key_field")
    other_milestone = next(m.date for m in campaign.milestones if m.applies_to == "non_key_above_size")
    mobilization_end, creation_end = campaign.phases.mobilization.end, campaign.phases.creation.end
    evaluation_end = campaign.phases.evaluation.end
    script: dict[dt.date, list[Callable[[], None]]] = defaultdict(list)
    cohorts: dict[str, list[Firm]] = defaultdict(list)

    def cohort(name: str, count: int, *, key_field: bool, above_size: bool = True) -> list[Firm]:
        for n in range(count):
            firm_id = make_firm(
                engine, district=DISTRICTS[n % len(DISTRICTS)], key_field=key_field, above_size=above_size
            )
            cohorts[name].append(Firm(engine, campaign, firm_id))
        return cohorts[name]

    def on(day: dt.date, firms: list[Firm], *moves: Callable[[Firm], None]) -> None:
        for firm in firms:
            script[day].append(lambda firm=firm: [move(firm.on(day)) for move in moves] and None)

    notify = Firm.notify
    start = Firm.start
    submit = Firm.submit

    def fire(trigger: str, role: Role, payload: dict[str, object] | None = None) -> Callable[[Firm], None]:
        return lambda f: f.fire(trigger, role, payload)

    def review(score: float) -> Callable[[Firm], None]:
        return lambda f: f.review(score)

    verify = fire("verify", Role.district_bureau, OPINION)
    certify = fire("certify", Role.city_bureau)
    fail_review = fire("fail_review", Role.city_bureau)
    finish = fire("finish_rectification", Role.enterprise)

    def audit(f: Firm) -> None:
        f.fire("pass_audit", f.driver.auditor())

    # A: key-field firms that do everything in time: nothing is ever due for them.
    a = cohort("prompt", 20, key_field=True)
    on(D(2022, 2, 10), a, notify)
    on(D(2022, 3, 15), a, start)
    on(D(2022, 7, 1), a, submit)
    on(D(2022, 7, 5), a, verify)
    on(D(2022, 7, 10), a, audit)
    on(D(2022, 7, 20), a, review(85))
    on(D(2022, 7, 25), a, certify)
    # B: key-field firms that never start: non-participating, referred (the end of creation is not theirs).
    b = cohort("non_participating", 20, key_field=True)
    on(D(2022, 2, 10), b, notify)
    # C: key-field firms that start two weeks after their milestone, then go all the way.
    c = cohort("late_starter", 10, key_field=True)
    on(D(2022, 2, 10), c, notify)
    on(D(2023, 1, 15), c, start)
    on(D(2023, 6, 1), c, submit)
    on(D(2023, 6, 5), c, verify)
    on(D(2023, 6, 10), c, audit)
    on(D(2023, 6, 20), c, review(70))
    on(D(2023, 6, 25), c, certify)
    # D: non-key above-size firms that never start.
    d = cohort("above_size_idle", 20, key_field=False)
    on(D(2022, 2, 10), d, notify)
    # E: small firms outside the campaign's groups: notified, never start, never chased.
    e = cohort("small", 100, key_field=False, above_size=False)
    on(D(2022, 2, 10), e, notify)
    # F: small firms whose notice went out late (F1) or never (F2).
    f1 = cohort("notified_late", 10, key_field=False, above_size=False)
    on(D(2022, 3, 10), f1, notify)
    f2 = cohort("never_notified", 5, key_field=False, above_size=False)
    # G: key-field firms with a major hazard due 2022-09-30: G1 rectify in time, G2 never.
    hazard_deadline = D(2022, 9, 30)
    g1 = cohort("hazard_rectified", 10, key_field=True)
    g2 = cohort("hazard_overdue", 10, key_field=True)
    on(D(2022, 2, 10), g1 + g2, notify)
    on(D(2022, 3, 15), g1 + g2, start)
    on(D(2022, 3, 20), g1 + g2, lambda f: f.hazard(hazard_deadline, "major"), fire("report_hazards", Role.enterprise))
    on(D(2022, 9, 15), g1, lambda f: f.rectify(f.hazards[0]), finish)
    on(D(2022, 9, 16), g1, submit)
    on(D(2022, 9, 17), g1, verify)
    on(D(2022, 9, 18), g1, audit)
    on(D(2022, 9, 19), g1, review(80))
    on(D(2022, 9, 20), g1, certify)
    # H: non-key firms whose officials are slow at each step.
    h = cohort("slow_officials", 10, key_field=False)
    on(D(2022, 2, 10), h, notify)
    on(D(2022, 3, 15), h, start)
    on(D(2022, 7, 1), h, submit)
    on(D(2022, 7, 20), h, verify)
    on(D(2022, 8, 6), h, audit)
    on(D(2022, 8, 20), h, review(80))
    on(D(2022, 9, 2), h, certify)
    # I: key-field firms that fail the review twice.
    i = cohort("failed_twice", 6, key_field=True)
    on(D(2022, 2, 10), i, notify)
    on(D(2022, 3, 15), i, start)
    for first, score in ((D(2022, 7, 1), 50), (D(2022, 7, 7), 40)):
        on(first, i, submit)
        on(first + dt.timedelta(days=1), i, verify)
        on(first + dt.timedelta(days=2), i, audit)
        on(first + dt.timedelta(days=3), i, review(score))
        on(first + dt.timedelta(days=4), i, fail_review)
    on(D(2022, 7, 6), i, finish)
    # J: non-key firms that apply a month after creation ended and are never verified.
    j = cohort("late_applicant", 6, key_field=False)
    on(D(2022, 2, 10), j, notify)
    on(D(2022, 3, 15), j, start)
    on(D(2023, 12, 1), j, submit)

    # The district proposes some of the firms the sweep suggested, the city decides, the local government
    # acknowledges.
    def decide(day: dt.date, firms: list[Firm], action: str) -> None:
        def run() -> None:
            clock = FixedClock.on(day)
            for firm in firms:
                if action != "acknowledge":
                    with Session(engine) as session:
                        with engine.connect() as conn:
                            code = conn.execute(
                                sa.select(ENTERPRISES.c.district_code).where(ENTERPRISES.c.id == firm.id)
                            ).scalar_one()
                        actor = Actor("辖区", Role.district_bureau, district_code=code)
                        propose_referral(
                            session,
                            enterprise_id=firm.id,
                            grounds="non_participating",
                            actor=actor,
                            context=Context(campaign, clock),
                        )
                with engine.connect() as conn:
                    ref = conn.execute(sa.select(REFERRALS).where(REFERRALS.c.enterprise_id == firm.id)).one()
                with Session(engine) as session:
                    if action == "acknowledge":
                        actor = Actor("属地政府", Role.local_government, district_code=ref.district_code)
                        acknowledge_referral(session, referral_id=ref.id, actor=actor, clock=clock)
                    else:
                        decide_ = confirm_referral if action == "confirm" else decline_referral
                        actor = Actor("市局", Role.city_bureau)
                        decide_(
                            session, referral_id=ref.id, actor=actor, context=Context(campaign, clock), note="经研判"
                        )

        script[day].append(run)

    decide(D(2023, 2, 10), b[:4], "confirm")
    decide(D(2023, 2, 10), b[4:6], "decline")
    decide(D(2023, 2, 15), b[:2], "acknowledge")

    # ---- run: each day the sweep at 02:00, then the day's moves ----
    for day in days(FIRST, LAST):
        sweep_on(engine, campaign, day)
        for move in script.get(day, []):
            move()

    # ---- what must have happened ----
    want = Expected()
    for firm in f1:
        want.rule("mobilization", "enterprise", firm.id, mobilization_end, rules.mobilization, until=D(2022, 3, 10))
    for firm in f2:
        want.rule("mobilization", "enterprise", firm.id, mobilization_end, rules.mobilization)
    for firm in b:
        want.rule("key_field_started", "enterprise", firm.id, key_milestone, rules.milestones)
        want.referrals[f"suggestion:non_participating:enterprise:{firm.id}"] = (D(2023, 1, 30), "open")
    for firm in c:
        want.rule("key_field_started", "enterprise", firm.id, key_milestone, rules.milestones, until=D(2023, 1, 15))
    for firm in d:
        want.rule("above_size_started", "enterprise", firm.id, other_milestone, rules.milestones)
    for firm in g1:
        want.rule(
            "hazard_deadline", "hazard", firm.hazards[0], hazard_deadline, rules.hazard_deadline, until=D(2022, 9, 15)
        )
    for firm in g2:
        want.rule("hazard_deadline", "hazard", firm.hazards[0], hazard_deadline, rules.hazard_deadline)
        want.rule("creation_end", "enterprise", firm.id, creation_end, rules.creation_end)
        want.referrals[f"suggestion:major_hazard_overdue:hazard:{firm.hazards[0]}"] = (D(2022, 10, 31), "open")
    for firm in h:
        app = firm.applications[0]
        want.rule("sla_verification", "application", app, D(2022, 7, 16), rules.sla_verification, until=D(2022, 7, 20))
        want.rule("sla_online_audit", "application", app, D(2022, 8, 4), rules.sla_online_audit, until=D(2022, 8, 6))
        want.rule("sla_certification", "application", app, D(2022, 8, 30), rules.sla_certification, until=D(2022, 9, 2))
    for firm in i:
        want.rule("creation_end", "enterprise", firm.id, creation_end, rules.creation_end)
        want.referrals[f"suggestion:failed_review_twice:enterprise:{firm.id}"] = (D(2022, 7, 12), "open")
    for firm in j:
        app = firm.applications[0]
        want.rule("creation_end", "enterprise", firm.id, creation_end, rules.creation_end, until=D(2023, 12, 1))
        want.rule("sla_verification", "application", app, D(2023, 12, 16), rules.sla_verification)
        want.rule("evaluation_end", "application", app, evaluation_end, rules.evaluation_end, holder="district")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(REFERRALS.c.enterprise_id, REFERRALS.c.id, REFERRALS.c.status)).all()
    refs = {r.enterprise_id: r.id for r in rows}
    statuses = {r.enterprise_id: r.status for r in rows}
    for n, firm in enumerate(b[:6]):
        status = "acknowledged" if n < 2 else "confirmed" if n < 4 else "declined"
        want.referrals[f"suggestion:non_participating:enterprise:{firm.id}"] = (D(2023, 1, 30), "proposed")
        assert statuses[firm.id] == status
        if n < 4:
            want.outbox[f"referral:{refs[firm.id]}:local_government"] = D(2023, 2, 10)

    # whole sets: the right rows on the right days, none missing, none extra, none twice
    assert outbox_days(engine) == want.outbox
    assert escalation_days(engine) == want.escalations
    assert referral_days(engine) == want.referrals

    # a few things a district officer would check by hand
    first_b = b[0].id
    got = escalation_days(engine)
    assert got[f"key_field_started:enterprise:{first_b}:firm"] == (D(2023, 1, 1), None)
    assert got[f"key_field_started:enterprise:{first_b}:district"] == (D(2023, 1, 8), None)
    assert got[f"key_field_started:enterprise:{first_b}:city"] == (D(2023, 1, 31), None)
    assert got[f"key_field_started:enterprise:{c[0].id}:district"] == (D(2023, 1, 8), D(2023, 1, 16))
    assert f"key_field_started:enterprise:{c[0].id}:city" not in got
    assert outbox_days(engine)[f"reminder:key_field_started:enterprise:{first_b}:30"] == D(2022, 12, 1)
    with engine.connect() as conn:
        quiet = [firm.id for firm in a + e]
        escalated_quiet = conn.execute(
            sa.select(sa.func.count()).select_from(ESCALATIONS).where(ESCALATIONS.c.enterprise_id.in_(quiet))
        ).scalar()
        reminded_small = conn.execute(
            sa.select(sa.func.count())
            .select_from(OUTBOX)
            .where(OUTBOX.c.enterprise_id.in_(quiet), OUTBOX.c.kind.in_(DEADLINE_KINDS))
        ).scalar()
    assert (escalated_quiet, reminded_small) == (0, 0)

    # one finished sweep per day, each run once
    runs = sweep_runs(engine)
    assert [r.as_of for r in runs] == days(FIRST, LAST)
    assert {(r.status, r.runs) for r in runs} == {("finished", 1)}


@pytest.mark.parametrize("gap", [1, 45])
def test_counts_per_day_add_up_to_what_was_written(engine: sa.Engine, campaign: Campaign, gap: int) -> None:
    """The day's record in sweep_runs tells what each rule did, and adds up to the rows written."""
    for n in range(3):
        make_firm(engine, key_field=True, district=DISTRICTS[n])
    start = D(2022, 12, 20)
    sweep_on(engine, campaign, start)
    sweep_on(engine, campaign, start + dt.timedelta(days=gap))
    total = sum(
        n for r in sweep_runs(engine) for counts in r.counts.values() for k, n in counts.items() if k != "resolved"
    )
    with engine.connect() as conn:
        written = conn.execute(sa.select(sa.func.count()).select_from(OUTBOX).where(OUTBOX.c.kind.like("deadline_%")))
        reminders_and_notices = int(written.scalar_one())
    escalations = len(escalation_days(engine))
    referrals = len(referral_days(engine))
    assert total == reminders_and_notices + escalations + referrals > 0
    assert [r.as_of for r in sweep_runs(engine)] == days(start, start + dt.timedelta(days=gap))
