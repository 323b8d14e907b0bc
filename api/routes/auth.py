"""Sign in (OAuth2 password flow, opaque bearer token), sign out, who am I."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import PUBLIC, ContextDep, SessionDep, allow, bearer, client_address
from api.schemas import TokenRead, UserRead
from states import Role
from workflow.accounts import (
    LoginFailed,
    SignedIn,
    password_sign_in,
    revoke_token,
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
