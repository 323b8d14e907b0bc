"""Accounts: `users create` and `users list`."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import click
import sqlalchemy as sa
from sqlmodel import Session

from api.commands.base import App, echo_json, friendly_errors, local_date, pass_app
from states import Role
from workflow.engine import load_firm


@click.group()
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
                trained_on=local_date(trained_on),
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
        echo_json(items)
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
