"""The FastAPI application: JSON API under /api, OpenAPI at /docs, /healthz and /metrics."""

from __future__ import annotations

import time

import sqlalchemy as sa
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class RequestMetrics:
    """Each request's duration by method, route template and status (`dabiao_http_requests`). Plain ASGI:
    `BaseHTTPMiddleware` ran every request through an extra task and memory stream."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless an answer starts (an exception that escapes is answered 500 above)

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")  # the template, not the raw path
            REQUESTS.labels(method_label(scope["method"]), route, str(status)).observe(time.perf_counter() - started)


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

    app.add_middleware(RequestMetrics)  # outermost: times everything below it
    return app
