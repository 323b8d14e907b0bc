"""One trigger fired from a front door (the API's transition route and the firm page's form): the firm
at the version its caller saw, with the materials it named by evidence id; a destructive trigger (closing a
firm, revoking its certificate, failing its audit or review) only with the firm's name typed to confirm it."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from states import TRIGGERS, InvalidInput, NotFound, State
from workflow.actors import Actor, require
from workflow.context import Context
from workflow.db import read_unit
from workflow.engine import FireResult, fire
from workflow.queries import evidence_named


def fire_seen(
    session: Session,
    context: Context,
    actor: Actor,
    enterprise_id: int,
    trigger: str,
    payload: Mapping[str, Any] | None,
    version: int | None,
    *,
    material: list[int] | None = None,
    confirm_name: str | None = None,
    also: Callable[[sa.Connection, FireResult], None] | None = None,
) -> FireResult:
    """Fire `trigger` on the firm as `fire` does, refused if its version is no longer `version`; `material`
    (ids of the firm's evidence) becomes the payload's `materials`. A destructive trigger needs the firm's
    name in `confirm_name` (`confirm_destructive`). Raises as `fire`, `evidence_named` and
    `confirm_destructive`."""
    confirm_destructive(session, actor=actor, enterprise_id=enterprise_id, trigger=trigger, confirm_name=confirm_name)
    data = payload
    if material:
        data = dict(payload or {})
        with read_unit(session) as conn:
            data["materials"] = evidence_named(conn, enterprise_id=enterprise_id, ids=material)
    return fire(
        session,
        enterprise_id=enterprise_id,
        trigger=trigger,
        actor=actor,
        context=context,
        payload=data,
        expected_version=version,
        also=also,
    )


def same_name(typed: str | None, name: str) -> bool:
    """A name typed to confirm matches the firm's: compared without spaces, full- and half-width alike
    (（武进） and (武进))."""

    def plain(text: str) -> str:
        return "".join(unicodedata.normalize("NFKC", text).split())

    return typed is not None and plain(typed) != "" and plain(typed) == plain(name)


def confirm_destructive(
    session: Session, *, actor: Actor, enterprise_id: int, trigger: str, confirm_name: str | None
) -> None:
    """A person at a door closes a firm, revokes its certificate or fails its audit or review only after
    typing the firm's name. Asked only of a caller who may fire the trigger on this firm now (the firm in
    scope, the role allowed, the state right): anyone else gets `fire`'s own refusal, never the firm's name.

    Raises:
        InvalidInput: the name is missing or is not the firm's.
    """
    spec = TRIGGERS.get(trigger)
    if spec is None or not spec.destructive:
        return
    with read_unit(session) as conn:
        try:
            firm = require(conn, actor, "firm", enterprise_id)
        except NotFound:  # no such firm, or out of scope: `fire` answers it
            return
    if actor.role not in spec.roles_for(key_field=bool(firm.key_field)) or State(firm.state) not in spec.sources:
        return
    if same_name(confirm_name, firm.name):
        return
    if not (confirm_name or "").strip():
        raise InvalidInput(
            f"“{spec.label_zh}”不可轻易撤回：请输入企业全称“{firm.name}”确认 / "
            f"“{spec.label_en}” cannot easily be undone: type the firm's full name “{firm.name}” to confirm"
        )
    raise InvalidInput(
        f"输入的企业名称“{confirm_name}”与“{firm.name}”不符，未执行“{spec.label_zh}” / the name typed "
        f"(“{confirm_name}”) is not the firm's (“{firm.name}”): “{spec.label_en}” was not done"
    )
