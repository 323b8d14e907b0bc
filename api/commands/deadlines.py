"""`dabiao sweep`, `scheduler`, `escalations …`, `referrals …`, `inspections …` (issue 3)."""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Add this module's commands to the `dabiao` group."""
