"""The tamper-evident event log: `audit verify`."""

from __future__ import annotations

import click

from api.commands.base import App, friendly_errors, pass_app
from workflow.audit import verify_chain


@click.group()
def audit() -> None:
    """The tamper-evident event log."""


@audit.command("verify")
@pass_app
@friendly_errors
def audit_verify(app: App) -> None:
    """Walk the event log and report the first event whose hash chain is broken."""
    app.require_schema()
    with app.engine.connect() as conn:
        report = verify_chain(conn)
    if report.ok:
        click.echo(f"审计链完整 / audit chain intact: {report.events_checked} events of {report.firms_checked} firms")
        return
    click.echo(f"审计链断裂 / audit chain BROKEN at {report.broken}", err=True)
    raise SystemExit(1)
