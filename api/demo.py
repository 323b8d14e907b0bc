"""`make demo` / `dabiao demo`: the replay of the campaign lives in `deadlines.demo`; here the built demo
is served (the pages and API standing on the last replayed day, the campaign's mail written meanwhile):
one line when the server answers, each request logged, and Ctrl+C (SIGINT) or SIGTERM stopping it cleanly
with exit status 0."""

from __future__ import annotations

import copy
import datetime as dt
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from deadlines.demo import PASSWORD, Logins, build_demo, write_mail
from workflow.campaign import Campaign
from workflow.clock import FixedClock
from workflow.settings import Settings

__all__ = ["PASSWORD", "Logins", "build_demo", "ready_line", "serve_demo", "write_mail"]


def ready_line(port: int) -> str:
    return f"已启动 http://127.0.0.1:{port} — Ctrl+C 停止"


class DemoServer(uvicorn.Server):
    """uvicorn's server that says when it answers and, stopped by a signal, ends normally: uvicorn would raise
    the signal again after shutting down, and the process (and `make demo`) would end as killed."""

    def __init__(self, config: uvicorn.Config, *, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_ready = on_ready
        self.stopped_by: int | None = None

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit:
            self.on_ready()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl+C: do not wait for open connections
        self.should_exit = True
        self.stopped_by = sig


def access_log_config() -> dict[str, Any]:
    """uvicorn's logging with each request logged (uvicorn.access) and its own chatter at warnings only."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["uvicorn.error"]["level"] = "WARNING"
    config["loggers"]["uvicorn.access"]["level"] = "INFO"
    return config


def serve_demo(
    *,
    settings: Settings,
    campaign: Campaign,
    until: dt.date,
    port: int,
    mail: Callable[[], None],
    say: Callable[[str], None],
    on_ready: Callable[[], None],
    server_options: dict[str, Any],
) -> int | None:
    """Serve the demo at http://127.0.0.1:PORT while `mail` writes the campaign's mail in the background.
    Returns the signal that stopped it (None when it stopped otherwise)."""
    from api.app import create_app

    # the demo stands on its last replayed day, so deadlines and dashboards read as of that date
    web = create_app(settings=settings, campaign=campaign, clock=FixedClock.on(until, tz=settings.tz))
    config = uvicorn.Config(
        web, host="127.0.0.1", port=port, log_config=access_log_config(), access_log=True, **server_options
    )
    server = DemoServer(config, on_ready=on_ready)
    say(f"正在后台写入邮件 / writing the campaign's mail to {settings.mail_dir}/ in the background …")
    threading.Thread(target=mail, name="demo-mail", daemon=True).start()
    server.run()
    return server.stopped_by
