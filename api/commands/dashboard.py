"""The dashboards' daily summary: `dashboard rebuild-summary` (and `--check`)."""

from __future__ import annotations

import click

from api.commands.base import App, friendly_errors, pass_app
from workflow import summary


@click.group()
def dashboard() -> None:
    """The dashboards' daily summary."""


@dashboard.command("rebuild-summary")
@click.option("--check", "check_only", is_flag=True, help="Only compare the summary with a count over the firms.")
@pass_app
@friendly_errors
def rebuild_summary(app: App, check_only: bool) -> None:
    """Recount the dashboards' summary from the firms (writes to the firms wait meanwhile), saying what was
    wrong; with --check, only compare. Exits 1 when --check finds a difference."""
    app.require_schema()
    with app.engine.begin() as conn:
        if check_only:
            found = summary.check(conn)
        else:
            summary.compact(conn)
            found = summary.rebuild(conn)
    for what, key, kept, counted in found.rows:
        label = "状态 / state" if what == "state" else "开始日 / start day"
        click.echo(f"{label} {' · '.join(str(k) for k in key)}: 汇总 / summary {kept}, 企业 / firms {counted}")
    if found.equal:
        click.echo("汇总与企业计数一致 / the summary equals the count over the firms")
    elif check_only:
        click.echo(f"汇总有 {len(found.rows)} 处不一致 / {len(found.rows)} differences", err=True)
        raise SystemExit(1)
    else:
        click.echo(f"已按企业重算 {len(found.rows)} 处 / recounted {len(found.rows)} differences from the firms")
