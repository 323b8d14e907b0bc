"""The one injectable clock: aware UTC instants for storage, Asia/Shanghai dates for the campaign."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    tz: ZoneInfo

    def now(self) -> dt.datetime: ...


def today(clock: Clock) -> dt.date:
    """The campaign's local date at the clock's now."""
    return clock.now().astimezone(clock.tz).date()


@dataclass
class SystemClock:
    tz: ZoneInfo = SHANGHAI

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


@dataclass
class FixedClock:
    """A clock standing at one instant; `advance` moves it (replays, tests)."""

    at: dt.datetime
    tz: ZoneInfo = field(default=SHANGHAI)

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware instant")

    def now(self) -> dt.datetime:
        return self.at.astimezone(dt.UTC)

    def advance(self, delta: dt.timedelta) -> None:
        self.at = self.at + delta

    @classmethod
    def on(cls, day: dt.date, tz: ZoneInfo = SHANGHAI, hour: int = 12) -> FixedClock:
        """Noon (local) of a campaign date: far from midnight, so the date never slips."""
        return cls(dt.datetime.combine(day, dt.time(hour), tz), tz)


def clock_for(as_of: dt.date | None, tz: ZoneInfo = SHANGHAI) -> Clock:
    return SystemClock(tz) if as_of is None else FixedClock.on(as_of, tz)
