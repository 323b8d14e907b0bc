"""Random trigger sequences by random roles, through the engine and a real database, checked against an
independent model of each firm: the engine accepts exactly what the model predicts, never reaches an
undefined state, never lets a guard slip, and replaying the event log rebuilds every firm's state."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlmodel import Session

from states import MACHINE, TRIGGERS, Role, State, WorkflowError
from tests.conftest import BACKENDS, _truncate_all
from tests.factories import dossier, full_scores, make_firm, upload
from workflow.actors import Actor
from workflow.audit import verify_chain
from workflow.campaign import Campaign
from workflow.clock import FixedClock
from workflow.context import Context
from workflow.db import make_engine
from workflow.engine import fire
from workflow.records import (
    FiveImplementations,
    record_self_assessment,
    rectify_hazard,
    report_hazard,
    update_hazard,
)
from workflow.tables import ENTERPRISES, EVENTS, HAZARDS

DAYS = [dt.date(2022, 3, 1), dt.date(2022, 7, 1), dt.date(2023, 12, 31), dt.date(2024, 1, 5)]
SCORES = [None, -5.0, 30.0, 59.9, 60.0, 75.0, 90.0, 100.0, 101.0]
REASONS = [None, "", "  ", "材料不全"]


@dataclasses.dataclass
class ModelFirm:
    """What the test believes about a firm, kept apart from the engine's own reading of the database."""

    key_field: bool
    state: State = State.mobilized
    notified: bool = False
    assessed: bool = False
    hazards: list[list[bool]] = dataclasses.field(default_factory=list)  # [open, complete]
    assessed_at: dt.datetime | None = None  # the latest self-assessment
    rectified_at: dt.datetime | None = None  # the latest rectification
    application: dict[str, Any] | None = None
    today: dt.date = DAYS[1]
    payload: dict[str, Any] = dataclasses.field(default_factory=dict)

    # the `states.Facts` view of the model
    @property
    def open_hazards(self) -> int:
        return sum(1 for open_, _ in self.hazards if open_)

    open_hazard_names: tuple[str, ...] = ()  # only in messages
    last_rectified_hazard: str | None = None
    dossier_missing: tuple[tuple[str, str], ...] = ()  # each firm uploads its dossier first

    @property
    def self_assessment_at(self) -> dt.datetime | None:
        return self.assessed_at

    @property
    def last_rectification_at(self) -> dt.datetime | None:
        return self.rectified_at

    @property
    def hazards_missing_implementations(self) -> int:
        return sum(1 for _, complete in self.hazards if not complete)

    @property
    def self_assessment_total(self) -> float | None:
        return 80.0 if self.assessed else None

    @property
    def audit_passed(self) -> bool:
        return bool(self.application and self.application["audit"])

    @property
    def review_score(self) -> float | None:
        return None if self.application is None else self.application["score"]

    evaluation_start: dt.date = dt.date(2022, 6, 1)
    evaluation_end: dt.date = dt.date(2023, 12, 31)
    pass_score: float = 60.0


class CampaignRun(RuleBasedStateMachine):
    def __init__(self, engine: sa.Engine, campaign: Campaign) -> None:
        super().__init__()
        self.engine, self.campaign = engine, campaign
        self.ids = [make_firm(engine, key_field=True), make_firm(engine, key_field=False)]
        self.model = {self.ids[0]: ModelFirm(key_field=True), self.ids[1]: ModelFirm(key_field=False)}
        for firm_id in self.ids:  # the self-assessment report and application form, from the start
            dossier(engine, firm_id)

    def actor(self, firm_id: int, role: Role) -> Actor:
        with self.engine.connect() as conn:
            district = conn.execute(
                sa.select(ENTERPRISES.c.district_code).where(ENTERPRISES.c.id == firm_id)
            ).scalar_one()
        return Actor(f"random {role.value}", role, district_code=district, enterprise_id=firm_id)

    def _call(self, action: Callable[[Session], Any]) -> bool:
        with Session(self.engine) as session:
            try:
                action(session)
            except WorkflowError:
                return False
        return True

    @rule(
        which=st.integers(0, 1),
        trigger=st.sampled_from(sorted(TRIGGERS)),
        role=st.sampled_from(list(Role)),
        day=st.sampled_from(DAYS),
        score=st.sampled_from(SCORES),
        reason=st.sampled_from(REASONS),
    )
    def fire_a_trigger(
        self, which: int, trigger: str, role: Role, day: dt.date, score: float | None, reason: str | None
    ) -> None:
        self._fire(self.ids[which], trigger, role, day, score, reason)

    @rule(
        which=st.integers(0, 1),
        data=st.data(),
        day=st.sampled_from(DAYS[1:3]),
        score=st.sampled_from(SCORES),
        reason=st.sampled_from(REASONS[1:] + ["材料不全"] * 3),
    )
    def fire_a_trigger_the_state_offers(
        self, which: int, data: st.DataObject, day: dt.date, score: float | None, reason: str | None
    ) -> None:
        """Mostly the plausible next step, so runs get deep into the path (to certified and back)."""
        firm_id = self.ids[which]
        model = self.model[firm_id]
        offered = [
            (name, role)
            for name, spec in sorted(TRIGGERS.items())
            if model.state in spec.sources and name != "close"  # `close` ends a run; the other rule tries it
            for role in sorted(spec.roles_for(key_field=model.key_field))
        ]
        if not offered:
            return
        trigger, role = data.draw(st.sampled_from(offered))
        stale = (
            model.assessed_at is not None
            and model.rectified_at is not None
            and (model.assessed_at < model.rectified_at)
        )
        if trigger == "submit_application" and (not model.assessed or stale):
            model.today = day
            self.self_assess(which)
        self._fire(firm_id, trigger, role, day, score, reason)

    def _fire(
        self, firm_id: int, trigger: str, role: Role, day: dt.date, score: float | None, reason: str | None
    ) -> None:
        model = self.model[firm_id]
        payload: dict[str, Any] = {}
        if "reason" in _keys(trigger) and reason is not None:
            payload["reason"] = reason
        if "score" in _keys(trigger) and score is not None:
            payload["score"] = score
        if "opinion" in _keys(trigger) and reason is not None:
            payload["opinion"] = reason
        model.today, model.payload = day, payload
        # The review result is team-only: refused to every caller at the door, then taken through the path
        # the evaluator pool's service uses (the team's scores are modelled as the payload's score).
        team = TRIGGERS[trigger].team_only
        if team:
            refused = self._call(
                lambda s: fire(
                    s,
                    enterprise_id=firm_id,
                    trigger=trigger,
                    actor=self.actor(firm_id, role),
                    context=Context(self.campaign, FixedClock.on(day)),
                    payload=payload,
                )
            )
            assert not refused, f"{trigger} by {role.value} was accepted without the team"
        try:
            if role is Role.reviewer:
                raise WorkflowError("reviewers act on assignments, not firms")
            MACHINE.check(state=model.state, trigger=trigger, role=role, facts=model, team=team)
            expected = True
        except WorkflowError:
            expected = False
        accepted = self._call(
            lambda s: fire(
                s,
                enterprise_id=firm_id,
                trigger=trigger,
                actor=self.actor(firm_id, role),
                context=Context(self.campaign, FixedClock.on(day)),
                payload=payload,
                team=team,
            )
        )
        assert accepted == expected, (
            f"{trigger} by {role.value} in {model.state.value}: engine {accepted}, model {expected}"
        )
        event(f"{'accepted' if accepted else 'refused'} {trigger}")
        if accepted:
            self._guards_held(firm_id, trigger, day)
            self._advance(model, trigger, payload)

    def _guards_held(self, firm_id: int, trigger: str, day: dt.date) -> None:
        """Check the guards' promises straight from the database, not through the engine's facts."""
        with self.engine.connect() as conn:
            open_hazards = conn.execute(
                sa.select(sa.func.count()).where(HAZARDS.c.enterprise_id == firm_id, HAZARDS.c.status == "open")
            ).scalar_one()
        if trigger in ("submit_application", "finish_rectification"):
            assert open_hazards == 0
        if trigger == "submit_application":
            assert dt.date(2022, 6, 1) <= day <= dt.date(2023, 12, 31)

    @staticmethod
    def _advance(model: ModelFirm, trigger: str, payload: dict[str, Any]) -> None:
        model.state = TRIGGERS[trigger].dest
        match trigger:
            case "notify":
                model.notified = True
            case "submit_application":
                model.application = {"audit": False, "score": None}
            case "pass_audit":
                assert model.application is not None
                model.application["audit"] = True
            case "record_review":
                assert model.application is not None
                model.application["score"] = float(payload["score"])
            case "return_application" | "fail_audit" | "certify" | "fail_review" | "close":
                model.application = None

    @rule(which=st.integers(0, 1))
    def self_assess(self, which: int) -> None:
        firm_id = self.ids[which]
        model = self.model[firm_id]
        accepted = self._call(
            lambda s: record_self_assessment(
                s,
                enterprise_id=firm_id,
                scores=full_scores(self.campaign),
                actor=self.actor(firm_id, Role.enterprise),
                context=Context(self.campaign, FixedClock.on(model.today)),
            )
        )
        assert accepted == (model.state in (State.self_assessing, State.rectifying))
        model.assessed |= accepted
        if accepted:
            model.assessed_at = FixedClock.on(model.today).now()

    @rule(which=st.integers(0, 1), complete=st.booleans())
    def find_a_hazard(self, which: int, complete: bool) -> None:
        firm_id = self.ids[which]
        model = self.model[firm_id]
        five = due(model.today) if complete else FiveImplementations(responsible_person="王五")
        accepted = self._call(
            lambda s: report_hazard(
                s,
                enterprise_id=firm_id,
                description="配电柜前堆放杂物",
                implementations=five,
                actor=self.actor(firm_id, Role.enterprise),
                clock=FixedClock.on(model.today),
            )
        )
        assert accepted == (model.state in (State.self_assessing, State.rectifying))
        if accepted:
            model.hazards.append([True, complete])

    @rule(which=st.integers(0, 1))
    def rectify_the_oldest_open_hazard(self, which: int) -> None:
        firm_id = self.ids[which]
        model = self.model[firm_id]
        with self.engine.connect() as conn:
            oldest = conn.execute(
                sa.select(HAZARDS.c.id, HAZARDS.c.reported_at)
                .where(HAZARDS.c.enterprise_id == firm_id, HAZARDS.c.status == "open")
                .order_by(HAZARDS.c.id)
                .limit(1)
            ).first()
        if oldest is None:
            return
        hazard_id, reported = oldest.id, oldest.reported_at.astimezone(FixedClock.on(model.today).tz).date()
        actor = self.actor(firm_id, Role.enterprise)
        clock = FixedClock.on(model.today)
        filled = self._call(
            lambda s: update_hazard(s, hazard_id=hazard_id, implementations=due(reported), actor=actor, clock=clock)
        )
        proof = upload(self.engine, firm_id, "rectification", hazard_id=hazard_id, at=clock)
        rectified = self._call(
            lambda s: rectify_hazard(s, hazard_id=hazard_id, evidence_id=proof["id"], actor=actor, clock=clock)
        )
        editable = model.state in (State.self_assessing, State.rectifying)
        assert filled == rectified == editable
        if editable:
            model.rectified_at = max(model.rectified_at or clock.now(), clock.now())
            index = next(i for i, h in enumerate(model.hazards) if h[0])
            model.hazards[index] = [False, True]

    @invariant()
    def states_agree_and_the_log_replays(self) -> None:
        with self.engine.connect() as conn:
            for firm_id, model in self.model.items():
                state = conn.execute(sa.select(ENTERPRISES.c.state).where(ENTERPRISES.c.id == firm_id)).scalar_one()
                assert State(state) is model.state
                replayed = State.mobilized
                for event in conn.execute(
                    sa.select(EVENTS.c.from_state, EVENTS.c.to_state)
                    .where(EVENTS.c.enterprise_id == firm_id)
                    .order_by(EVENTS.c.seq)
                ):
                    assert State(event.from_state) is replayed
                    replayed = State(event.to_state)
                assert replayed is model.state

    def teardown(self) -> None:
        with self.engine.connect() as conn:
            report = verify_chain(conn)
        self.engine.dispose()
        assert report.ok, str(report.broken)


def due(day: dt.date) -> FiveImplementations:
    """Complete five implementations with a deadline inside the campaign's calendar for a hazard of `day`."""
    return FiveImplementations("李四", "更换防爆电机", 5000.0, day + dt.timedelta(days=30), "车间应急预案")


def _keys(trigger: str) -> frozenset[str]:
    from workflow.effects import ALLOWED_KEYS

    return ALLOWED_KEYS[trigger]


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_trigger_sequences(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, campaign: Campaign
) -> None:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")

        def new_engine() -> sa.Engine:
            path = tmp_path / f"{uuid.uuid4().hex}.db"
            shutil.copy(template, path)
            return make_engine(f"sqlite:///{path}")

        examples = 40
    else:
        url: str = request.getfixturevalue("pg_schema_url")

        def new_engine() -> sa.Engine:
            engine = make_engine(url)
            _truncate_all(engine, campaign)
            return engine

        examples = 15
    run_state_machine_as_test(
        lambda: CampaignRun(new_engine(), campaign),
        settings=settings(
            max_examples=examples,
            stateful_step_count=100,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
