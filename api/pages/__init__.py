"""HTML pages for people (issue 6): dashboards, firm and reviewer pages, lists and exports."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Mount the pages, their static files and their security headers on the app."""
