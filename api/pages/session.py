"""Signing in and out of the pages, and the start page of each role."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from api.deps import ContextDep, SessionDep, client_address
from api.pages.access import (
    LOGIN_COOKIE,
    PUBLIC_PAGE,
    SESSION_COOKIE,
    CsrfRefused,
    UserDep,
    check_csrf,
    csrf_token,
    page,
)
from api.pages.render import home_of, message, redirect, render
from states import InvalidInput, NotFound, Role
from workflow.accounts import (
    LOGIN_NONCE_SECONDS,
    MAX_USERNAME,
    AccountLocked,
    LoginFailed,
    SignedIn,
    issue_login_nonce,
    list_users,
    login_nonce_valid,
    password_sign_in,
    reset_password,
    revoke_sessions,
    revoke_token,
    server_secret,
    set_active,
    user_order,
)
from workflow.actors import Actor
from workflow.db import read_unit

router = APIRouter(include_in_schema=False)
LOGIN_SECRET = "login-nonce"


def _safe_next(target: str | None) -> str | None:
    """Only a path of this site (never //host or a scheme) may follow the sign-in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def secure_cookie(request: Request, context: ContextDep) -> bool:
    """Cookies carry `Secure` unless DABIAO_COOKIE_SECURE=false (plain http, as `make demo` serves)."""
    return context.settings.cookie_secure or request.url.scheme == "https"


def _login_form(
    request: Request, context: ContextDep, *, status: int = 200, error: str | None = None, username: str = ""
) -> Response:
    # the nonce is always a fresh one issued (and signed) by the server: a nonce a client brings is never reused
    nonce = issue_login_nonce(server_secret(context.engine, LOGIN_SECRET), now=context.clock.now())
    response = render(
        request,
        "login.html",
        status=status,
        login_csrf=csrf_token(nonce, "login"),
        error=error,
        username=username[:MAX_USERNAME],
        next=_safe_next(request.query_params.get("next")) or "",
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=LOGIN_NONCE_SECONDS,
        httponly=True,
        samesite="lax",
        path="/login",
        secure=secure_cookie(request, context),
    )
    return response


@router.get("/login", dependencies=[PUBLIC_PAGE])
def login_page(request: Request, context: ContextDep, user: UserDep) -> Response:
    if user is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")) or home_of(user), 303)
    return _login_form(request, context)


@router.post("/login", dependencies=[PUBLIC_PAGE])
async def login(
    request: Request,
    context: ContextDep,
    username: Annotated[str, Form(max_length=4096)],  # the service's caps (80, 256) answer with their message
    password: Annotated[str, Form(max_length=4096)],
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """The same sign-in as the API (throttled, locked after repeated failures); the token goes into an
    HttpOnly cookie."""
    nonce = request.cookies.get(LOGIN_COOKIE)
    secret = await run_in_threadpool(server_secret, context.engine, LOGIN_SECRET)
    if not login_nonce_valid(secret, nonce, now=context.clock.now()):
        raise CsrfRefused()
    await check_csrf(request, nonce, "login")

    source = client_address(request, context.settings)

    def work() -> SignedIn:
        return password_sign_in(
            context.engine, username, password, clock=context.clock, settings=context.settings, source=source
        )

    try:
        signed = await run_in_threadpool(work)
    except LoginFailed as exc:
        await asyncio.sleep(exc.delay_seconds)
        return _login_form(request, context, status=401, error=message(request, str(exc)), username=username)
    except AccountLocked as exc:
        return _login_form(request, context, status=423, error=message(request, str(exc)), username=username)
    except InvalidInput as exc:
        return _login_form(request, context, status=422, error=message(request, str(exc)), username=username)
    response = RedirectResponse(_safe_next(next) or home_of(signed.user), status_code=303)
    max_age = int((signed.expires - context.clock.now()).total_seconds())
    response.set_cookie(
        SESSION_COOKIE,
        signed.token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=secure_cookie(request, context),
        path="/",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, context: ContextDep, actor: Annotated[Actor, page(scope="self")]) -> Response:
    """Revoke this session's token and forget the cookie."""
    with Session(context.engine) as session:
        revoke_token(session, token=request.cookies.get(SESSION_COOKIE, ""), clock=context.clock)
    response = redirect("/login", notice="signed_out")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
def home(user: UserDep, actor: Annotated[Actor, page(scope="self")]) -> Response:
    """Each role starts where its work is."""
    return RedirectResponse(home_of(user), status_code=303)


@router.get("/users")
def users_page(
    request: Request,
    session: SessionDep,
    actor: Annotated[Actor, page(Role.city_bureau)],
    error: str | None = None,
    sort: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """Every account, sorted by any column shown; the city bureau switches accounts off and on, resets
    passwords, signs accounts out."""
    rows: list[dict[str, Any]] = []
    code = 200
    try:
        order = user_order(sort)
        with read_unit(session) as conn:
            rows = list_users(conn, order=order)
    except InvalidInput as exc:
        error, code = message(request, str(exc)), 422
    return render(request, "users.html", status=code, rows=rows, error=error, sort=sort or "id")


@router.post("/users/{username}/{action}")
def users_action(
    request: Request,
    username: str,
    action: str,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(Role.city_bureau)],
    password: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    """The same services as the API's /api/users/{username}/… and `dabiao users`."""
    try:
        if action == "disable":
            set_active(session, username=username, active=False, clock=context.clock, actor=actor)
        elif action == "enable":
            set_active(session, username=username, active=True, clock=context.clock, actor=actor)
        elif action == "reset-password":
            reset_password(session, username=username, password=password, clock=context.clock)
        elif action == "revoke-sessions":
            revoke_sessions(session, username=username, clock=context.clock)
        else:
            raise NotFound(f"没有操作 {action} / no action {action}")
    except InvalidInput as exc:
        with read_unit(session) as conn:
            rows = list_users(conn)
        return render(request, "users.html", status=422, rows=rows, error=message(request, str(exc)), sort="id")
    return redirect("/users", notice="account")
