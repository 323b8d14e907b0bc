"""The demo campaign: `demo` builds it from nothing (saying how far it is and how long is left) and serves
it until Ctrl+C, which ends it with exit status 0."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import click

from api.commands.base import App, friendly_errors, pass_app
from api.commands.serve import uvicorn_options


class Stopped(BaseException):  # like KeyboardInterrupt: no `except Exception` on the way may swallow it
    """SIGINT or SIGTERM while the demo is being built."""


def _stop(sig: int, frame: FrameType | None) -> None:
    raise Stopped(sig)


@contextlib.contextmanager
def own_terminal() -> Iterator[None]:
    """Run started by `make demo` in a terminal, take the terminal's foreground for this process alone, so that
    Ctrl+C reaches the demo and not make (make would end itself with "Interrupt" and status 130 whatever the
    demo does); the demo then stops cleanly, make sees status 0, and the terminal goes back to make. Nothing
    changes when the demo leads its own process group already (started by a shell) or has no terminal."""
    try:
        fd = sys.stdin.fileno()
        foreign = os.isatty(fd) and os.getpgrp() != os.getpid() and os.tcgetpgrp(fd) == os.getpgrp()
    except (OSError, ValueError):
        foreign = False
    if not foreign:
        yield
        return
    parent = os.getpgrp()
    quiet = signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # a background group may then set the foreground
    suspend = signal.signal(signal.SIGTSTP, signal.SIG_IGN)  # Ctrl+Z would stop the demo with make waiting on it
    try:
        os.setpgid(0, 0)
        os.tcsetpgrp(fd, os.getpgrp())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(fd, parent)
        signal.signal(signal.SIGTSTP, suspend)
        signal.signal(signal.SIGTTOU, quiet)


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
    up to --until with mail written to the .eml folder) and serve it at http://127.0.0.1:PORT; Ctrl+C stops
    it (exit status 0)."""
    with own_terminal():
        _demo(app, firms, until.date(), seed, folder, serve, port)


def _demo(app: App, firms: int, until: dt.date, seed: int, folder: Path, serve: bool, port: int) -> None:
    import shutil
    import time

    from api.demo import PASSWORD, build_demo, ready_line, serve_demo, write_mail
    from deadlines.demo import duration

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
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        logins = build_demo(
            url=url,
            settings=settings,
            campaign=app.campaign,
            firms=firms,
            until=until,
            seed=seed,
            say=click.echo,
        )
    except Stopped:
        click.echo("\n已停止：演示数据未建完 / stopped before the demo was built")
        return
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(f"演示数据已就绪 / demo built in {duration(time.perf_counter() - started)}: {folder / 'dabiao.db'}")

    def show_logins() -> None:
        click.echo(f"登录 / sign in — 每个账号的密码 / password for every account: {PASSWORD}")
        for role, username, note in logins.rows:
            click.echo(f"  {username:<12} {role}  — {note}")

    def mail() -> None:
        written, undeliverable = write_mail(url=url, settings=settings, campaign=app.campaign, until=until)
        click.echo(f"邮件已写入 {written} 封 / {written} messages written to {settings.mail_dir}/ (.eml files)")
        if undeliverable:
            click.echo(
                f"无法送达 {undeliverable} 封（无收件地址，未写入）/ {undeliverable} undeliverable: no recipient "
                "address, nothing written"
            )

    if not serve:
        show_logins()
        mail()
        return

    def ready() -> None:
        click.echo(ready_line(port))
        show_logins()

    stopped_by = serve_demo(
        settings=settings,
        campaign=app.campaign,
        until=until,
        port=port,
        mail=mail,
        say=click.echo,
        on_ready=ready,
        server_options=uvicorn_options(settings),
    )
    if stopped_by is not None:
        click.echo(f"已停止 / stopped ({signal.Signals(stopped_by).name})")
