"""Driving and reading firms: `fire`, `show` and `stats`."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click
import sqlalchemy as sa
from sqlmodel import Session

from api.commands.base import App, as_of_option, echo_json, friendly_errors, local_date, pass_app
from states import TRIGGERS, Role
from workflow.actors import Actor
from workflow.campaign import Campaign
from workflow.clock import Clock
from workflow.context import Context
from workflow.engine import allowed_triggers, fire, load_firm
from workflow.queries import firm_detail, state_counts


@click.command("fire")
@click.argument("credit_code")
@click.argument("trigger", type=click.Choice(sorted(TRIGGERS)))
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--data", default=None, help='JSON object, e.g. \'{"reason": "材料不全"}\'')
@click.option("--expect-version", type=int, default=None, help="Refuse if the firm's version differs.")
@click.option("--json", "as_json", is_flag=True)
@as_of_option
@pass_app
@friendly_errors
def fire_cmd(
    app: App,
    credit_code: str,
    trigger: str,
    role: str,
    data: str | None,
    expect_version: int | None,
    as_json: bool,
    as_of: dt.datetime | None,
) -> None:
    """Fire TRIGGER on the firm with CREDIT_CODE, acting as an administrator in ROLE."""
    app.require_schema()
    try:
        payload = json.loads(data) if data else None
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"不是有效的 JSON / not valid JSON: {exc}", param_hint="--data") from None
    with app.engine.connect() as conn:
        firm = load_firm(conn, uscc=credit_code.strip().upper())
    with Session(app.engine) as session:
        result = fire(
            session,
            enterprise_id=firm.id,
            trigger=trigger,
            actor=Actor.administrator(Role(role), firm),
            context=app.context(local_date(as_of)),
            payload=payload,
            expected_version=expect_version,
        )
    if as_json:
        echo_json(
            {
                "uscc": firm.uscc,
                "trigger": result.trigger,
                "from": result.from_state.value,
                "to": result.to_state.value,
                "version": result.version,
                "event_id": result.event_id,
                "at": result.at.isoformat(),
                "record": dict(result.record),
                "mails": list(result.mails),
            }
        )
    else:
        click.echo(f"{firm.name}：{result.from_state.value} → {result.to_state.value}（版本 {result.version}）")


def firm_view(conn: sa.Connection, firm: sa.Row[Any], *, campaign: Campaign, clock: Clock) -> dict[str, Any]:
    """The firm as an administrator sees it: its detail (as the city bureau would), every role's next steps
    and its events."""
    view = firm_detail(
        conn,
        actor=Actor("admin (command line)", Role.city_bureau),
        enterprise_id=firm.id,
        context=Context(campaign, clock),
    )
    view["allowed_triggers"] = {
        role.value: names
        for role in Role
        if (names := allowed_triggers(conn, firm=firm, role=role, context=Context(campaign, clock)))
    }
    view["events"] = [item for item in view["history"] if item["kind"] == "event"]
    return view


@click.command()
@click.argument("credit_code")
@click.option("--json", "as_json", is_flag=True)
@as_of_option
@pass_app
@friendly_errors
def show(app: App, credit_code: str, as_json: bool, as_of: dt.datetime | None) -> None:
    """Show one firm: state, version, open hazards, application, history and what may happen next."""
    app.require_schema()
    with app.engine.connect() as conn:
        firm = load_firm(conn, uscc=credit_code.strip().upper())
        view = firm_view(conn, firm, campaign=app.campaign, clock=app.clock(local_date(as_of)))
    if as_json:
        echo_json(view)
        return
    click.echo(f"{view['name']}（{view['uscc']}）{view['district']['name']}")
    click.echo(
        f"  状态 / state: {view['state_label']} ({view['state']}) 自 {view['state_since'][:10]}，版本 {view['version']}"
    )
    click.echo(f"  未整改隐患 / open hazards: {len(view['open_hazards'])}")
    for role, names in view["allowed_triggers"].items():
        click.echo(f"  {role} 可执行 / may: {', '.join(names)}")
    for e in view["events"]:
        click.echo(f"  #{e['seq']} {e['at'][:10]} {e['trigger']}: {e['from']} → {e['to']} ({e['role']}, {e['actor']})")


@click.command()
@click.option("--json", "as_json", is_flag=True)
@pass_app
@friendly_errors
def stats(app: App, as_json: bool) -> None:
    """Counts of firms per state × district × field."""
    app.require_schema()
    with app.engine.connect() as conn:
        cells = state_counts(conn)
    if as_json:
        echo_json({"total": sum(c["count"] for c in cells), "cells": cells})
        return
    for c in cells:
        field = "重点" if c["key_field"] else "非重点"
        click.echo(f"{c['district_name']:<8} {field:<4} {c['state']:<15} {c['count']:>8}")
    click.echo(f"合计 / total: {sum(c['count'] for c in cells)}")
