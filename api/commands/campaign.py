"""`dabiao campaign targets import|show`: the districts' starting targets (附件2); `dabiao guidance
list|assign|visit`: experts and officers sent to benchmark candidates."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click


def register(main: click.Group) -> None:
    """Add this module's commands to the `dabiao` group."""
    from api.commands.base import App, as_of_option, friendly_errors, pass_app
    from states import Role
    from workflow.actors import Actor
    from workflow.engine import load_firm

    def acting(role: str, district: str | None, name: str) -> Actor:
        return Actor(name=name, role=Role(role), district_code=district)

    def district_code(app: App, district: str | None) -> str | None:
        if district is None:
            return None
        found = app.campaign.district(district)
        if found is None:
            raise click.BadParameter(f"未知辖区 / unknown district: {district}", param_hint="--district")
        return str(found.code)

    role_choice = click.Choice(["city_bureau", "district_bureau"])

    @main.group("campaign")
    def campaign() -> None:
        """The campaign's data held in the database (targets)."""

    @campaign.group("targets")
    def targets() -> None:
        """Per-district starting targets (附件2: firms that must have started the creation work)."""

    @targets.command("import")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--source", default="附件2", show_default=True, help="Where the figures come from.")
    @click.option("--by", "name", default="admin (command line)", show_default=True, help="Who imports them.")
    @as_of_option
    @pass_app
    @friendly_errors
    def targets_import(app: App, file: Path, source: str, name: str, as_of: dt.datetime | None) -> None:
        """Load official figures from an XLSX file (columns: district, key-field starting target, other
        starting target). A file with any problem is refused whole, every problem named by line."""
        from workflow.directory import ImportRejected
        from workflow.targets import import_targets

        app.require_schema()
        try:
            n = import_targets(
                app.engine,
                file,
                context=app.context(as_of.date() if as_of else None),
                imported_by=name,
                source=source.strip(),
            )
        except ImportRejected as exc:
            click.echo(
                f"文件未导入，共 {len(exc.problems)} 处问题 / file refused, {len(exc.problems)} problem(s):", err=True
            )
            for problem in exc.problems:
                click.echo(f"  {problem}", err=True)
            raise SystemExit(1) from None
        click.echo(f"已导入 {n} 个辖区的创建目标（来源：{source}） / imported the targets of {n} district(s)")

    @targets.command("show")
    @click.option("--json", "as_json", is_flag=True)
    @pass_app
    @friendly_errors
    def targets_show(app: App, as_json: bool) -> None:
        """The targets in force, per district, with their source."""
        from workflow.targets import STAND_IN_LABEL, target_rows

        app.require_schema()
        with app.engine.connect() as conn:
            rows = target_rows(conn, campaign=app.campaign)
        if as_json:
            click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
            return
        for r in rows:
            if r["key_field"] is None:
                click.echo(f"{r['district_name']}  目标未录入 / no targets entered")
                continue
            mark = "" if r["official"] else f"  【{STAND_IN_LABEL}】"
            click.echo(
                f"{r['district_name']}  重点监管领域 {r['key_field']}  其他 {r['other']}  来源 {r['source']}{mark}"
            )

    # ---- guidance of benchmark candidates --------------------------------------------------------

    @main.group("guidance")
    def guidance() -> None:
        """Experts (派驻专家重点指导) and officers (监管人员重点督导) sent to benchmark candidates."""

    @guidance.command("list")
    @click.option("--district", default=None)
    @click.option("--json", "as_json", is_flag=True)
    @pass_app
    @friendly_errors
    def guidance_list(app: App, district: str | None, as_json: bool) -> None:
        """The register with its visits (as the city bureau; --district for one district)."""
        from workflow.guidance import list_guidance

        app.require_schema()
        with app.engine.connect() as conn:
            rows = list_guidance(
                conn, actor=acting("city_bureau", None, "admin (command line)"), district=district_code(app, district)
            )
        if as_json:
            click.echo(json.dumps([r.as_json() for r in rows], ensure_ascii=False, indent=2))
            return
        for r in rows:
            last = r.last_visit.isoformat() if r.last_visit else "—"
            click.echo(
                f"#{r.id:<5} {r.district_code} {r.enterprise_name} {r.uscc}  {r.kind_label} {r.person} "
                f"自 {r.from_date}  走访 {len(r.visits)} 次，最近 {last}"
            )
        click.echo(f"共 {len(rows)} 条派驻 / {len(rows)} assignment(s)")

    @guidance.command("assign")
    @click.argument("credit_code")
    @click.option("--person", required=True)
    @click.option("--kind", type=click.Choice(["expert", "officer"]), required=True)
    @click.option("--from", "from_date", type=click.DateTime(formats=["%Y-%m-%d"]), required=True)
    @click.option("--role", type=role_choice, default="district_bureau", show_default=True)
    @click.option("--by", "name", default="admin (command line)")
    @as_of_option
    @pass_app
    @friendly_errors
    def guidance_assign(
        app: App,
        credit_code: str,
        person: str,
        kind: str,
        from_date: dt.datetime,
        role: str,
        name: str,
        as_of: dt.datetime | None,
    ) -> None:
        """Send an expert or an officer to a benchmark candidate (acting for the firm's district)."""
        from sqlmodel import Session

        from workflow.guidance import assign_guide

        app.require_schema()
        with app.engine.connect() as conn:
            firm = load_firm(conn, uscc=credit_code.strip().upper())
        with Session(app.engine) as session:
            assignment_id = assign_guide(
                session,
                enterprise_id=firm.id,
                person=person,
                kind=kind,
                from_date=from_date.date(),
                actor=acting(role, firm.district_code, name),
                clock=app.clock(as_of.date() if as_of else None),
            )
        click.echo(f"已登记派驻 #{assignment_id} / assignment #{assignment_id}: {firm.name}")

    @guidance.command("visit")
    @click.argument("assignment_id", type=int)
    @click.option("--on", "visited_on", type=click.DateTime(formats=["%Y-%m-%d"]), required=True)
    @click.option("--note", required=True)
    @click.option("--role", type=role_choice, default="city_bureau", show_default=True)
    @click.option("--district", default=None, help="Acting district bureau's district.")
    @click.option("--by", "name", default="admin (command line)")
    @as_of_option
    @pass_app
    @friendly_errors
    def guidance_visit(
        app: App,
        assignment_id: int,
        visited_on: dt.datetime,
        note: str,
        role: str,
        district: str | None,
        name: str,
        as_of: dt.datetime | None,
    ) -> None:
        """Record a visit of an assigned expert or officer."""
        from sqlmodel import Session

        from workflow.guidance import record_visit

        app.require_schema()
        with Session(app.engine) as session:
            visit_id = record_visit(
                session,
                assignment_id=assignment_id,
                visited_on=visited_on.date(),
                note=note,
                actor=acting(role, district_code(app, district), name),
                clock=app.clock(as_of.date() if as_of else None),
            )
        click.echo(f"已登记走访 #{visit_id} / visit #{visit_id} recorded")
