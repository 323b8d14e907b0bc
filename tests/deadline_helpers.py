"""Helpers for the deadline tests: sweeping a day, moving a firm on a day, reading back what sweeps wrote."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import sqlalchemy as sa

from deadlines.sweep import SweepReport, sweep
from states import Role
from tests.factories import Driver
from workflow import uscc
from workflow.campaign import Campaign
from workflow.clock import SHANGHAI, FixedClock
from workflow.context import Context
from workflow.records import FiveImplementations
from workflow.tables import (
    APPLICATIONS,
    ENTERPRISES,
    ESCALATIONS,
    OUTBOX,
    REFERRAL_SUGGESTIONS,
    REFERRALS,
    SWEEP_RUNS,
)

DEADLINE_KINDS = ("deadline_reminder", "creation_reminder", "deadline_overdue", "referral")


def sweep_on(engine: sa.Engine, campaign: Campaign, day: dt.date) -> list[SweepReport]:
    """The daily sweep as the scheduler starts it: at 02:00 local of `day`."""
    return sweep(engine, context=Context(campaign, FixedClock.on(day, hour=2)), through=day, again=True)


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def local_day(instant: dt.datetime | None) -> dt.date | None:
    return None if instant is None else instant.astimezone(SHANGHAI).date()


class Firm:
    """A firm moved by its script: each call fires as the right role at noon of the given day."""

    def __init__(self, engine: sa.Engine, campaign: Campaign, firm_id: int) -> None:
        self.id = firm_id
        self.driver = Driver(engine, campaign, firm_id)
        self.engine = engine
        self.applications: list[int] = []
        self.hazards: list[int] = []
        self.rectified = False

    def on(self, day: dt.date) -> Firm:
        self.driver.clock = FixedClock.on(day)
        return self

    def fire(self, trigger: str, role: Role, payload: dict[str, Any] | None = None) -> None:
        result = self.driver.fire(trigger, role, payload)
        if trigger == "submit_application":
            self.applications.append(int(result.record["application_id"]))

    def notify(self) -> None:
        self.fire("notify", Role.district_bureau)

    def start(self) -> None:
        self.fire("start_self_assessment", Role.enterprise)
        self.driver.self_assess()

    def submit(self) -> None:
        if self.rectified:  # an application needs a self-assessment taken after the last rectification
            self.driver.self_assess()
            self.rectified = False
        self.driver.dossier()
        self.fire("submit_application", Role.enterprise)

    def review(self, score: float) -> None:
        """The review team's result (a server draw, every member's sheet, the team's score)."""
        self.driver.review(score)

    def hazard(self, deadline: dt.date, severity: str = "general") -> int:
        five = FiveImplementations("李四", "更换防爆电机", 5000.0, deadline, "车间应急预案")
        hazard_id = self.driver.hazard(five, severity=severity)
        self.hazards.append(hazard_id)
        return hazard_id

    def rectify(self, hazard_id: int) -> None:
        self.driver.rectify(hazard_id)
        self.rectified = True


def bulk_firms(
    engine: sa.Engine,
    count: int,
    *,
    seed: int,
    district: str = "320412",
    key_field: bool = True,
    above_size: bool = True,
    notified: bool = False,
) -> None:
    """Many plain firms at once (one statement), for tests that need volume rather than history."""
    rng = random.Random(seed)
    at = dt.datetime(2022, 1, 10, tzinfo=dt.UTC)
    rows = [
        {
            "uscc": uscc.make(rng, division=district),
            "name": f"常州批量{seed}-{n}有限公司",
            "district_code": district,
            "sector": "chemical" if key_field else "machinery",
            "key_field": key_field,
            "above_size": above_size,
            "principal": "王五",
            "phone": "13900000000",
            "email": f"f{seed}-{n}@example.com",
            "state": "mobilized",
            "version": 1,
            "state_since": at,
            "notified_at": at if notified else None,
            "created_at": at,
            "updated_at": at,
        }
        for n in range(count)
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(ENTERPRISES), rows)


def outbox_days(engine: sa.Engine) -> dict[str, dt.date | None]:
    """Deadline mail in the outbox: dedupe key → the local day it was written."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(OUTBOX.c.dedupe_key, OUTBOX.c.created_at).where(OUTBOX.c.kind.in_(DEADLINE_KINDS))
        ).all()
    return {r.dedupe_key: local_day(r.created_at) for r in rows}


def escalation_days(engine: sa.Engine) -> dict[str, tuple[dt.date | None, dt.date | None]]:
    """Escalations: dedupe key → (the day it was written, the day it was resolved or None)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(ESCALATIONS)).all()
    return {r.dedupe_key: (local_day(r.created_at), local_day(r.resolved_at)) for r in rows}


def referral_days(engine: sa.Engine) -> dict[str, tuple[dt.date | None, str]]:
    """The sweep's referral suggestions to the districts: the day each was made, and where it stands."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(REFERRAL_SUGGESTIONS)).all()
    return {r.dedupe_key: (local_day(r.suggested_at), r.status) for r in rows}


def snapshot(engine: sa.Engine, *, with_times: bool = True) -> dict[str, list[tuple[Any, ...]]]:
    """Everything the sweeps wrote, comparable across runs (ids left out; times optional)."""
    with engine.connect() as conn:
        esc = conn.execute(sa.select(ESCALATIONS).order_by(ESCALATIONS.c.dedupe_key)).all()
        out = conn.execute(
            sa.select(OUTBOX).where(OUTBOX.c.kind.in_(DEADLINE_KINDS)).order_by(OUTBOX.c.dedupe_key)
        ).all()
        ref = conn.execute(sa.select(REFERRAL_SUGGESTIONS).order_by(REFERRAL_SUGGESTIONS.c.dedupe_key)).all()
    return {
        "escalations": [
            (
                r.dedupe_key,
                r.rule,
                r.subject_kind,
                r.subject_id,
                r.enterprise_id,
                r.district_code,
                r.step,
                r.deadline,
                r.days_overdue,
                r.status,
                r.detail,
                *((r.created_at, r.resolved_at) if with_times else ()),
            )
            for r in esc
        ],
        "outbox": [
            (
                r.dedupe_key,
                r.kind,
                r.audience,
                r.enterprise_id,
                r.district_code,
                r.to_address,
                r.lang,
                r.context,
                r.status,
                *((r.created_at,) if with_times else ()),
            )
            for r in out
        ],
        "referrals": [
            (r.dedupe_key, r.enterprise_id, r.grounds, r.status, r.detail, *((r.suggested_at,) if with_times else ()))
            for r in ref
        ],
    }


def sweep_runs(engine: sa.Engine) -> list[sa.Row[Any]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(SWEEP_RUNS).order_by(SWEEP_RUNS.c.as_of)).all())


def forget_sweeps(engine: sa.Engine) -> None:
    """Remove everything sweeps wrote (the firms and their history stay)."""
    with engine.begin() as conn:
        conn.execute(sa.delete(OUTBOX).where(OUTBOX.c.kind.in_(DEADLINE_KINDS)))
        conn.execute(sa.delete(ESCALATIONS))
        conn.execute(sa.delete(REFERRALS))
        conn.execute(sa.delete(REFERRAL_SUGGESTIONS))
        conn.execute(sa.delete(SWEEP_RUNS))


def application_of(engine: sa.Engine, firm_id: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(APPLICATIONS.c.id)
                .where(APPLICATIONS.c.enterprise_id == firm_id)
                .order_by(APPLICATIONS.c.id.desc())
                .limit(1)
            ).scalar_one()
        )
