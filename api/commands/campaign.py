"""`dabiao campaign targets import|show`: the districts' starting targets (附件2)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click


def register(main: click.Group) -> None:
    """Add this module's commands to the `dabiao` group."""
    from api.cli import App, as_of_option, friendly_errors, pass_app

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
                campaign=app.campaign,
                clock=app.clock(as_of.date() if as_of else None),
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
