"""Serving the API and pages: `serve`."""

from __future__ import annotations

from typing import Any

import click

from api.commands.base import App, friendly_errors, pass_app

WORKER_STARTUP_S = 60  # seconds a worker process may take to come up before the supervisor replaces it


def uvicorn_options(settings: Any) -> dict[str, Any]:
    """No `server` header; X-Forwarded-For believed only from DABIAO_TRUSTED_PROXIES (uvicorn would trust
    127.0.0.1 by default)."""
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    return {"server_header": False, "proxy_headers": bool(proxies), "forwarded_allow_ips": proxies or None}


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="PostgreSQL only.")
@click.option(
    "--scheduler/--no-scheduler",
    "with_scheduler",
    default=None,
    help="Run the scheduler in this process (default: yes on SQLite; on PostgreSQL run `dabiao scheduler`).",
)
@pass_app
@friendly_errors
def serve(app: App, host: str, port: int, workers: int, with_scheduler: bool | None) -> None:
    """Serve the API and pages with uvicorn; on SQLite the scheduler runs in the same process."""
    import os

    import uvicorn

    app.require_schema()
    sqlite = app.settings.database_url.startswith("sqlite")
    if sqlite and workers > 1:
        raise click.BadParameter("SQLite 只支持单进程 / SQLite serves from one process", param_hint="--workers")
    if with_scheduler is None:
        with_scheduler = sqlite
    if workers > 1:
        if with_scheduler:
            raise click.BadParameter(
                "多进程时请另行运行 `dabiao scheduler` / with several workers run `dabiao scheduler` apart",
                param_hint="--scheduler",
            )
        os.environ["DABIAO_DATABASE_URL"] = app.settings.database_url
        os.environ["DABIAO_CAMPAIGN_FILE"] = str(app.settings.campaign_file)
        uvicorn.run(
            "api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            # a worker answers the supervisor's health check only once it has imported the app; on a busy
            # machine that takes longer than uvicorn's 5 s and the workers were killed and restarted forever
            timeout_worker_healthcheck=WORKER_STARTUP_S,
            log_level="info",
            **uvicorn_options(app.settings),
        )
        return
    from api.app import create_app

    web = create_app(settings=app.settings, campaign=app.campaign, engine=app.engine)
    if not with_scheduler:
        uvicorn.run(web, host=host, port=port, log_level="info", **uvicorn_options(app.settings))
        return
    from deadlines.scheduler import start_background

    scheduler, jobs = start_background(app.engine, campaign=app.campaign, settings=app.settings)
    web.state.context.scheduler_running = lambda: bool(scheduler.running)
    try:
        uvicorn.run(web, host=host, port=port, log_level="info", **uvicorn_options(app.settings))
    finally:
        scheduler.shutdown(wait=False)
        jobs.leadership.release()
