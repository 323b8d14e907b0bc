"""The `dabiao` command line: set up the database, load the directory, drive and read firms."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property, wraps
from pathlib import Path
from typing import Any, TypeVar

import click
import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import Session

from api.commands import campaign as campaign_commands
from api.commands import certificates as certificate_commands
from api.commands import deadlines as deadline_commands
from api.commands import inspections as inspection_commands
from api.commands import notifications as notification_commands
from api.commands import pool as pool_commands
from states import TRIGGERS, Role, WorkflowError
from states.diagram import markdown
from workflow.audit import verify_chain
from workflow.campaign import Campaign, CampaignInvalid, load_campaign, sync_districts
from workflow.clock import Clock, clock_for
from workflow.db import current_revision, make_engine, migrate
from workflow.engine import Actor, allowed_triggers, fire, load_firm
from workflow.queries import firm_detail
from workflow.settings import Settings
from workflow.tables import DISTRICTS, ENTERPRISES

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class App:
    settings: Settings

    @cached_property
    def campaign(self) -> Campaign:
        return load_campaign(self.settings.campaign_file)

    @cached_property
    def engine(self) -> sa.Engine:
        url = self.settings.database_url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return make_engine(url)

    def clock(self, as_of: dt.date | None) -> Clock:
        return clock_for(as_of, self.settings.tz)

    def require_schema(self) -> None:
        if current_revision(self.engine) is None:
            raise click.ClickException(
                "数据库尚未初始化，请先运行 `dabiao init` / the database is empty: run `dabiao init` first"
            )


def friendly_errors(func: F) -> F:
    """Refusals become one readable line and exit code 1, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (WorkflowError, CampaignInvalid) as exc:
            code = getattr(exc, "code", "campaign_invalid")
            raise click.ClickException(f"[{code}] {exc}") from None

    return wrapper  # type: ignore[return-value]


def as_of_option(func: F) -> F:
    return click.option(
        "--as-of",
        type=click.DateTime(formats=["%Y-%m-%d"]),
        default=None,
        help="Act as of this local date (YYYY-MM-DD) instead of today.",
    )(func)


def _date(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value else None


def _json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--database-url", envvar="DABIAO_DATABASE_URL", default=None, help="Default sqlite:///./dabiao.db")
@click.option(
    "--campaign",
    "campaign_file",
    envvar="DABIAO_CAMPAIGN_FILE",
    default=None,
    type=click.Path(path_type=Path),
)
@click.pass_context
def main(ctx: click.Context, database_url: str | None, campaign_file: Path | None) -> None:
    """达标 Dabiao — the safety-production compliance campaign engine."""
    overrides: dict[str, Any] = {}
    if database_url:
        overrides["database_url"] = database_url
    if campaign_file:
        overrides["campaign_file"] = campaign_file
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"DABIAO_{str(e['loc'][0]).upper()}: {e['msg']}" for e in exc.errors())
        raise click.ClickException(f"设置有误 / bad settings: {problems}") from None
    ctx.obj = App(settings)


pass_app = click.make_pass_decorator(App)


@main.command()
@pass_app
@friendly_errors
def init(app: App) -> None:
    """Create or upgrade the database (Alembic migrations) and load the campaign's districts."""
    campaign = app.campaign
    migrate(app.engine)
    with app.engine.begin() as conn:
        sync_districts(conn, campaign)
    click.echo(
        f"数据库已就绪 / database ready: {app.engine.url.render_as_string(hide_password=True)} "
        f"(schema {current_revision(app.engine)}, campaign {campaign.campaign.id}, {len(campaign.districts)} districts)"
    )


@main.command("import-directory")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@as_of_option
@pass_app
@friendly_errors
def import_directory_cmd(app: App, file: Path, as_of: dt.datetime | None) -> None:
    """Load the industrial enterprise directory (CSV or XLSX); a file with any bad row is refused whole."""
    from workflow.directory import ImportRejected, import_directory

    app.require_schema()
    with _progress(enabled=sys.stderr.isatty()) as progress:
        try:
            report = import_directory(
                app.engine, file, campaign=app.campaign, clock=app.clock(_date(as_of)), progress=progress
            )
        except ImportRejected as exc:
            click.echo(
                f"文件未导入，共 {len(exc.problems)} 处问题 / file refused, {len(exc.problems)} problem(s):",
                err=True,
            )
            for problem in exc.problems:
                click.echo(f"  {problem}", err=True)
            raise SystemExit(1) from None
    click.echo(
        f"已导入 {report.rows} 行：新增 {report.inserted}，更新 {report.updated}，未变 {report.unchanged} / "
        f"imported {report.rows} rows: {report.inserted} new, {report.updated} updated, {report.unchanged} unchanged"
    )


@contextmanager
def _progress(*, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on a terminal (stderr), silence in scripts and logs."""
    if not enabled:
        yield None
        return
    click.echo("正在检查文件… / checking the file…", err=True)
    bar: Any = None
    shown = 0

    def update(done: int, total: int) -> None:
        nonlocal bar, shown
        if bar is None:
            bar = click.progressbar(length=total, label="写入 / writing", file=sys.stderr, show_pos=True)
            bar.__enter__()
        bar.update(done - shown)
        shown = done

    try:
        yield update
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


@main.command("generate-directory")
@click.option("--count", type=click.IntRange(1, 10_000_000), required=True, help="Number of firms.")
@click.option("--seed", type=int, default=2022, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help=".csv or .xlsx")
@pass_app
@friendly_errors
def generate_directory_cmd(app: App, count: int, seed: int, output: Path) -> None:
    """Write a realistic synthetic Changzhou directory (valid credit codes, real district mix)."""
    from workflow.generator import write_directory

    if output.suffix.lower() not in (".csv", ".xlsx"):
        raise click.BadParameter("输出文件须为 .csv 或 .xlsx / the output must end in .csv or .xlsx", param_hint="-o")
    write_directory(output, count=count, seed=seed, campaign=app.campaign)
    click.echo(f"已生成 {count} 家企业 / wrote {count} firms to {output}")


@main.command("fire")
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
            campaign=app.campaign,
            clock=app.clock(_date(as_of)),
            payload=payload,
            expected_version=expect_version,
        )
    if as_json:
        _json(
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
        campaign=campaign,
        clock=clock,
    )
    view["allowed_triggers"] = {
        role.value: names
        for role in Role
        if (names := allowed_triggers(conn, firm=firm, role=role, campaign=campaign, clock=clock))
    }
    view["events"] = [item for item in view["history"] if item["kind"] == "event"]
    return view


@main.command()
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
        view = firm_view(conn, firm, campaign=app.campaign, clock=app.clock(_date(as_of)))
    if as_json:
        _json(view)
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


@main.command()
@click.option("--json", "as_json", is_flag=True)
@pass_app
@friendly_errors
def stats(app: App, as_json: bool) -> None:
    """Counts of firms per state × district × field."""
    app.require_schema()
    with app.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                ENTERPRISES.c.district_code,
                DISTRICTS.c.name,
                ENTERPRISES.c.key_field,
                ENTERPRISES.c.state,
                sa.func.count().label("n"),
            )
            .join(DISTRICTS, DISTRICTS.c.code == ENTERPRISES.c.district_code)
            .group_by(ENTERPRISES.c.district_code, DISTRICTS.c.name, ENTERPRISES.c.key_field, ENTERPRISES.c.state)
            .order_by(ENTERPRISES.c.district_code, ENTERPRISES.c.key_field.desc(), ENTERPRISES.c.state)
        ).all()
    cells = [
        {
            "district": r.district_code,
            "district_name": r.name,
            "key_field": bool(r.key_field),
            "state": r.state,
            "count": int(r.n),
        }
        for r in rows
    ]
    if as_json:
        _json({"total": sum(c["count"] for c in cells), "cells": cells})
        return
    for c in cells:
        field = "重点" if c["key_field"] else "非重点"
        click.echo(f"{c['district_name']:<8} {field:<4} {c['state']:<15} {c['count']:>8}")
    click.echo(f"合计 / total: {sum(c['count'] for c in cells)}")


@main.group()
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


@main.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("workflow_diagram.md"),
    show_default=True,
)
def diagram(output: Path) -> None:
    """Write the state machine as Markdown (Mermaid stateDiagram-v2 and a table of triggers)."""
    output.write_text(markdown(), encoding="utf-8")
    click.echo(f"已写入 / wrote {output}")


@main.command()
@click.option("--firms", type=click.IntRange(50, 1_000_000), default=3000, envvar="DEMO_FIRMS", show_default=True)
@click.option("--until", type=click.DateTime(formats=["%Y-%m-%d"]), default="2023-06-30", show_default=True)
@click.option("--seed", type=int, default=2022, show_default=True)
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path), default=Path("demo"), show_default=True)
@click.option("--serve/--no-serve", default=True, show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@pass_app
@friendly_errors
def demo(app: App, firms: int, until: dt.datetime, seed: int, folder: Path, serve: bool, port: int) -> None:
    """Build a demo campaign from nothing (a synthetic Changzhou directory, the 2022–2023 campaign replayed
    up to --until with mail written to the .eml folder) and serve it at http://127.0.0.1:PORT."""
    import shutil
    import time

    from api.demo import PASSWORD, build_demo, write_mail

    started = time.perf_counter()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    url = f"sqlite:///{folder / 'dabiao.db'}"
    settings = app.settings.model_copy(
        update={
            "database_url": url,
            "mail_dir": folder / "mail",
            "data_dir": folder / "data",
            "smtp_host": None,
            "cookie_secure": False,  # the demo serves plain http on 127.0.0.1
        }
    )
    logins = build_demo(
        url=url, settings=settings, campaign=app.campaign, firms=firms, until=until.date(), seed=seed, say=click.echo
    )
    click.echo(f"演示数据已就绪 / demo ready in {time.perf_counter() - started:.0f} s: {url}")
    click.echo(f"登录 / sign in at http://127.0.0.1:{port}  — password for every account: {PASSWORD}")
    for role, username, note in logins.rows:
        click.echo(f"  {username:<12} {role}  — {note}")

    def mail() -> None:
        sent, no_recipient = write_mail(url=url, settings=settings, campaign=app.campaign, until=until.date())
        click.echo(f"邮件已写入 / {sent} messages written to {settings.mail_dir}/ (open them with any mail program)")
        if no_recipient:
            click.echo(f"无收件地址、未写入 / {no_recipient} messages had no recipient address and were not written")

    if not serve:
        mail()
        return
    import threading

    import uvicorn

    from api.app import create_app
    from workflow.clock import FixedClock

    # the demo stands on its last replayed day, so deadlines and dashboards read as of that date
    web = create_app(settings=settings, campaign=app.campaign, clock=FixedClock.on(until.date(), tz=settings.tz))
    click.echo(f"正在后台写入邮件 / writing the campaign's mail to {settings.mail_dir}/ in the background …")
    threading.Thread(target=mail, name="demo-mail", daemon=True).start()
    uvicorn.run(web, host="127.0.0.1", port=port, log_level="warning", **_uvicorn_options(settings))


# Command groups of the later packages, registered here and nowhere else.
notification_commands.register(main)
deadline_commands.register(main)
pool_commands.register(main)
certificate_commands.register(main)
inspection_commands.register(main)
campaign_commands.register(main)


@main.group()
def users() -> None:
    """Accounts: each with a role and a scope (district, firm)."""


@users.command("create")
@click.option("--username", required=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--name", "display_name", default=None, help="Shown name (default: the username).")
@click.option("--district", default=None, help="District name or code (district bureaus, local governments).")
@click.option("--enterprise", "credit_code", default=None, help="The firm's credit code (enterprise accounts).")
@click.option("--email", default=None)
@click.option("--lang", type=click.Choice(["zh-CN", "en"]), default="zh-CN", show_default=True)
@click.option("--organisation", default=None, help="Reviewers: their organisation.")
@click.option("--trained-on", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="Reviewers: training date.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_app
@friendly_errors
def users_create(
    app: App,
    username: str,
    role: str,
    display_name: str | None,
    district: str | None,
    credit_code: str | None,
    email: str | None,
    lang: str,
    organisation: str | None,
    trained_on: dt.datetime | None,
    password_stdin: bool,
) -> None:
    """Create an account (a reviewer also joins the evaluator pool)."""
    from workflow.accounts import NewUser, create_user

    app.require_schema()
    district_code = None
    if district is not None:
        found = app.campaign.district(district)
        if found is None:
            raise click.BadParameter(f"未知辖区 / unknown district: {district}", param_hint="--district")
        district_code = found.code
    enterprise_id = None
    if credit_code is not None:
        with app.engine.connect() as conn:
            enterprise_id = load_firm(conn, uscc=credit_code.strip().upper()).id
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("密码 / password", hide_input=True, confirmation_prompt=True)
    with Session(app.engine) as session:
        user_id = create_user(
            session,
            new=NewUser(
                username=username,
                password=password,
                role=Role(role),
                display_name=display_name or username,
                district_code=district_code,
                enterprise_id=enterprise_id,
                email=email,
                lang=lang,
                organisation=organisation,
                trained_on=_date(trained_on),
            ),
            clock=app.clock(None),
        )
    click.echo(f"已创建账号 / created user {username} (id {user_id}, {role})")


@users.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@friendly_errors
def users_list(app: App, as_json: bool) -> None:
    """All accounts with role and scope."""
    from workflow.tables import USERS

    app.require_schema()
    with app.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                USERS.c.id,
                USERS.c.username,
                USERS.c.display_name,
                USERS.c.role,
                USERS.c.district_code,
                USERS.c.enterprise_id,
                USERS.c.active,
            ).order_by(USERS.c.id)
        ).all()
    items = [r._asdict() for r in rows]
    if as_json:
        _json(items)
        return
    for u in items:
        scope = u["district_code"] or (f"firm {u['enterprise_id']}" if u["enterprise_id"] else "")
        click.echo(f"{u['id']:>5} {u['username']:<24} {u['role']:<17} {scope}")


def _account_command(name: str, doc: str) -> Any:
    @users.command(name, help=doc)
    @click.argument("username")
    @click.option("--password-stdin", is_flag=True, help="reset-password: read the new password from standard input.")
    @pass_app
    @friendly_errors
    def command(app: App, username: str, password_stdin: bool) -> None:
        from workflow.accounts import reset_password, revoke_sessions, set_active

        app.require_schema()
        with Session(app.engine) as session:
            if name in ("disable", "enable"):
                change = set_active(session, username=username, active=name == "enable", clock=app.clock(None))
            elif name == "reset-password":
                if password_stdin:
                    password = sys.stdin.readline().rstrip("\n")
                else:
                    password = click.prompt("新密码 / new password", hide_input=True, confirmation_prompt=True)
                change = reset_password(session, username=username, password=password, clock=app.clock(None))
            else:
                change = revoke_sessions(session, username=username, clock=app.clock(None))
        state = "启用 / enabled" if change.active else "停用 / disabled"
        click.echo(f"{change.username}: {state}; {change.revoked} 个令牌或会话已撤销 / tokens or sessions revoked")

    return command


_account_command("disable", "Switch an account off: it cannot sign in; every token and session it has dies now.")
_account_command("enable", "Switch an account back on.")
_account_command("reset-password", "Set a new password (checked like a new one); every session of the account dies.")
_account_command("revoke-sessions", "Sign an account out everywhere: revoke every token and page session it has.")


def _uvicorn_options(settings: Any) -> dict[str, Any]:
    """No `server` header; X-Forwarded-For believed only from DABIAO_TRUSTED_PROXIES (uvicorn would trust
    127.0.0.1 by default)."""
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    return {"server_header": False, "proxy_headers": bool(proxies), "forwarded_allow_ips": proxies or None}


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="PostgreSQL only.")
@click.option(
    "--scheduler/--no-scheduler",
    "with_scheduler",
    default=None,
    help="Run the scheduler in this process (default: yes on SQLite; on PostgreSQL run `dabiao scheduler`).",
)
@pass_app
@friendly_errors
def serve(app: App, host: str, port: int, workers: int, with_scheduler: bool | None) -> None:
    """Serve the API and pages with uvicorn; on SQLite the scheduler runs in the same process."""
    import os

    import uvicorn

    app.require_schema()
    sqlite = app.settings.database_url.startswith("sqlite")
    if sqlite and workers > 1:
        raise click.BadParameter("SQLite 只支持单进程 / SQLite serves from one process", param_hint="--workers")
    if with_scheduler is None:
        with_scheduler = sqlite
    if workers > 1:
        if with_scheduler:
            raise click.BadParameter(
                "多进程时请另行运行 `dabiao scheduler` / with several workers run `dabiao scheduler` apart",
                param_hint="--scheduler",
            )
        os.environ["DABIAO_DATABASE_URL"] = app.settings.database_url
        os.environ["DABIAO_CAMPAIGN_FILE"] = str(app.settings.campaign_file)
        uvicorn.run(
            "api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
            **_uvicorn_options(app.settings),
        )
        return
    from api.app import create_app

    web = create_app(settings=app.settings, campaign=app.campaign, engine=app.engine)
    if not with_scheduler:
        uvicorn.run(web, host=host, port=port, log_level="info", **_uvicorn_options(app.settings))
        return
    from deadlines.scheduler import start_background

    scheduler, jobs = start_background(app.engine, campaign=app.campaign, settings=app.settings)
    web.state.context.scheduler_running = lambda: bool(scheduler.running)
    try:
        uvicorn.run(web, host=host, port=port, log_level="info", **_uvicorn_options(app.settings))
    finally:
        scheduler.shutdown(wait=False)
        jobs.leadership.release()
