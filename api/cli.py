"""The `dabiao` command line: the `main` group and its commands, assembled from `api.commands` (one module per
area, as the routes are); the commands themselves live there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from api.commands import audit as audit_commands
from api.commands import campaign as campaign_commands
from api.commands import certificates as certificate_commands
from api.commands import dashboard as dashboard_commands
from api.commands import deadlines as deadline_commands
from api.commands import demo as demo_commands
from api.commands import firms as firm_commands
from api.commands import inspections as inspection_commands
from api.commands import notifications as notification_commands
from api.commands import pool as pool_commands
from api.commands import serve as serve_commands
from api.commands import setup as setup_commands
from api.commands import users as user_commands
from api.commands.base import App
from workflow.settings import Settings


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


for command in (
    setup_commands.init,
    setup_commands.import_directory_cmd,
    setup_commands.generate_directory_cmd,
    setup_commands.diagram,
    firm_commands.fire_cmd,
    firm_commands.show,
    firm_commands.stats,
    audit_commands.audit,
    dashboard_commands.dashboard,
    demo_commands.demo,
    user_commands.users,
    serve_commands.serve,
):
    main.add_command(command)

# Command groups of the later packages, registered here and nowhere else.
notification_commands.register(main)
deadline_commands.register(main)
pool_commands.register(main)
certificate_commands.register(main)
inspection_commands.register(main)
campaign_commands.register(main)
