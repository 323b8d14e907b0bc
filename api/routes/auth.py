"""Sign in (OAuth2 password flow, opaque bearer token), sign out, who am I."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import PUBLIC, ContextDep, SessionDep, allow, bearer, client_address
from api.schemas import AccountChangeRead, PasswordWrite, TokenRead, UserRead
from states import Role
from workflow.accounts import (
    LoginFailed,
    SignedIn,
    list_users,
    password_sign_in,
    reset_password,
    revoke_sessions,
    revoke_token,
    set_active,
    user_record,
)
from workflow.actors import Actor
from workflow.db import read_unit

router = APIRouter(prefix="/api", tags=["accounts"])


@router.post("/auth/token", response_model=TokenRead, dependencies=[PUBLIC])
async def sign_in(
    request: Request, context: ContextDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> TokenRead:
    """Exchange a username and password for a bearer token. Repeated failures are answered more slowly,
    then the account is locked for a while."""

    source = client_address(request, context.settings)

    def work() -> SignedIn:
        return password_sign_in(
            context.engine, form.username, form.password, clock=context.clock, settings=context.settings, source=source
        )

    try:
        signed = await run_in_threadpool(work)
    except LoginFailed as exc:
        await asyncio.sleep(exc.delay_seconds)
        raise
    return TokenRead(access_token=signed.token, expires_at=signed.expires)


@router.post("/auth/logout", status_code=204)
def sign_out(
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, allow(scope="self")],
    token: Annotated[str | None, Depends(bearer)],
) -> None:
    """Revoke the token this request carries."""
    revoke_token(session, token=token or "", clock=context.clock)


@router.get("/me", response_model=UserRead)
def me(session: SessionDep, actor: Annotated[Actor, allow(scope="self")]) -> Any:
    """The signed-in account: role and scope."""
    with read_unit(session) as conn:
        user = user_record(conn, user_id=actor.user_id)
    return UserRead.model_validate(user)


# Accounts an administrator (the city bureau) manages: the same services as `dabiao users`.
Admin = Annotated[Actor, allow(Role.city_bureau)]


@router.get("/users")
def users(session: SessionDep, actor: Admin) -> list[dict[str, Any]]:
    """Every account with role, scope and whether it may sign in (city bureau)."""
    with read_unit(session) as conn:
        return list_users(conn)


@router.post("/users/{username}/disable", response_model=AccountChangeRead)
def disable(username: str, context: ContextDep, session: SessionDep, actor: Admin) -> Any:
    """Switch an account off: it cannot sign in, and every token and session it has dies at once."""
    return set_active(session, username=username, active=False, clock=context.clock, actor=actor)


@router.post("/users/{username}/enable", response_model=AccountChangeRead)
def enable(username: str, context: ContextDep, session: SessionDep, actor: Admin) -> Any:
    """Switch an account back on."""
    return set_active(session, username=username, active=True, clock=context.clock, actor=actor)


@router.post("/users/{username}/reset-password", response_model=AccountChangeRead)
def password_reset(username: str, body: PasswordWrite, context: ContextDep, session: SessionDep, actor: Admin) -> Any:
    """Set a new password (checked like a new account's); every token and session of the account dies."""
    return reset_password(session, username=username, password=body.password, clock=context.clock)


@router.post("/users/{username}/revoke-sessions", response_model=AccountChangeRead)
def sessions_revoke(username: str, context: ContextDep, session: SessionDep, actor: Admin) -> Any:
    """Sign the account out everywhere."""
    return revoke_sessions(session, username=username, clock=context.clock)
