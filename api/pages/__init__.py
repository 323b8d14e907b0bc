"""HTML pages for people, in Chinese and English (`i18n`): signing in (`session`), who may open a page and
CSRF (`access`), rendering (`render`), the city and district dashboards (`dashboards`), firm lists and the firm
page with its forms (`firms`), reviewer and application pages (`reviews`), the task list (`work`, with
`worklink`, the way back to it from a firm), escalations, referrals and outbox (`oversight`), supervision
pages and what a safety code opens (`inspections`),
certificates and published lists (`certificates`) and XLSX downloads (`exports`). `install` mounts them,
their static files and security headers on the app and answers a page's errors with a page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders, QueryParams
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.pages import certificates, dashboards, firms, inspections, oversight, reviews, session, work
from api.pages.access import LANG_COOKIE, CsrfRefused, SignInRequired
from api.pages.i18n import LANGS
from api.pages.render import STATIC, build_pages, message, query_url, render
from states import NotAllowed, NotFound, UnknownTrigger, WorkflowError

ROUTERS = (
    session.router,
    dashboards.router,
    firms.router,
    reviews.router,
    oversight.router,
    certificates.router,
    inspections.router,
    work.router,
)
NOT_PAGES = ("/api/", "/docs", "/redoc", "/openapi.json", "/healthz", "/metrics", "/static/")

# Pages run only the scripts and styles they are served with: no inline script, no outside host, no frames.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def is_page(request: Request) -> bool:
    return not request.url.path.startswith(NOT_PAGES)


class PageHeaders:
    """Security headers on every answer, and on pages the content policy, no framing, no caching and the
    language cookie when `?lang=` chose one. Plain ASGI (no per-request task or stream as with
    `BaseHTTPMiddleware`): it only edits the response's start message on its way out."""

    def __init__(self, app: ASGIApp, *, context: Any) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        page = not scope["path"].startswith(NOT_PAGES)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                if page:
                    headers["Content-Security-Policy"] = CSP
                    headers["X-Frame-Options"] = "DENY"
                    headers.setdefault("Cache-Control", "no-store")
                    lang = QueryParams(scope.get("query_string", b"")).get("lang")
                    if lang in LANGS:
                        secure = self.context.settings.cookie_secure or scope.get("scheme") == "https"
                        cookie = Response()
                        cookie.set_cookie(
                            LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax", path="/", secure=secure
                        )
                        headers.append("set-cookie", cookie.headers["set-cookie"])
            await send(message)

        await self.app(scope, receive, with_headers)


def error_page(request: Request, status: int, kind: str, detail: str | None = None) -> Response:
    return render(request, "error.html", status=status, kind=kind, detail=detail)


def install(app: FastAPI) -> None:
    """Mount the pages, their static files and their security headers on the app."""
    app.state.pages = build_pages(app.state.context.clock.tz)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    app.add_middleware(PageHeaders, context=app.state.context)

    # The API's handlers answer in JSON; a page answers with a page. Wrap them: pages first, else the API's.
    def wrap(kind: type[Exception] | int, page: Callable[[Request, Any], Response]) -> None:
        previous = app.exception_handlers.get(kind)

        async def handler(request: Request, exc: Any) -> Response:
            if is_page(request) or previous is None:
                return page(request, exc)
            result = previous(request, exc)
            return await result if hasattr(result, "__await__") else result

        app.add_exception_handler(kind, handler)

    def workflow_page(request: Request, exc: WorkflowError) -> Response:
        if isinstance(exc, NotFound | UnknownTrigger):  # also OutOfScope: never say that the record exists
            return error_page(request, 404, "not_found")
        if isinstance(exc, NotAllowed):
            return error_page(request, 403, "forbidden")
        return error_page(request, 422, "invalid", message(request, str(exc)))

    def http_page(request: Request, exc: StarletteHTTPException) -> Response:
        kinds = {404: "not_found", 405: "not_found", 401: "sign_in", 403: "forbidden", 413: "too_large"}
        return error_page(request, exc.status_code, kinds.get(exc.status_code, "invalid"))

    def invalid_page(request: Request, exc: RequestValidationError) -> Response:
        # a malformed address (/firms/abc) is a page that does not exist; a malformed form is invalid
        in_path = any(e.get("loc", ("",))[0] == "path" for e in exc.errors())
        return error_page(request, 404, "not_found") if in_path else error_page(request, 422, "invalid")

    def sign_in(request: Request, exc: SignInRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(query_url("/login", next=target if request.method == "GET" else None), 303)

    def csrf_refused(request: Request, exc: CsrfRefused) -> Response:
        return error_page(request, 403, "csrf")

    wrap(WorkflowError, workflow_page)
    wrap(StarletteHTTPException, http_page)
    wrap(RequestValidationError, invalid_page)
    wrap(SignInRequired, sign_in)
    wrap(CsrfRefused, csrf_refused)
