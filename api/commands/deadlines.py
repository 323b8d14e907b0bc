"""`dabiao sweep`, `scheduler`, `escalations …`, `referrals …`, `inspections …`."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from pathlib import Path
from typing import Any

import click
from sqlmodel import Session

from states import Role
from workflow.context import Context
from workflow.models import ReferralStatus

REFERRAL_STATUS_CHOICE = click.Choice([s.value for s in ReferralStatus])
COUNT_LABELS = {
    "reminders": "提醒",
    "firm": "逾期·企业",
    "district": "升级·辖区",
    "center": "交办·保障中心",
    "city": "升级·市局",
    "overdue_notices": "逾期通知",
    "resolved": "已解除",
    "suggested": "建议移交（待辖区研判）",
    "withdrawn": "撤回移交",
}


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _counts(counts: dict[str, int]) -> str:
    return " · ".join(f"{COUNT_LABELS.get(k, k)} {n}" for k, n in counts.items())


def register(main: click.Group) -> None:
    """Add this module's commands to the `dabiao` group."""
    from api.commands.base import App, as_of_option, friendly_errors, pass_app
    from deadlines.escalations import RULE_LABELS, acknowledge_escalation, list_escalations
    from workflow.actors import Actor
    from workflow.engine import load_firm

    def day_of(value: dt.datetime | None) -> dt.date | None:
        return value.date() if value else None

    def acting(role: str, *, district: str | None, name: str | None) -> Actor:
        return Actor(name=name or "admin (command line)", role=Role(role), district_code=district)

    role_choice = click.Choice([r.value for r in Role])

    # ---- sweep and scheduler ------------------------------------------------------------------

    @main.command("sweep")
    @as_of_option
    @click.option("--full", is_flag=True, help="Look at every firm, not only today's steps and what changed.")
    @click.option("--json", "as_json", is_flag=True)
    @pass_app
    @friendly_errors
    def sweep_cmd(app: App, as_of: dt.datetime | None, full: bool, as_json: bool) -> None:
        """Apply every deadline rule as of today (or --as-of), catching up missed days in order."""
        from deadlines.sweep import sweep

        app.require_schema()
        clock = app.clock(day_of(as_of))
        through = day_of(as_of) or clock.now().astimezone(clock.tz).date()
        reports = sweep(
            app.engine, context=Context(app.campaign, clock, app.settings), through=through, again=True, full=full
        )
        if as_json:
            _echo_json([r.as_json() for r in reports])
            return
        for report in reports:
            again = f"，第 {report.runs} 次" if report.runs > 1 else ""
            again += "（全量）" if report.full else ""
            click.echo(f"{report.as_of} 扫描完成{again} / swept {report.as_of}: {report.written} new rows")
            for rule, counts in report.rules.items():
                if len(reports) == 1 or any(counts.values()):
                    label = RULE_LABELS.get(rule, rule)
                    click.echo(f"  {label} ({rule}): {_counts(counts)}")

    @main.command("scheduler")
    @pass_app
    @friendly_errors
    def scheduler_cmd(app: App) -> None:
        """Run the clock alone: daily sweep, outbox dispatch every few seconds, daily digest."""
        from deadlines.scheduler import run_blocking

        app.require_schema()
        s = app.settings
        click.echo(
            f"scheduler: sweep {s.sweep_time}, digest {s.digest_time} ({s.timezone}), "
            f"dispatch every {s.dispatch_interval_seconds}s — Ctrl-C stops"
        )
        with contextlib.suppress(KeyboardInterrupt, SystemExit):
            run_blocking(app.engine, campaign=app.campaign, settings=s)
        click.echo("scheduler stopped")

    # ---- escalations ----------------------------------------------------------------------------

    @main.group("escalations")
    def escalations() -> None:
        """Overdue cases climbing from the firm to its district bureau and the city bureau."""

    @escalations.command("list")
    @click.option("--district", default=None, help="District code or name.")
    @click.option("--status", type=click.Choice(["open", "acknowledged", "resolved"]), default=None)
    @click.option("--step", type=click.Choice(["firm", "district", "center", "city"]), default=None)
    @click.option("--rule", default=None)
    @click.option("--json", "as_json", is_flag=True)
    @pass_app
    @friendly_errors
    def escalations_list(
        app: App, district: str | None, status: str | None, step: str | None, rule: str | None, as_json: bool
    ) -> None:
        """List escalations (all districts, as the city bureau)."""
        app.require_schema()
        code = _district_code(app, district)
        with app.engine.connect() as conn:
            rows = list_escalations(
                conn,
                actor=acting("city_bureau", district=None, name=None),
                district=code,
                status=status,
                step=step,
                rule=rule,
            )
        if as_json:
            _echo_json(rows)
            return
        for r in rows:
            click.echo(
                f"#{r['id']:<6} {r['status']:<12} {r['step_label']:<8} {r['district_name']:<6} "
                f"{r['rule_label']}（{r['rule']}）截止 {r['deadline']} 逾期 {r['days_overdue']} 天  "
                f"{r['enterprise_name']} {r['uscc']}"
            )
        click.echo(f"共 {len(rows)} 条 / {len(rows)} escalation(s)")

    @escalations.command("ack")
    @click.argument("escalation_id", type=int)
    @click.option("--role", type=role_choice, default="city_bureau", show_default=True)
    @click.option("--district", default=None, help="The acting district bureau's district (code or name).")
    @click.option("--by", "name", default=None, help="Who acknowledges (for the record).")
    @as_of_option
    @pass_app
    @friendly_errors
    def escalations_ack(
        app: App, escalation_id: int, role: str, district: str | None, name: str | None, as_of: dt.datetime | None
    ) -> None:
        """Acknowledge an open escalation."""
        app.require_schema()
        with Session(app.engine) as session:
            acknowledge_escalation(
                session,
                escalation_id=escalation_id,
                actor=acting(role, district=_district_code(app, district), name=name),
                clock=app.clock(day_of(as_of)),
            )
        click.echo(f"督办事项 #{escalation_id} 已签收 / escalation #{escalation_id} acknowledged")

    # ---- referrals ------------------------------------------------------------------------------

    @main.group("referrals")
    def referrals() -> None:
        """Key-field firms with no hope of compliance, referred to the local government."""

    @referrals.command("list")
    @click.option("--district", default=None)
    @click.option("--status", type=REFERRAL_STATUS_CHOICE, default=None)
    @click.option("--json", "as_json", is_flag=True)
    @pass_app
    @friendly_errors
    def referrals_list(app: App, district: str | None, status: str | None, as_json: bool) -> None:
        """List referrals (as the city bureau)."""
        from deadlines.referrals import GROUNDS_LABELS, STATUS_LABELS, list_referrals

        app.require_schema()
        with app.engine.connect() as conn:
            rows = list_referrals(
                conn,
                actor=acting("city_bureau", district=None, name=None),
                campaign=app.campaign,
                district=_district_code(app, district),
                status=status,
            )
        if as_json:
            _echo_json([r.as_json() for r in rows])
            return
        for r in rows:
            click.echo(
                f"#{r.id:<5} {STATUS_LABELS[r.status]:<6} {r.district_name:<6} {GROUNDS_LABELS[r.grounds]:<10} "
                f"{r.enterprise_name} {r.uscc}  提出 {r.proposed_at:%Y-%m-%d}  "
                f"当前 {r.state_label}（自 {r.state_since:%Y-%m-%d}）"
            )
        click.echo(f"共 {len(rows)} 条 / {len(rows)} referral(s)")

    @referrals.command("suggestions")
    @click.option("--district", default=None)
    @click.option("--status", type=click.Choice(["open", "proposed", "lapsed"]), default="open", show_default=True)
    @click.option("--json", "as_json", is_flag=True)
    @pass_app
    @friendly_errors
    def referrals_suggestions(app: App, district: str | None, status: str, as_json: bool) -> None:
        """The sweep's candidates for referral: suggestions to the districts, not referrals."""
        from deadlines.referrals import GROUNDS_LABELS, list_suggestions

        app.require_schema()
        with app.engine.connect() as conn:
            rows = list_suggestions(
                conn,
                actor=acting("city_bureau", district=None, name=None),
                district=_district_code(app, district),
                status=status,
            )
        if as_json:
            _echo_json([r.as_json() for r in rows])
            return
        for r in rows:
            state = r.as_json()["state_label"]
            click.echo(
                f"#{r.id:<5} {r.district_code} {GROUNDS_LABELS[r.grounds]:<10} {r.enterprise_name} {r.uscc}  "
                f"当前 {state}（自 {r.state_since:%Y-%m-%d}）"
            )
        click.echo(f"共 {len(rows)} 条建议 / {len(rows)} suggestion(s)")

    @referrals.command("propose")
    @click.argument("credit_code")
    @click.option(
        "--grounds",
        type=click.Choice(["non_participating", "failed_review_twice", "major_hazard_overdue"]),
        required=True,
    )
    @click.option("--note", default=None)
    @click.option("--role", type=role_choice, default="district_bureau", show_default=True)
    @click.option("--district", default=None, help="Acting district (default: the firm's own).")
    @click.option("--by", "name", default=None)
    @as_of_option
    @pass_app
    @friendly_errors
    def referrals_propose(
        app: App,
        credit_code: str,
        grounds: str,
        note: str | None,
        role: str,
        district: str | None,
        name: str | None,
        as_of: dt.datetime | None,
    ) -> None:
        """A district bureau proposes one of its key-field firms for referral."""
        from deadlines.referrals import propose_referral

        app.require_schema()
        with app.engine.connect() as conn:
            firm = load_firm(conn, uscc=credit_code.strip().upper())
        actor = acting(role, district=_district_code(app, district) or firm.district_code, name=name)
        with Session(app.engine) as session:
            referral_id = propose_referral(
                session,
                enterprise_id=firm.id,
                grounds=grounds,
                actor=actor,
                context=Context(app.campaign, app.clock(day_of(as_of)), app.settings),
                note=note,
            )
        click.echo(f"已提出移交 #{referral_id} / referral #{referral_id} proposed: {firm.name}")

    def _decide(app: App, referral_id: int, *, confirm: bool, role: str, note: str | None, name: str | None,
                as_of: dt.datetime | None) -> None:  # fmt: skip
        from deadlines.referrals import take_referral_step

        app.require_schema()
        with Session(app.engine) as session:
            take_referral_step(
                session,
                referral_id,
                "confirm" if confirm else "decline",
                actor=acting(role, district=None, name=name),
                context=Context(app.campaign, app.clock(day_of(as_of)), app.settings),
                note=note,
            )

    @referrals.command("confirm")
    @click.argument("referral_id", type=int)
    @click.option("--note", default=None)
    @click.option("--role", type=role_choice, default="city_bureau", show_default=True)
    @click.option("--by", "name", default=None)
    @as_of_option
    @pass_app
    @friendly_errors
    def referrals_confirm(
        app: App, referral_id: int, note: str | None, role: str, name: str | None, as_of: dt.datetime | None
    ) -> None:
        """The city bureau confirms a referral; it goes to the local government."""
        _decide(app, referral_id, confirm=True, role=role, note=note, name=name, as_of=as_of)
        click.echo(f"移交 #{referral_id} 已确认，已通知属地政府 / referral #{referral_id} confirmed")

    @referrals.command("decline")
    @click.argument("referral_id", type=int)
    @click.option("--note", default=None)
    @click.option("--role", type=role_choice, default="city_bureau", show_default=True)
    @click.option("--by", "name", default=None)
    @as_of_option
    @pass_app
    @friendly_errors
    def referrals_decline(
        app: App, referral_id: int, note: str | None, role: str, name: str | None, as_of: dt.datetime | None
    ) -> None:
        """The city bureau declines a referral."""
        _decide(app, referral_id, confirm=False, role=role, note=note, name=name, as_of=as_of)
        click.echo(f"移交 #{referral_id} 未予确认 / referral #{referral_id} declined")

    @referrals.command("acknowledge")
    @click.argument("referral_id", type=int)
    @click.option("--role", type=role_choice, default="local_government", show_default=True)
    @click.option("--district", default=None, help="Acting local government's district (default: the referral's).")
    @click.option("--by", "name", default=None)
    @as_of_option
    @pass_app
    @friendly_errors
    def referrals_acknowledge(
        app: App, referral_id: int, role: str, district: str | None, name: str | None, as_of: dt.datetime | None
    ) -> None:
        """The local government acknowledges a confirmed referral."""
        from deadlines.referrals import referral_district, take_referral_step

        app.require_schema()
        code = _district_code(app, district)
        if code is None:
            with app.engine.connect() as conn:
                code = referral_district(conn, referral_id=referral_id)
        with Session(app.engine) as session:
            take_referral_step(
                session,
                referral_id,
                "acknowledge",
                actor=acting(role, district=code, name=name),
                context=Context(app.campaign, app.clock(day_of(as_of)), app.settings),
            )
        click.echo(f"移交 #{referral_id} 已签收 / referral #{referral_id} acknowledged")

    @referrals.command("export")
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help=".xlsx")
    @click.option("--district", default=None)
    @click.option("--status", type=REFERRAL_STATUS_CHOICE, default=None)
    @pass_app
    @friendly_errors
    def referrals_export(app: App, output: Path, district: str | None, status: str | None) -> None:
        """Write the referral list as XLSX (Chinese; a title row saying the filter, as of when, by whom)."""
        from api.pages.exports import district_filter
        from deadlines.export import COMMAND_LINE, Export, Filter, write_xlsx
        from deadlines.referrals import REFERRAL_COLUMNS, list_referrals, referral_cells
        from workflow import labels

        if output.suffix.lower() != ".xlsx":
            raise click.BadParameter("输出文件须为 .xlsx / the output must end in .xlsx", param_hint="-o")
        app.require_schema()
        code = _district_code(app, district)
        with app.engine.connect() as conn:
            rows = list_referrals(
                conn,
                actor=acting("city_bureau", district=None, name=None),
                campaign=app.campaign,
                district=code,
                status=status,
            )
        filters = [district_filter(app.campaign, code)] if code else []
        if status:
            label = labels.REFERRAL_STATUSES[status]
            filters.append(Filter(label.zh, label.en, status, "状态", "Status"))
        clock = app.clock(None)
        export = Export(
            what_zh="移交属地政府名单", what_en="Referrals to local governments", slug="referrals",
            as_of=clock.now().astimezone(clock.tz), by=COMMAND_LINE, filters=filters,
        )  # fmt: skip
        n = write_xlsx(
            output,
            export=export,
            columns=REFERRAL_COLUMNS,
            rows=(referral_cells(i, r) for i, r in enumerate(rows, 1)),
        )
        click.echo(f"已写入 {n} 条 / wrote {n} referral(s) to {output}")

    # ---- graded supervision ---------------------------------------------------------------------

    @main.group("inspections")
    def inspections() -> None:
        """Graded supervision: inspection plans for district bureaus."""

    @inspections.command("plan")
    @click.option("--district", required=True, help="District code or name.")
    @click.option("--month", required=True, help="YYYY-MM")
    @click.option("--json", "as_json", is_flag=True)
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help=".xlsx")
    @pass_app
    @friendly_errors
    def inspections_plan(app: App, district: str, month: str, as_json: bool, output: Path | None) -> None:
        """The firms a district bureau inspects in one month, strictest grade first."""
        from api.pages.exports import district_filter, month_filter
        from deadlines.export import COMMAND_LINE, Export, write_xlsx
        from deadlines.supervision import PLAN_COLUMNS, PLAN_HEADERS, inspection_plan, parse_month

        app.require_schema()
        first = parse_month(month)
        code = _district_code(app, district)
        assert code is not None
        if output is not None and output.suffix.lower() != ".xlsx":
            raise click.BadParameter("输出文件须为 .xlsx / the output must end in .xlsx", param_hint="-o")
        with app.engine.connect() as conn:
            lines = inspection_plan(conn, campaign=app.campaign, district=code, month=first)
            if output is not None:
                clock = app.clock(None)
                export = Export(
                    what_zh="检查计划", what_en="Inspection plan", slug="inspection-plan",
                    as_of=clock.now().astimezone(clock.tz), by=COMMAND_LINE,
                    filters=[district_filter(app.campaign, code), month_filter(first)],
                )  # fmt: skip
                n = write_xlsx(
                    output,
                    export=export,
                    columns=PLAN_COLUMNS,
                    rows=(line.cells(i, app.campaign) for i, line in enumerate(lines, 1)),
                )
                click.echo(f"已写入 {n} 家企业 / wrote {n} firm(s) to {output}")
            elif as_json:
                _echo_json({"district": code, "month": month, "firms": [line.as_json() for line in lines]})
            else:
                n = 0
                click.echo("  ".join(PLAN_HEADERS))
                for n, line in enumerate(lines, 1):
                    cells = line.cells(n, app.campaign)
                    click.echo("  ".join(str(c) for c in cells))
                click.echo(f"共 {n} 家 / {n} firm(s) to inspect in {month}")


def _district_code(app: Any, district: str | None) -> str | None:
    if district is None:
        return None
    found = app.campaign.district(district)
    if found is None:
        raise click.BadParameter(f"未知辖区 / unknown district: {district}", param_hint="--district")
    return str(found.code)
