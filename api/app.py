"""The FastAPI application: JSON API under /api, OpenAPI at /docs, /healthz and /metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from fastapi import FastAPI, Request, Response

from api import errors, pages
from api.deps import AppContext
from api.metrics import OUTBOX_COLLECTOR, REQUESTS, method_label
from api.reads import NoteWrites
from api.routes import auth, bulk, certificates, enterprises, inspections, ops, oversight, work
from workflow.campaign import Campaign, load_campaign
from workflow.clock import Clock, SystemClock
from workflow.db import Reads, make_engine
from workflow.settings import Settings, get_settings

ROUTERS = (
    auth.router,
    enterprises.router,
    work.router,
    oversight.router,
    ops.router,
    bulk.router,
    certificates.router,
    inspections.router,
)


def create_app(
    *,
    settings: Settings | None = None,
    campaign: Campaign | None = None,
    engine: sa.Engine | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    campaign = campaign or load_campaign(settings.campaign_file)
    engine = engine or make_engine(settings.database_url)
    app = FastAPI(
        title="Dabiao 达标",
        description="Safety-production compliance campaign: firms, transitions, worklists, evaluator pool.",
        version="0.1.0",
    )
    reads = Reads.of(engine, settings)
    app.state.context = AppContext(
        settings=settings, campaign=campaign, engine=engine, clock=clock or SystemClock(settings.tz), reads=reads
    )
    if reads is not None:
        app.add_middleware(NoteWrites, reads=reads, writers=app.state.context.writers, secure=settings.cookie_secure)
    OUTBOX_COLLECTOR.engine_of = lambda: engine
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    pages.install(app)

    @app.middleware("http")
    async def timing(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")  # the template, not the raw path
        REQUESTS.labels(method_label(request.method), route, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response

    return app
