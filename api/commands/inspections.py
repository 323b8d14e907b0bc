"""`dabiao inspections record|worklist|report|due`, `dabiao trainings record|list` and `dabiao codes show|sheet`:
supervision carried out, through the same services as the API and the pages."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from sqlmodel import Session

from api.commands.base import echo_json, refusal
from deadlines.inspections import (
    KINDS,
    REPORT_COLUMNS,
    REPORT_HEADERS,
    STATUS_LABELS,
    Finding,
    more_inspections_due,
    plan_report,
    plan_worklist,
    record_inspection,
)
from deadlines.supervision import parse_month
from states import Role, WorkflowError
from workflow.actors import Actor
from workflow.clock import today
from workflow.engine import load_firm
from workflow.safety_code import code_key, code_url, district_firms, district_sheet_pdf, firm_code, qr_png
from workflow.trainings import KINDS as TRAINING_KINDS
from workflow.trainings import list_trainings, record_training, training_reach

if TYPE_CHECKING:
    from api.commands.base import App

CLI_ACTOR = "admin (command line)"
as_of_option = click.option(
    "--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="Act as of this local date."
)


def _firm(app: App, firm: str) -> Any:
    with app.engine.connect() as conn:
        text = firm.strip().upper()
        return load_firm(conn, enterprise_id=int(text)) if text.isdigit() else load_firm(conn, uscc=text)


def _district(app: App, district: str) -> str:
    found = app.campaign.district(district)
    if found is None:
        raise click.BadParameter(f"未知辖区 / unknown district: {district}", param_hint="--district")
    return str(found.code)


def _bureau(code: str | None, by: str | None) -> Actor:
    if code is None:
        return Actor(name=by or CLI_ACTOR, role=Role.city_bureau)
    return Actor(name=by or CLI_ACTOR, role=Role.district_bureau, district_code=code)


def register(main: click.Group) -> None:
    """Add this module's commands to the `dabiao` group (after the `inspections` group exists)."""
    from api.commands.base import pass_app

    inspections = main.commands["inspections"]
    assert isinstance(inspections, click.Group)

    @inspections.command("record")
    @click.argument("firm")
    @click.option(
        "--kind", type=click.Choice(KINDS), required=True, help="onsite 线下检查 / online 线上巡查 / guidance"
    )
    @click.option("--date", "held_on", type=click.DateTime(formats=["%Y-%m-%d"]), required=True)
    @click.option("--inspector", "inspectors", multiple=True, help="Repeat: at least two on site.")
    @click.option("--item", "items", multiple=True, help="Code of a creation-outline item checked (repeat).")
    @click.option("--finding", "findings", multiple=True, help="A finding: raised as a hazard of the firm (repeat).")
    @click.option("--major-finding", "major", multiple=True, help="A major finding (重大隐患) (repeat).")
    @click.option("--summary", default=None)
    @click.option("--penalty", default=None, help="The penalty decision (处罚决定).")
    @click.option("--legal-basis", default=None, help="Its legal basis, as free text (法律依据).")
    @click.option("--by", default=None, help="Name of the recording officer.")
    @as_of_option
    @click.option("--json", "as_json", is_flag=True)
    @pass_app
    def record_cmd(
        app: App,
        firm: str,
        kind: str,
        held_on: dt.datetime,
        inspectors: tuple[str, ...],
        items: tuple[str, ...],
        findings: tuple[str, ...],
        major: tuple[str, ...],
        summary: str | None,
        penalty: str | None,
        legal_basis: str | None,
        by: str | None,
        as_of: dt.datetime | None,
        as_json: bool,
    ) -> None:
        """Record an inspection, patrol or guidance visit of FIRM (USCC or id) as its district bureau."""
        app.require_schema()
        try:
            row = _firm(app, firm)
            with Session(app.engine) as session:
                result = record_inspection(
                    session,
                    enterprise_id=row.id,
                    kind=kind,
                    held_on=held_on.date(),
                    inspectors=inspectors,
                    items_checked=items,
                    findings=[Finding(f) for f in findings] + [Finding(f, "major") for f in major],
                    summary=summary,
                    penalty_decision=penalty,
                    legal_basis=legal_basis,
                    actor=_bureau(row.district_code, by),
                    campaign=app.campaign,
                    clock=app.clock(as_of.date() if as_of else None),
                )
        except WorkflowError as exc:
            raise refusal(exc) from None
        if as_json:
            echo_json(result)
            return
        planned = f"，计入{result['plan_month'][:7]}检查计划" if result["plan_month"] else "（计划外）"
        click.echo(
            f"已记录检查 #{result['inspection_id']}{planned}，提出隐患 {len(result['hazard_ids'])} 项 / "
            f"inspection #{result['inspection_id']} recorded, {len(result['hazard_ids'])} finding(s) raised"
        )

    @inspections.command("worklist")
    @click.option("--district", required=True)
    @click.option("--month", required=True, help="YYYY-MM")
    @click.option("--status", type=click.Choice(tuple(STATUS_LABELS)), default=None)
    @as_of_option
    @click.option("--json", "as_json", is_flag=True)
    @pass_app
    def worklist_cmd(
        app: App, district: str, month: str, status: str | None, as_of: dt.datetime | None, as_json: bool
    ) -> None:
        """The month's plan as a worklist: done (when, by whom), planned, or overdue."""
        app.require_schema()
        code = _district(app, district)
        try:
            with app.engine.connect() as conn:
                items = [
                    i
                    for i in plan_worklist(
                        conn,
                        campaign=app.campaign,
                        district=code,
                        month=parse_month(month),
                        actor=_bureau(code, None),
                        clock=app.clock(as_of.date() if as_of else None),
                    )
                    if status is None or i.status == status
                ]
        except WorkflowError as exc:
            raise refusal(exc) from None
        if as_json:
            echo_json({"district": code, "month": month, "items": [i.as_json() for i in items]})
            return
        for i in items:
            who = f"  {i.held_on} {'、'.join(i.inspectors)}" if i.status == "done" else ""
            click.echo(f"{STATUS_LABELS[i.status][0]}  {i.line.uscc}  {i.line.name}  {i.line.grade}{who}")
        done = sum(i.status == "done" for i in items)
        click.echo(f"共 {len(items)} 家，已完成 {done} 家 / {len(items)} firm(s), {done} done")

    @inspections.command("report")
    @click.option("--month", required=True, help="YYYY-MM")
    @click.option("--district", default=None, help="One district (default: the whole city).")
    @as_of_option
    @click.option("--json", "as_json", is_flag=True)
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help=".xlsx")
    @pass_app
    def report_cmd(
        app: App, month: str, district: str | None, as_of: dt.datetime | None, as_json: bool, output: Path | None
    ) -> None:
        """Planned against done for a month, per district and grade (XLSX with -o)."""
        from api.pages.exports import district_filter, month_filter
        from deadlines.export import COMMAND_LINE, Export, write_xlsx

        app.require_schema()
        if output is not None and output.suffix.lower() != ".xlsx":
            raise click.BadParameter("输出文件须为 .xlsx / the output must end in .xlsx", param_hint="-o")
        code = _district(app, district) if district else None
        try:
            with app.engine.connect() as conn:
                report = plan_report(
                    conn,
                    campaign=app.campaign,
                    month=parse_month(month),
                    actor=_bureau(None, None),
                    clock=app.clock(as_of.date() if as_of else None),
                    district=code,
                )
        except WorkflowError as exc:
            raise refusal(exc) from None
        if output is not None:
            clock = app.clock(as_of.date() if as_of else None)
            first = parse_month(month)
            filters = [district_filter(app.campaign, code), month_filter(first)] if code else [month_filter(first)]
            export = Export(
                what_zh="检查计划完成情况", what_en="Inspections planned and done", slug="inspections",
                as_of=clock.now().astimezone(clock.tz), by=COMMAND_LINE, filters=filters,
            )  # fmt: skip
            write_xlsx(output, export=export, columns=REPORT_COLUMNS, rows=report.sheet_rows(app.campaign))
            click.echo(f"已写入 / wrote {output}")
        elif as_json:
            echo_json(report.as_json())
        else:
            click.echo("  ".join(REPORT_HEADERS))
            for cells in report.cells():
                click.echo("  ".join(str(c) for c in cells))
            total = report.totals()
            click.echo(
                f"合计：计划 {total.planned}，完成 {total.done}（{_pct(total.share)}），逾期 {total.overdue} / "
                f"total: {total.planned} planned, {total.done} done, {total.overdue} overdue"
            )

    @inspections.command("due")
    @click.option("--district", required=True)
    @as_of_option
    @click.option("--json", "as_json", is_flag=True)
    @pass_app
    def due_cmd(app: App, district: str, as_of: dt.datetime | None, as_json: bool) -> None:
        """Firms graded for more inspections that were not inspected within their period."""
        app.require_schema()
        code = _district(app, district)
        with app.engine.connect() as conn:
            rows = more_inspections_due(
                conn,
                campaign=app.campaign,
                district=code,
                actor=_bureau(code, None),
                clock=app.clock(as_of.date() if as_of else None),
                limit=100_000,
            )
        if as_json:
            echo_json(rows)
            return
        for r in rows:
            click.echo(f"{r['uscc']}  {r['name']}  {r['grade_label']}  上次检查 {r['last_inspected'] or '无'}")
        click.echo(f"共 {len(rows)} 家 / {len(rows)} firm(s)")

    @main.group("trainings")
    def trainings() -> None:
        """Training sessions and briefings of the district bureaus (专项培训、企业宣讲)."""

    @trainings.command("record")
    @click.option("--district", required=True)
    @click.option("--kind", type=click.Choice(TRAINING_KINDS), required=True)
    @click.option("--date", "held_on", type=click.DateTime(formats=["%Y-%m-%d"]), required=True)
    @click.option("--topic", required=True)
    @click.option("--firm", "firms", multiple=True, required=True, help="USCC or id, optionally :people (repeat).")
    @click.option("--by", default=None)
    @as_of_option
    @pass_app
    def training_record_cmd(
        app: App,
        district: str,
        kind: str,
        held_on: dt.datetime,
        topic: str,
        firms: tuple[str, ...],
        by: str | None,
        as_of: dt.datetime | None,
    ) -> None:
        """Record a session or briefing with the firms that attended (FIRM or FIRM:PEOPLE)."""
        app.require_schema()
        code = _district(app, district)
        try:
            attendees: dict[int, int] = {}
            for spec in firms:
                name, _, people = spec.partition(":")
                attendees[_firm(app, name).id] = int(people) if people.strip().isdigit() else 1
            with Session(app.engine) as session:
                result = record_training(
                    session,
                    kind=kind,
                    held_on=held_on.date(),
                    topic=topic,
                    attendees=attendees,
                    actor=_bureau(code, by),
                    campaign=app.campaign,
                    clock=app.clock(as_of.date() if as_of else None),
                )
        except WorkflowError as exc:
            raise refusal(exc) from None
        click.echo(f"已记录 #{result['id']}：{result['firms']} 家企业、{result['people']} 人 / recorded")

    @trainings.command("list")
    @click.option("--district", default=None)
    @click.option("--json", "as_json", is_flag=True)
    @pass_app
    def training_list_cmd(app: App, district: str | None, as_json: bool) -> None:
        """Sessions and briefings, and trained firms against the directory."""
        app.require_schema()
        code = _district(app, district) if district else None
        actor = _bureau(None, None)
        with app.engine.connect() as conn:
            rows = list_trainings(conn, actor=actor, district=code)
            reach = training_reach(conn, actor=actor, district=code)
        if as_json:
            echo_json({"sessions": rows, "trained": reach.trained, "directory": reach.directory})
            return
        for r in rows:
            click.echo(f"{r['held_on']}  {r['kind_label']}  {r['topic']}  {r['firms']} 家 {r['people']} 人")
        click.echo(f"受训企业 {reach.trained} / 名录 {reach.directory} / trained firms against the directory")

    @main.group("codes")
    def codes() -> None:
        """The firms' safety codes (常安码): one firm's link and QR image, a district's printable sheet."""

    @codes.command("show")
    @click.argument("firm")
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help=".png")
    @pass_app
    def code_show_cmd(app: App, firm: str, output: Path | None) -> None:
        """The link a firm's code opens (and its QR image as PNG with -o)."""
        app.require_schema()
        try:
            row = _firm(app, firm)
            with app.engine.connect() as conn:
                token = firm_code(conn, enterprise_id=row.id, actor=_bureau(None, None))
        except WorkflowError as exc:
            raise refusal(exc) from None
        url = code_url(app.settings.public_url, token)
        if output is not None:
            output.write_bytes(qr_png(url))
        click.echo(url)

    @codes.command("sheet")
    @click.option("--district", required=True)
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help=".pdf")
    @pass_app
    def code_sheet_cmd(app: App, district: str, output: Path) -> None:
        """A district's sheet of codes for printing (PDF, twelve firms a page)."""
        app.require_schema()
        code = _district(app, district)
        name = app.campaign.district(code).name  # type: ignore[union-attr]
        with app.engine.connect() as conn:
            firms = district_firms(conn, district=code, actor=_bureau(None, None))
            key = code_key(conn)
        output.write_bytes(
            district_sheet_pdf(
                firms,
                key=key,
                base_url=app.settings.public_url,
                title=f"{name} 企业安全码（常安码）",
                note=f"扫码查看企业名称与创建状态；辖区监管人员登录后进入企业监管页。{today(app.clock(None))}",
            )
        )
        click.echo(f"已写入 {len(firms)} 家企业 / wrote {len(firms)} code(s) to {output}")


def _pct(share: float | None) -> str:
    return f"{share:.0%}" if share is not None else "—"
