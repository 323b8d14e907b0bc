"""One shared `transitions` machine for all firms: a firm is bound for one fire and released after."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from transitions import EventData, Machine

from states.definition import TRIGGERS, Role, State, TriggerSpec
from states.errors import GuardFailed, InvalidTransition, NotAllowed, UnknownTrigger
from states.guards import GUARDS, Facts

TEAM_ONLY_MESSAGE = (
    "评审结果只能由评审组全部成员评分后形成，不能直接录入 / the review result comes only from the review team, "
    "once every member has scored; it cannot be entered directly"
)


def _condition(guard_name: str) -> Any:
    check = GUARDS[guard_name].check

    def condition(event: EventData) -> bool:
        return bool(check(event.kwargs["facts"]))

    condition.__name__ = guard_name
    return condition


def transition_table() -> list[dict[str, Any]]:
    """The machine's transitions in the form `transitions` takes."""
    rows = []
    for spec in TRIGGERS.values():
        for source in spec.sources:
            rows.append(
                {
                    "trigger": spec.name,
                    "source": source.value,
                    "dest": spec.dest.value,
                    "conditions": [_condition(g) for g in spec.guards],
                }
            )
    return rows


class _Subject:
    """The firm, as the machine sees it during one fire."""

    state: str

    def __init__(self, state: State) -> None:
        self.state = state.value


@dataclass(frozen=True)
class Step:
    trigger: str
    source: State
    dest: State


class CampaignMachine:
    """Checks role, state and guards of a trigger and moves a firm through the shared machine.

    The machine holds no models at all: each fire hands the firm to the trigger's event as a short-lived
    subject, which is gone when the fire returns. Attaching and detaching a model per fire (add_model /
    remove_model) would cost about 85 µs of method wiring each time; keeping thousands attached is
    quadratic. The event API needs neither."""

    def __init__(self) -> None:
        self._machine = Machine(
            model=None,
            states=[s.value for s in State],
            transitions=transition_table(),
            initial=State.mobilized.value,
            auto_transitions=False,
            send_event=True,
        )

    @staticmethod
    def spec(trigger: str) -> TriggerSpec:
        try:
            return TRIGGERS[trigger]
        except KeyError:
            raise UnknownTrigger(f"未知操作 / unknown trigger: {trigger!r}") from None

    def door(self, trigger: str, *, team: bool = False) -> TriggerSpec:
        """Refuse a team-only trigger (the review result) to anyone but the evaluator pool's service.

        Raises:
            UnknownTrigger, NotAllowed
        """
        spec = self.spec(trigger)
        if spec.team_only and not team:
            raise NotAllowed(TEAM_ONLY_MESSAGE)
        return spec

    def check(self, *, state: State, trigger: str, role: Role, facts: Facts, team: bool = False) -> TriggerSpec:
        """Raise the first reason this trigger cannot fire now; return its spec when it can. `team` is set
        only by the evaluator pool's service when it records a team's combined result.

        Raises:
            UnknownTrigger, NotAllowed, InvalidTransition, GuardFailed
        """
        spec = self.door(trigger, team=team)
        if role not in spec.roles_for(key_field=facts.key_field):
            raise NotAllowed(f"角色 {role.value} 无权执行“{spec.label_zh}” / role {role.value} may not {trigger}")
        if state not in spec.sources:
            raise InvalidTransition(
                f"当前状态“{state.value}”下不能执行“{spec.label_zh}” / cannot {trigger} from {state.value}"
            )
        for name in spec.guards:
            guard = GUARDS[name]
            if not guard.check(facts):
                raise GuardFailed(name, guard.reason(facts))
        return spec

    def fire(self, *, state: State, trigger: str, role: Role, facts: Facts, team: bool = False) -> Step:
        """Check, then move a bound subject through `transitions`; return the step taken."""
        spec = self.check(state=state, trigger=trigger, role=role, facts=facts, team=team)
        subject = _Subject(state)
        moved = self._machine.events[trigger].trigger(subject, facts=facts)
        if not moved:  # a guard changed its mind between check and fire: facts are not stable
            raise GuardFailed("unstable_facts", "条件在校验过程中发生变化 / conditions changed during the check")
        return Step(trigger=spec.name, source=state, dest=State(subject.state))

    @staticmethod
    def _reachable(state: State, role: Role, facts: Facts) -> Iterator[tuple[str, TriggerSpec]]:
        """The triggers this role may fire from this state, guards aside: the role/state loop, once."""
        for name, spec in TRIGGERS.items():
            if state in spec.sources and role in spec.roles_for(key_field=facts.key_field):
                yield name, spec

    @staticmethod
    def _failing(spec: TriggerSpec, facts: Facts) -> Iterator[str]:
        """The guards on the firm's record that fail now, in order (guards on what the caller will type, such
        as a reason, are left to the fire itself)."""
        return (g for g in spec.guards if not GUARDS[g].on_input and not GUARDS[g].check(facts))

    def allowed(self, *, state: State, role: Role, facts: Facts) -> list[str]:
        """Triggers this role could fire now: every guard on the firm's record passes (guards on what
        the caller will type, such as a reason, are left to the fire itself)."""
        return [
            name
            for name, spec in self._reachable(state, role, facts)
            if not spec.team_only and not any(self._failing(spec, facts))
        ]

    def blocked(self, *, state: State, role: Role, facts: Facts) -> dict[str, list[str]]:
        """Why a trigger is blocked: the triggers this role could fire from this state but for guards on the
        firm's record, each with its failing guards' reasons ("中文 / English") — what is still to be done."""
        out: dict[str, list[str]] = {}
        for name, spec in self._reachable(state, role, facts):
            if failing := list(self._failing(spec, facts)):
                out[name] = [GUARDS[g].reason(facts) for g in failing]
        return out


MACHINE = CampaignMachine()
