"""`dabiao dispatch`, `dabiao outbox …`, `dabiao mail preview …` (issue 4)."""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Add this module's commands to the `dabiao` group."""
