"""Bulk actions: one trigger fired on many firms in one call (a district verifying its applications, the
city certifying a list), each firm still its own audited transition, all or nothing for that firm."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from states import MACHINE, InvalidInput, NotAllowed, Role, WorkflowError
from workflow.actors import Actor
from workflow.context import Context
from workflow.db import _engine_units
from workflow.driver import Raw
from workflow.effects import clean_payload
from workflow.engine import FireResult, transition

MAX_FIRMS = 5000  # one call; a larger list is sent in parts
CHUNK = 50  # firms per commit: holds SQLite's write lock for tens of milliseconds at most


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
    context: Context,
    payload: Mapping[str, Any] | None = None,
) -> list[BulkOutcome]:
    """Fire `trigger` on every target, in the order given, each its own audited transition (scope, role,
    state, guards, version check, event, outbox — as `fire`) in a savepoint of its own, committed in chunks
    of CHUNK firms on one pooled connection held for the whole call. A firm that cannot move is listed with
    its reason and the rest go on; a firm outside the actor's scope is reported as not found. No firm is
    ever half-done: its writes commit whole or not at all.

    Raises (for the whole call, before any firm is touched):
        UnknownTrigger; NotAllowed for a team-only trigger or when the actor's role may never fire it;
        InvalidInput for bad shared data, an empty or too long list, or a firm listed twice.
    """
    MACHINE.door(trigger)  # a team-only trigger (the review result) is never fired in bulk
    if actor.role not in roles_for(trigger):
        raise NotAllowed(f"角色 {actor.role.value} 无权执行“{trigger}” / role {actor.role.value} may not {trigger}")
    data = clean_payload(trigger, payload)
    if not targets or len(targets) > MAX_FIRMS:
        raise InvalidInput(f"须列出 1 至 {MAX_FIRMS} 家企业 / list between 1 and {MAX_FIRMS} firms")
    ids = [t.enterprise_id for t in targets]
    if len(set(ids)) != len(ids):
        raise InvalidInput("同一企业不能列出两次 / a firm is listed twice")
    outcomes: list[BulkOutcome] = []
    with _engine_units(session) as unit:
        for start in range(0, len(targets), CHUNK):
            outcomes += _chunk(unit, targets[start : start + CHUNK], trigger, actor, context, data)
    return outcomes


def _chunk(
    unit: Callable[[], AbstractContextManager[Raw]],
    targets: Sequence[BulkTarget],
    trigger: str,
    actor: Actor,
    context: Context,
    data: dict[str, Any],
) -> list[BulkOutcome]:
    """Up to CHUNK firms in one transaction, each firm's transition in a savepoint of its own: a refused
    firm's writes are rolled back to its savepoint, the others' commit together (one durable commit for
    the chunk instead of one per firm). A failed commit fails every firm of the chunk, and none is written."""
    done: list[BulkOutcome] = []
    try:
        with unit() as raw:
            for target in targets:
                try:
                    with raw.savepoint():
                        result = transition(
                            raw,
                            enterprise_id=target.enterprise_id,
                            trigger=trigger,
                            actor=actor,
                            context=context,
                            data=data,
                            expected_version=target.version,
                        )
                except (WorkflowError, sa.exc.DBAPIError) as error:  # recorded for this firm; the others go on
                    done.append(BulkOutcome(target.enterprise_id, error=error))
                else:
                    done.append(BulkOutcome(target.enterprise_id, result=result))
    except sa.exc.DBAPIError as error:  # the chunk did not commit: nothing of it was written
        return [BulkOutcome(t.enterprise_id, error=error) for t in targets]
    return done
