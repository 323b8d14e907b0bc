"""One trigger fired from a front door (the API's transition route and the firm page's form): the firm
at the version its caller saw, with the materials it named by evidence id; a destructive trigger (closing a
firm, revoking its certificate, failing its audit or review) only with the firm's name typed to confirm it."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from states import TRIGGERS, InvalidInput
from workflow.actors import Actor
from workflow.context import Context
from workflow.db import read_unit
from workflow.engine import FireResult, fire
from workflow.queries import evidence_named
from workflow.tables import ENTERPRISES


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
    name in `confirm_name` (`name_confirmed`). Raises as `fire`, `evidence_named` and `name_confirmed`."""
    data = payload
    if material:
        data = dict(payload or {})
        with read_unit(session) as conn:
            data["materials"] = evidence_named(conn, enterprise_id=enterprise_id, ids=material)
    then = also
    if TRIGGERS.get(trigger) is not None and TRIGGERS[trigger].destructive:

        def then(conn: sa.Connection, result: FireResult) -> None:
            name_confirmed(conn, enterprise_id=enterprise_id, trigger=trigger, confirm_name=confirm_name)
            if also is not None:
                also(conn, result)

    return fire(
        session,
        enterprise_id=enterprise_id,
        trigger=trigger,
        actor=actor,
        context=context,
        payload=data,
        expected_version=version,
        also=then,
    )


def same_name(typed: str | None, name: str) -> bool:
    """A name typed to confirm matches the firm's: compared without spaces, full- and half-width alike
    (（武进） and (武进))."""

    def plain(text: str) -> str:
        return "".join(unicodedata.normalize("NFKC", text).split())

    return typed is not None and plain(typed) != "" and plain(typed) == plain(name)


def name_confirmed(conn: sa.Connection, *, enterprise_id: int, trigger: str, confirm_name: str | None) -> None:
    """A person at a door closes a firm, revokes its certificate or fails its audit or review only with the
    firm's name typed to confirm it. Judged inside the fire's own transaction once everything else has passed
    (scope, role, state, guards, version), so nobody who may not fire the trigger learns the firm's name and
    a missing reason is named first; the refusal undoes the fire.

    Raises:
        InvalidInput: the name is missing or is not the firm's.
    """
    spec = TRIGGERS.get(trigger)
    if spec is None or not spec.destructive:
        return
    name = str(conn.execute(sa.select(ENTERPRISES.c.name).where(ENTERPRISES.c.id == enterprise_id)).scalar_one())
    if same_name(confirm_name, name):
        return
    if not (confirm_name or "").strip():
        raise InvalidInput(
            f"“{spec.label_zh}”不可轻易撤回：请输入企业全称“{name}”确认 / "
            f"“{spec.label_en}” cannot easily be undone: type the firm's full name “{name}” to confirm"
        )
    raise InvalidInput(
        f"输入的企业名称“{confirm_name}”与“{name}”不符，未执行“{spec.label_zh}” / the name typed "
        f"(“{confirm_name}”) is not the firm's (“{name}”): “{spec.label_en}” was not done"
    )
