"""Bulk actions: one trigger fired on many firms in one call (a district verifying its applications, the
city certifying a list), each firm still its own audited transition in its own transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from states import MACHINE, InvalidInput, NotAllowed, Role, WorkflowError
from workflow.campaign import Campaign
from workflow.clock import Clock
from workflow.db import held_writer
from workflow.effects import clean_payload
from workflow.engine import Actor, FireResult, transition

MAX_FIRMS = 5000  # one call; a larger list is sent in parts


@dataclass(frozen=True)
class BulkTarget:
    """A firm to act on, with the version the caller saw (None: whatever it is now)."""

    enterprise_id: int
    version: int | None = None


@dataclass(frozen=True)
class BulkOutcome:
    """What happened to one firm: its transition, or why there was none."""

    enterprise_id: int
    result: FireResult | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None

    @property
    def code(self) -> str | None:
        if self.error is None:
            return None
        return self.error.code if isinstance(self.error, WorkflowError) else "database_error"


def roles_for(trigger: str) -> frozenset[Role]:
    """Every role that may fire `trigger` on some firm (key-field or not)."""
    spec = MACHINE.spec(trigger)
    return spec.roles_for(key_field=True) | spec.roles_for(key_field=False)


def fire_many(
    session: Session,
    *,
    trigger: str,
    targets: Sequence[BulkTarget],
    actor: Actor,
    campaign: Campaign,
    clock: Clock,
    payload: Mapping[str, Any] | None = None,
) -> list[BulkOutcome]:
    """Fire `trigger` on every target, in the order given, each as its own transaction (scope, role, state,
    guards, version check, event, outbox — as `fire`), on one pooled connection held for the whole call.
    A firm that cannot move is listed with its reason and the rest go on; a firm outside the actor's scope
    is reported as not found. No firm is ever half-done: its transaction commits whole or not at all.

    Raises (for the whole call, before any firm is touched):
        UnknownTrigger; NotAllowed when the actor's role may never fire this trigger; InvalidInput for bad
        shared data, an empty or too long list, or a firm listed twice.
    """
    if actor.role not in roles_for(trigger):
        raise NotAllowed(f"角色 {actor.role.value} 无权执行“{trigger}” / role {actor.role.value} may not {trigger}")
    data = clean_payload(trigger, payload)
    if not targets or len(targets) > MAX_FIRMS:
        raise InvalidInput(f"须列出 1 至 {MAX_FIRMS} 家企业 / list between 1 and {MAX_FIRMS} firms")
    ids = [t.enterprise_id for t in targets]
    if len(set(ids)) != len(ids):
        raise InvalidInput("同一企业不能列出两次 / a firm is listed twice")
    outcomes = []
    with held_writer(session) as unit:
        for target in targets:
            try:
                with unit() as raw:
                    result = transition(
                        raw,
                        enterprise_id=target.enterprise_id,
                        trigger=trigger,
                        actor=actor,
                        campaign=campaign,
                        clock=clock,
                        data=data,
                        expected_version=target.version,
                    )
            except (WorkflowError, sa.exc.DBAPIError) as error:  # recorded for this firm; the others go on
                outcomes.append(BulkOutcome(target.enterprise_id, error=error))
            else:
                outcomes.append(BulkOutcome(target.enterprise_id, result=result))
    return outcomes
