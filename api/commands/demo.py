"""The demo campaign: `demo` builds it from nothing and serves it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from api.commands.base import App, friendly_errors, pass_app
from api.commands.serve import uvicorn_options


@click.command()
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
    uvicorn.run(web, host="127.0.0.1", port=port, log_level="warning", **uvicorn_options(settings))
