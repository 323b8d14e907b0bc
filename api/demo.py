"""`make demo` / `dabiao demo`: the replay of the campaign lives in `deadlines.demo`; here the built demo
is served (the pages and API standing on the last replayed day, the campaign's mail written meanwhile)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

from deadlines.demo import PASSWORD, Logins, build_demo, write_mail
from workflow.campaign import Campaign
from workflow.clock import FixedClock
from workflow.settings import Settings

__all__ = ["PASSWORD", "Logins", "build_demo", "serve_demo", "write_mail"]


def serve_demo(
    *,
    settings: Settings,
    campaign: Campaign,
    until: dt.date,
    port: int,
    mail: Callable[[], None],
    say: Callable[[str], None],
    server_options: dict[str, Any],
) -> None:
    """Serve the demo at http://127.0.0.1:PORT while `mail` writes the campaign's mail in the background."""
    import uvicorn

    from api.app import create_app

    # the demo stands on its last replayed day, so deadlines and dashboards read as of that date
    web = create_app(settings=settings, campaign=campaign, clock=FixedClock.on(until, tz=settings.tz))
    say(f"正在后台写入邮件 / writing the campaign's mail to {settings.mail_dir}/ in the background …")
    threading.Thread(target=mail, name="demo-mail", daemon=True).start()
    uvicorn.run(web, host="127.0.0.1", port=port, log_level="warning", **server_options)
