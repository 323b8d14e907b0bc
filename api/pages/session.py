"""Signing in and out of the pages, and the start page of each role."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from api.deps import ContextDep
from api.pages.access import (
    LOGIN_COOKIE,
    PUBLIC_PAGE,
    SESSION_COOKIE,
    UserDep,
    check_csrf,
    csrf_token,
    new_nonce,
    page,
)
from api.pages.render import home_of, message, redirect, render
from workflow.accounts import AccountLocked, LoginFailed, authenticate, issue_token, revoke_token
from workflow.actors import Actor

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str | None:
    """Only a path of this site (never //host or a scheme) may follow the sign-in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def _login_form(request: Request, *, status: int = 200, error: str | None = None, username: str = "") -> Response:
    nonce = request.cookies.get(LOGIN_COOKIE) or new_nonce()
    response = render(
        request,
        "login.html",
        status=status,
        login_csrf=csrf_token(nonce, "login"),
        error=error,
        username=username,
        next=_safe_next(request.query_params.get("next")) or "",
    )
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=3600, httponly=True, samesite="lax", path="/login")
    return response


@router.get("/login", dependencies=[PUBLIC_PAGE])
def login_page(request: Request, user: UserDep) -> Response:
    if user is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")) or home_of(user), 303)
    return _login_form(request)


@router.post("/login", dependencies=[PUBLIC_PAGE])
async def login(
    request: Request,
    context: ContextDep,
    username: Annotated[str, Form(max_length=80)],
    password: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """The same sign-in as the API (throttled, locked after repeated failures); the token goes into an
    HttpOnly cookie."""
    await check_csrf(request, request.cookies.get(LOGIN_COOKIE), "login")

    def work() -> tuple[str, Any, Any]:
        with Session(context.engine) as session:
            user = authenticate(
                session,
                username=username,
                password=password,
                clock=context.clock,
                settings=context.settings,
                source=request.client.host if request.client else None,
            )
            token, expires = issue_token(session, user_id=user.id, clock=context.clock, settings=context.settings)
            return token, expires, user

    try:
        token, expires, user = await run_in_threadpool(work)
    except LoginFailed as exc:
        await asyncio.sleep(exc.delay_seconds)
        return _login_form(request, status=401, error=message(request, str(exc)), username=username)
    except AccountLocked as exc:
        return _login_form(request, status=423, error=message(request, str(exc)), username=username)
    response = RedirectResponse(_safe_next(next) or home_of(user), status_code=303)
    max_age = int((expires - context.clock.now()).total_seconds())
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https" or context.settings.public_url.startswith("https://"),
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
