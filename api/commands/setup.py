"""Setting up: the database (`init`), the enterprise directory (`import-directory`, `generate-directory`) and
the state machine's diagram (`diagram`)."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from api.commands.base import App, as_of_option, friendly_errors, local_date, pass_app
from states.diagram import markdown
from workflow.campaign import sync_districts
from workflow.db import current_revision, migrate


@click.command()
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


@click.command("import-directory")
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
            report = import_directory(app.engine, file, context=app.context(local_date(as_of)), progress=progress)
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


@click.command("generate-directory")
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


@click.command()
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
