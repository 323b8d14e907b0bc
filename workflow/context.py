"""The context a service call runs in: the campaign's rules, the clock and the settings, passed as one value
instead of separate `campaign=` and `clock=` arguments."""

from __future__ import annotations

from dataclasses import dataclass, field

from workflow.campaign import Campaign
from workflow.clock import Clock
from workflow.settings import Settings, get_settings


@dataclass(frozen=True)
class Context:
    campaign: Campaign
    clock: Clock
    settings: Settings = field(default_factory=lambda: get_settings())
