"""`dabiao dispatch`, `dabiao outbox …`, `dabiao mail preview …`, `dabiao digest`."""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING

import click
import sqlalchemy.exc

from api.commands.base import echo_json
from notifications.channels import BadSmtpSettings, channel_for
from notifications.digest import write_digests
from notifications.dispatch import dispatch_once
from notifications.outbox import STATUSES, OutboxError, failed_ids, list_messages, retry_message
from notifications.render import KINDS, Renderer
from notifications.samples import SAMPLE_AUDIENCE, SAMPLES
from workflow.context import Context
from workflow.models import OutboxStatus

if TYPE_CHECKING:
    from api.commands.base import App


@click.command("dispatch")
@click.option("--loop", is_flag=True, help="Keep dispatching (every DABIAO_DISPATCH_INTERVAL_SECONDS) until stopped.")
@click.pass_obj
def dispatch_cmd(app: App, loop: bool) -> None:
    """Send due outbox messages: over SMTP when DABIAO_SMTP_HOST is set, else as .eml files in DABIAO_MAIL_DIR."""
    app.require_schema()
    settings, clock = app.settings, app.clock(None)
    try:
        channel_for(settings)
    except BadSmtpSettings as exc:
        raise click.ClickException(str(exc)) from None
    if not loop:
        report = dispatch_once(app.engine, settings=settings, clock=clock, campaign=app.campaign)
        click.echo(report.summary())
        return
    click.echo(f"发送中，Ctrl-C 停止 / dispatching every {settings.dispatch_interval_seconds}s, Ctrl-C to stop")
    try:
        while True:
            try:
                report = dispatch_once(app.engine, settings=settings, clock=clock, campaign=app.campaign)
            except sqlalchemy.exc.SQLAlchemyError as exc:
                click.echo(f"数据库错误，稍后重试 / database error, trying again later: {exc}", err=True)
                time.sleep(settings.dispatch_interval_seconds)
                continue
            if report.claimed or report.recovered:
                click.echo(f"{dt.datetime.now().astimezone():%H:%M:%S} {report.summary()}")
            if report.claimed < settings.dispatch_batch:  # a full batch means more may be waiting
                time.sleep(settings.dispatch_interval_seconds)
    except KeyboardInterrupt:
        click.echo("已停止 / stopped")


@click.group()
def outbox() -> None:
    """The outbox: mail waiting, sent and failed."""


@outbox.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=None)
@click.option("--kind", type=click.Choice(KINDS), default=None)
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def outbox_list(app: App, status: str | None, kind: str | None, limit: int, as_json: bool) -> None:
    """List messages, newest first."""
    app.require_schema()
    with app.engine.connect() as conn:
        messages = list_messages(conn, status=status, kind=kind, limit=limit)
    if as_json:
        echo_json(messages)
        return
    for m in messages:
        line = f"#{m['id']:<6} {m['status']:<12} {m['kind']:<22} {m['to_address'] or '-':<32} tries {m['attempts']}"
        if m["status"] == OutboxStatus.pending and m["next_attempt_at"]:
            line += f"  next {m['next_attempt_at'][:19]}"
        if m["status"] == OutboxStatus.sent and m["sent_at"]:
            line += f"  sent {m['sent_at'][:19]}"
        if m["last_error"] and m["status"] != OutboxStatus.sent:
            line += f"\n        {m['last_error'][:160]}"
        click.echo(line)
    click.echo(f"共 {len(messages)} 封 / {len(messages)} message(s)")


@outbox.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all-failed", is_flag=True, help="Every failed message (e.g. after a long outage).")
@click.pass_obj
def outbox_retry(app: App, ids: tuple[int, ...], all_failed: bool) -> None:
    """Put failed messages (by ID) back in the queue, due now, with their attempts reset."""
    app.require_schema()
    if all_failed:
        with app.engine.connect() as conn:
            ids = (*ids, *failed_ids(conn))
    elif not ids:
        raise click.UsageError("give the ID of a message, or --all-failed")
    now = app.clock(None).now()
    problems = 0
    for outbox_id in ids:
        try:
            was = retry_message(app.engine, outbox_id=outbox_id, now=now)
        except OutboxError as exc:
            click.echo(str(exc), err=True)
            problems += 1
            continue
        click.echo(f"邮件 {outbox_id} 已重新排队 / message {outbox_id} queued again (was {was})")
    if problems:
        raise SystemExit(1)


@click.group()
def mail() -> None:
    """Mail templates."""


@mail.command("preview")
@click.argument("kind", required=False)
@click.option("--lang", type=click.Choice(["zh-CN", "en"]), default="zh-CN", show_default=True)
@click.option("--html", "as_html", is_flag=True, help="Print the HTML body instead of the plain text.")
@click.pass_obj
def mail_preview(app: App, kind: str | None, lang: str, as_html: bool) -> None:
    """Render KIND with sample data (no KIND, or an unknown one, lists the kinds)."""
    if kind not in KINDS:
        if kind is not None:
            click.echo(f"没有这种邮件 / unknown kind: {kind}", err=True)
        click.echo("邮件种类 / kinds:", err=kind is not None)
        for name in KINDS:
            click.echo(f"  {name}", err=kind is not None)
        if kind is not None:
            raise SystemExit(2)
        return
    renderer = Renderer(tz=app.settings.tz, public_url=app.settings.public_url, campaign=app.campaign)
    rendered = renderer.render(kind, lang, SAMPLES[kind], audience=SAMPLE_AUDIENCE.get(kind, "enterprise"))
    if as_html:
        click.echo(rendered.html)
        return
    click.echo(f"Subject: {rendered.subject}\n")
    click.echo(rendered.text)


@click.command("digest")
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Write the digests of this local date (YYYY-MM-DD) instead of today's.",
)
@click.pass_obj
def digest_cmd(app: App, as_of: dt.datetime | None) -> None:
    """Write today's digests for the district bureaus and the city (sent by the next dispatch)."""
    app.require_schema()
    clock = app.clock(as_of.date() if as_of else None)
    written = write_digests(app.engine, context=Context(app.campaign, clock, app.settings))
    click.echo(f"已生成 {written} 份汇总 / wrote {written} digest(s); `dabiao dispatch` sends them")


def register(main: click.Group) -> None:
    """Add this module's commands to the `dabiao` group."""
    for command in (dispatch_cmd, outbox, mail, digest_cmd):
        main.add_command(command)
