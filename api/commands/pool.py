"""`dabiao pool …`: the evaluator pool's review teams from the command line, through the same service as the
API and the pages (`workflow.pool`): server draws and their check, redraws, recusals, conflicts,
disqualification and misconduct reports."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click
from sqlmodel import Session

from api.commands.base import echo_json
from states import Role

if TYPE_CHECKING:
    from api.commands.base import App

ADMIN = "admin (command line)"


def register(main: click.Group) -> None:
    """Add the `pool` group to the `dabiao` group."""
    from api.commands.base import as_of_option, friendly_errors, pass_app
    from workflow import pool
    from workflow.actors import Actor
    from workflow.engine import load_firm
    from workflow.queries import application_in_scope

    def day(value: dt.datetime | None) -> dt.date | None:
        return value.date() if value else None

    def organiser(app: App, application_id: int) -> Actor:
        """An administrator acting as the application's organiser (the center or the district bureau)."""
        with app.engine.connect() as conn:
            keeper = Actor(name=ADMIN, role=Role.city_bureau)
            found = application_in_scope(conn, actor=keeper, application_id=application_id)
            firm = load_firm(conn, enterprise_id=found.enterprise_id)
        return Actor.administrator(Role.support_center if firm.key_field else Role.district_bureau, firm, name=ADMIN)

    keeper = Actor(name=ADMIN, role=Role.support_center)

    @main.group("pool")
    def pool_group() -> None:
        """The evaluator pool (评定人员库) and review teams."""

    @pool_group.command("verify-draw")
    @click.argument("application_id", type=int)
    @click.option("--json", "as_json", is_flag=True)
    @pass_app
    @friendly_errors
    def verify_draw(app: App, application_id: int, as_json: bool) -> None:
        """Redo every draw of APPLICATION from its recorded candidates and seed; exit 1 if one differs."""
        app.require_schema()
        with app.engine.connect() as conn:
            report = pool.verify_draws(conn, application_id=application_id)
        if as_json:
            echo_json(report)
        else:
            if not report["draws"]:
                click.echo(f"申请 {application_id} 没有抽取记录 / application {application_id} has no draw")
            for d in report["draws"]:
                click.echo(f"抽取 #{d['draw_id']}（{d['kind']}）{d['drawn_at']} by {d['drawn_by']}")
                if d["reason"]:
                    click.echo(f"  理由 / reason: {d['reason']}")
                click.echo(f"  候选人 / candidates: {', '.join(map(str, d['candidates']))}")
                click.echo(f"  随机种子 / seed: {d['seed']}    人数 / size: {d['size']}")
                click.echo(f"  记录的评审组 / recorded team: {', '.join(map(str, d['team']))}")
                click.echo(f"  复算的评审组 / redone team:   {', '.join(map(str, d['redone']))}")
                click.echo(f"  指派的人员 / assigned:        {', '.join(map(str, d['assigned']))}")
                click.echo(f"  {'一致 / matches' if d['matches'] else '不一致 / DOES NOT MATCH'}")
        if not report["matches"]:
            raise click.ClickException(
                f"申请 {application_id} 的抽取无法复核一致 / the draws of application {application_id} do not match"
            )

    @pool_group.command("draw")
    @click.argument("application_id", type=int)
    @as_of_option
    @pass_app
    @friendly_errors
    def draw_cmd(app: App, application_id: int, as_of: dt.datetime | None) -> None:
        """The server draws the review team of APPLICATION (no seed can be given)."""
        app.require_schema()
        with Session(app.engine) as session:
            team = pool.form_team(
                session,
                application_id=application_id,
                actor=organiser(app, application_id),
                context=app.context(day(as_of)),
            )
        echo_json(team)

    @pool_group.command("redraw")
    @click.argument("application_id", type=int)
    @click.option("--reason", required=True)
    @as_of_option
    @pass_app
    @friendly_errors
    def redraw_cmd(app: App, application_id: int, reason: str, as_of: dt.datetime | None) -> None:
        """Replace the whole team of APPLICATION by a new server draw (audited, with a reason)."""
        app.require_schema()
        with Session(app.engine) as session:
            team = pool.redraw_team(
                session,
                application_id=application_id,
                reason=reason,
                actor=organiser(app, application_id),
                context=app.context(day(as_of)),
            )
        echo_json(team)

    @pool_group.command("recuse")
    @click.argument("application_id", type=int)
    @click.argument("reviewer_id", type=int)
    @click.option("--reason", required=True)
    @as_of_option
    @pass_app
    @friendly_errors
    def recuse_cmd(app: App, application_id: int, reviewer_id: int, reason: str, as_of: dt.datetime | None) -> None:
        """Record that REVIEWER_ID steps aside (申请回避) from APPLICATION's team: a replacement is drawn."""
        app.require_schema()
        with Session(app.engine) as session:
            done = pool.recuse(
                session,
                application_id=application_id,
                reviewer_id=reviewer_id,
                reason=reason,
                actor=organiser(app, application_id),
                clock=app.clock(day(as_of)),
            )
        echo_json(done)

    @pool_group.command("conflict")
    @click.argument("reviewer_id", type=int)
    @click.argument("credit_code")
    @click.option("--kind", type=click.Choice(["consultancy", "employment"]), required=True)
    @as_of_option
    @pass_app
    @friendly_errors
    def conflict_cmd(app: App, reviewer_id: int, credit_code: str, kind: str, as_of: dt.datetime | None) -> None:
        """Record a consultancy for, or employment at, the firm: the reviewer leaves its open teams."""
        app.require_schema()
        with app.engine.connect() as conn:
            firm = load_firm(conn, uscc=credit_code.strip().upper())
        with Session(app.engine) as session:
            done = pool.declare_conflict(
                session,
                reviewer_id=reviewer_id,
                enterprise_id=firm.id,
                kind=kind,
                actor=keeper,
                clock=app.clock(day(as_of)),
            )
        echo_json(done)

    @pool_group.command("disqualify")
    @click.argument("reviewer_id", type=int)
    @click.option("--reason", required=True)
    @as_of_option
    @pass_app
    @friendly_errors
    def disqualify_cmd(app: App, reviewer_id: int, reason: str, as_of: dt.datetime | None) -> None:
        """Disqualify a reviewer (弄虚作假): out of the pool, open teams redrawn, access ended."""
        app.require_schema()
        with Session(app.engine) as session:
            done = pool.disqualify(
                session,
                reviewer_id=reviewer_id,
                reason=reason,
                actor=keeper,
                context=app.context(day(as_of)),
            )
        echo_json(done)

    @pool_group.command("report")
    @click.argument("reviewer_id", type=int)
    @click.argument("credit_code")
    @click.option("--what", "description", required=True, help="What happened.")
    @click.option("--application", "application_id", type=int, default=None)
    @as_of_option
    @pass_app
    @friendly_errors
    def report_cmd(
        app: App,
        reviewer_id: int,
        credit_code: str,
        description: str,
        application_id: int | None,
        as_of: dt.datetime | None,
    ) -> None:
        """Report a suspected misconduct of REVIEWER_ID at the firm, as its district bureau."""
        app.require_schema()
        with app.engine.connect() as conn:
            firm = load_firm(conn, uscc=credit_code.strip().upper())
        with Session(app.engine) as session:
            done = pool.report_misconduct(
                session,
                reviewer_id=reviewer_id,
                enterprise_id=firm.id,
                application_id=application_id,
                description=description,
                actor=Actor.administrator(Role.district_bureau, firm, name=ADMIN),
                clock=app.clock(day(as_of)),
            )
        echo_json(done)

    @pool_group.command("reports")
    @click.option("--status", type=click.Choice(["open", "dismissed", "disqualified"]), default=None)
    @pass_app
    @friendly_errors
    def reports_cmd(app: App, status: str | None) -> None:
        """Misconduct reports, for the support center."""
        app.require_schema()
        with app.engine.connect() as conn:
            echo_json(pool.list_reports(conn, actor=keeper, status=status))

    @pool_group.command("decide")
    @click.argument("report_id", type=int)
    @click.option("--decision", type=click.Choice(["dismiss", "disqualify"]), required=True)
    @click.option("--note", required=True)
    @as_of_option
    @pass_app
    @friendly_errors
    def decide_cmd(app: App, report_id: int, decision: str, note: str, as_of: dt.datetime | None) -> None:
        """Dismiss a misconduct report with a note, or disqualify the reviewer."""
        app.require_schema()
        with Session(app.engine) as session:
            done = pool.decide_report(
                session, report_id=report_id, decision=decision, note=note, actor=keeper, clock=app.clock(day(as_of))
            )
        echo_json(done)
