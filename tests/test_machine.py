"""The machine on its own: every role rule and every guard, both ways; the diagram is current."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from states import (
    GUARDS,
    MACHINE,
    TRIGGERS,
    GuardFailed,
    InvalidTransition,
    NotAllowed,
    Role,
    State,
    UnknownTrigger,
)
from states.diagram import markdown

ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass
class FakeFacts:
    """Facts where every guard of the main path passes unless a test says otherwise."""

    key_field: bool = False
    notified: bool = False
    open_hazards: int = 0
    open_hazard_names: tuple[str, ...] = ()
    hazards_missing_implementations: int = 0
    self_assessment_total: float | None = 80.0
    self_assessment_at: dt.datetime | None = dt.datetime(2022, 6, 20, 9, 0, tzinfo=dt.UTC)
    last_rectification_at: dt.datetime | None = None
    last_rectified_hazard: str | None = None
    dossier_missing: tuple[tuple[str, str], ...] = ()
    audit_passed: bool = False
    review_score: float | None = None
    today: dt.date = dt.date(2022, 7, 1)
    evaluation_start: dt.date = dt.date(2022, 6, 1)
    evaluation_end: dt.date = dt.date(2023, 12, 31)
    pass_score: float = 60.0
    payload: dict[str, Any] = dataclasses.field(default_factory=dict)


def passing_facts(trigger: str, key_field: bool) -> FakeFacts:
    """Facts under which every guard of `trigger` holds."""
    facts = FakeFacts(key_field=key_field, payload={"reason": "材料不全", "score": 80, "opinion": "属实"})
    if "has_open_hazards" in TRIGGERS[trigger].guards:
        facts.open_hazards = 1
    if "audit_passed" in TRIGGERS[trigger].guards:
        facts.audit_passed = True
    if "review_passed" in TRIGGERS[trigger].guards:
        facts.review_score = 80.0
    if "review_failed" in TRIGGERS[trigger].guards:
        facts.review_score = 50.0
    return facts


ROLE_CASES = [(trigger, role, key_field) for trigger in TRIGGERS for role in Role for key_field in (True, False)]


@pytest.mark.parametrize(("trigger", "role", "key_field"), ROLE_CASES)
def test_each_role_rule_both_ways(trigger: str, role: Role, key_field: bool) -> None:
    spec = TRIGGERS[trigger]
    facts = passing_facts(trigger, key_field)
    source = spec.sources[0]
    team = spec.team_only  # the review result: through the team's path (its refusal elsewhere is tested below)
    if role in spec.roles_for(key_field=key_field):
        step = MACHINE.fire(state=source, trigger=trigger, role=role, facts=facts, team=team)
        assert step.dest is spec.dest
    else:
        with pytest.raises(NotAllowed):
            MACHINE.fire(state=source, trigger=trigger, role=role, facts=facts, team=team)


def test_audit_belongs_to_the_support_center_for_key_fields_and_to_the_district_otherwise() -> None:
    audit = TRIGGERS["pass_audit"]
    assert audit.roles_for(key_field=True) == {Role.support_center}
    assert audit.roles_for(key_field=False) == {Role.district_bureau}


# Each guard: the facts that break it, and the message a user reads.
BREAKERS: dict[str, tuple[dict[str, Any], str]] = {
    "not_yet_notified": ({"notified": True}, "already been notified"),
    "has_open_hazards": ({"open_hazards": 0}, "no open hazard"),
    "no_open_hazards": (
        {"open_hazards": 2, "open_hazard_names": ("#3“通风不良”", "#4“报警器失效”")},
        "2 hazard(s) still open: #3“通风不良”、#4“报警器失效”",
    ),
    "self_assessment_after_rectification": (
        {
            "self_assessment_at": dt.datetime(2022, 6, 20, 9, 0, tzinfo=dt.UTC),
            "last_rectification_at": dt.datetime(2022, 6, 21, 10, 30, tzinfo=dt.UTC),
            "last_rectified_hazard": "#7“消防通道堵塞”",
        },
        "self-assessment (2022-06-20 09:00) was taken before the last rectification (2022-06-21 10:30, "
        "hazard #7“消防通道堵塞”)",
    ),
    "dossier_complete": (
        {"dossier_missing": (("自评报告", "self-assessment report"), ("申请表", "application form"))},
        "not uploaded: self-assessment report, application form",
    ),
    "opinion_given": ({"payload": {"opinion": "  "}}, "a verification opinion is required"),
    "five_implementations_complete": ({"hazards_missing_implementations": 1}, "lack one of the five"),
    "self_assessment_done": ({"self_assessment_total": None}, "no self-assessment"),
    "within_evaluation_window": ({"today": dt.date(2022, 5, 31)}, "from 2022-06-01 to 2023-12-31"),
    "reason_given": ({"payload": {"reason": "   ", "score": 80}}, "a reason is required"),
    "score_in_range": ({"payload": {"reason": "x", "score": 100.1}}, "from 0 to 100"),
    "not_yet_audited": ({"audit_passed": True}, "already passed"),
    "audit_passed": ({"audit_passed": False}, "has not passed yet"),
    "review_passed": ({"review_score": 59.9}, "below 60.0"),
    "review_failed": ({"review_score": 60.0}, "not below the threshold"),
}


def test_every_guard_has_a_breaking_case() -> None:
    assert set(BREAKERS) == set(GUARDS)


@pytest.mark.parametrize(
    ("trigger", "guard"),
    [(t, g) for t, spec in TRIGGERS.items() for g in spec.guards],
)
def test_each_guard_both_ways(trigger: str, guard: str) -> None:
    spec = TRIGGERS[trigger]
    key_field = False
    role = sorted(spec.roles_for(key_field=key_field))[0]
    facts = passing_facts(trigger, key_field)
    team = spec.team_only
    assert MACHINE.fire(state=spec.sources[0], trigger=trigger, role=role, facts=facts, team=team).dest is spec.dest
    changes, message = BREAKERS[guard]
    broken = dataclasses.replace(facts, **changes)
    with pytest.raises(GuardFailed) as caught:
        MACHINE.fire(state=spec.sources[0], trigger=trigger, role=role, facts=broken, team=team)
    assert caught.value.guard == guard
    assert message in caught.value.reason


@pytest.mark.parametrize("score", [-1, 100.5, "abc", None, True, float("nan")])
def test_scores_outside_0_to_100_are_refused(score: Any) -> None:
    facts = FakeFacts(audit_passed=True, payload={"score": score})
    with pytest.raises(GuardFailed, match="0 to 100"):
        MACHINE.fire(state=State.verified, trigger="record_review", role=Role.district_bureau, facts=facts, team=True)


@pytest.mark.parametrize("score", [0, 0.0, 60, "75.5", 100])
def test_scores_inside_0_to_100_are_accepted(score: Any) -> None:
    facts = FakeFacts(audit_passed=True, payload={"score": score})
    step = MACHINE.fire(
        state=State.verified, trigger="record_review", role=Role.district_bureau, facts=facts, team=True
    )
    assert step.dest is State.reviewed


@pytest.mark.parametrize("role", list(Role))
def test_the_review_result_is_refused_to_every_role_without_the_team(role: Role) -> None:
    """评定人员库成员方可参加…审核工作; 组织评审组…进行线上和线下现场评审: a score never comes from a person's
    hand, whichever role, state and score."""
    facts = FakeFacts(audit_passed=True, payload={"score": 92})
    with pytest.raises(NotAllowed, match="comes only from the review team"):
        MACHINE.fire(state=State.verified, trigger="record_review", role=role, facts=facts)
    assert "record_review" not in MACHINE.allowed(state=State.verified, role=role, facts=facts)
    with pytest.raises(NotAllowed, match="comes only from the review team"):
        MACHINE.door("record_review")
    # the only team-only trigger is the review result
    assert [name for name, spec in TRIGGERS.items() if spec.team_only] == ["record_review"]


def test_a_trigger_from_the_wrong_state_is_refused_with_the_state_named() -> None:
    with pytest.raises(InvalidTransition, match="cannot certify from mobilized"):
        MACHINE.fire(state=State.mobilized, trigger="certify", role=Role.city_bureau, facts=FakeFacts())


def test_an_unknown_trigger_is_refused() -> None:
    with pytest.raises(UnknownTrigger, match="teleport"):
        MACHINE.fire(state=State.mobilized, trigger="teleport", role=Role.city_bureau, facts=FakeFacts())


def test_closed_is_terminal_and_reachable_from_every_state_but_certified() -> None:
    assert not any(State.closed in spec.sources for spec in TRIGGERS.values())
    assert set(TRIGGERS["close"].sources) == set(State) - {State.certified, State.closed}


def test_every_state_is_reachable_from_mobilized() -> None:
    reached, frontier = {State.mobilized}, [State.mobilized]
    while frontier:
        state = frontier.pop()
        for spec in TRIGGERS.values():
            if state in spec.sources and spec.dest not in reached:
                reached.add(spec.dest)
                frontier.append(spec.dest)
    assert reached == set(State)


def test_allowed_lists_what_the_role_may_do_now() -> None:
    facts = FakeFacts(open_hazards=1)
    assert MACHINE.allowed(state=State.self_assessing, role=Role.enterprise, facts=facts) == ["report_hazards"]
    assert MACHINE.allowed(state=State.applied, role=Role.district_bureau, facts=facts) == [
        "return_application",
        "verify",
        "close",
    ]


def test_blocked_names_what_is_still_to_be_done() -> None:
    """Submitting needs a self-assessment and no open hazard (the plan: 自评 then 整改 before 申请); reporting
    hazards is open, so it is not blocked; a guard on what the caller will type (a reason) never blocks."""
    facts = FakeFacts(
        open_hazards=2, open_hazard_names=("#3 配电箱未接地", "#5 消防通道堵塞"), self_assessment_total=None
    )
    assert MACHINE.blocked(state=State.self_assessing, role=Role.enterprise, facts=facts) == {
        "submit_application": [
            "尚未完成自评 / no self-assessment has been recorded",
            "仍有 2 项隐患未整改：#3 配电箱未接地、#5 消防通道堵塞 / "
            "2 hazard(s) still open: #3 配电箱未接地、#5 消防通道堵塞",
        ]
    }
    assert MACHINE.blocked(state=State.applied, role=Role.district_bureau, facts=FakeFacts()) == {}
    assert MACHINE.blocked(state=State.self_assessing, role=Role.district_bureau, facts=facts) == {}


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("role", list(Role))
def test_allowed_and_blocked_split_what_the_role_may_try(state: State, role: Role) -> None:
    facts = FakeFacts(open_hazards=1, self_assessment_total=None)
    allowed = MACHINE.allowed(state=state, role=role, facts=facts)
    blocked = MACHINE.blocked(state=state, role=role, facts=facts)
    assert not set(allowed) & set(blocked)
    for name in blocked:
        assert state in TRIGGERS[name].sources and blocked[name]


def test_workflow_diagram_is_current() -> None:
    committed = (ROOT / "workflow_diagram.md").read_text(encoding="utf-8")
    assert committed == markdown(), "workflow_diagram.md is stale: run `dabiao diagram`"


def test_diagram_draws_every_transition_and_names_roles_and_guards() -> None:
    text = markdown()
    assert "stateDiagram-v2" in text
    for spec in TRIGGERS.values():
        for source in spec.sources:
            assert f"{source.value} --> {spec.dest.value}: {spec.name}" in text
        assert f"| `{spec.name}` |" in text
    assert "support_center (key field)" in text
