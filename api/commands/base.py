"""What every command of `dabiao` shares: the `App` (settings, campaign, engine, clock), the refusal wrapper,
the `--as-of` option and small output helpers."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, wraps
from pathlib import Path
from typing import Any, TypeVar

import click
import sqlalchemy as sa

from states import WorkflowError
from workflow.campaign import Campaign, CampaignInvalid, load_campaign
from workflow.clock import Clock, clock_for
from workflow.context import Context
from workflow.db import current_revision, make_engine
from workflow.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class App:
    settings: Settings

    @cached_property
    def campaign(self) -> Campaign:
        return load_campaign(self.settings.campaign_file)

    @cached_property
    def engine(self) -> sa.Engine:
        url = self.settings.database_url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return make_engine(url)

    def clock(self, as_of: dt.date | None) -> Clock:
        return clock_for(as_of, self.settings.tz)

    def context(self, as_of: dt.date | None) -> Context:
        """The campaign, the clock (at `as_of`, else now) and the settings, as service functions take them."""
        return Context(self.campaign, self.clock(as_of), self.settings)

    def require_schema(self) -> None:
        if current_revision(self.engine) is None:
            raise click.ClickException(
                "数据库尚未初始化，请先运行 `dabiao init` / the database is empty: run `dabiao init` first"
            )


def friendly_errors(func: F) -> F:
    """Refusals become one readable line and exit code 1, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (WorkflowError, CampaignInvalid) as exc:
            code = getattr(exc, "code", "campaign_invalid")
            raise click.ClickException(f"[{code}] {exc}") from None

    return wrapper  # type: ignore[return-value]


def as_of_option(func: F) -> F:
    return click.option(
        "--as-of",
        type=click.DateTime(formats=["%Y-%m-%d"]),
        default=None,
        help="Act as of this local date (YYYY-MM-DD) instead of today.",
    )(func)


def local_date(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value else None


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def refusal(exc: WorkflowError) -> click.ClickException:
    """A refusal as the command line's one readable line: `[code] reason`."""
    return click.ClickException(f"[{getattr(exc, 'code', 'refused')}] {exc}")


pass_app = click.make_pass_decorator(App)
