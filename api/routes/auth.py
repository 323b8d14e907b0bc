"""Sign in (OAuth2 password flow, opaque bearer token), sign out, who am I."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordRequestForm
from sqlmodel import Session

from api.deps import PUBLIC, ContextDep, SessionDep, allow, bearer
from api.schemas import TokenRead, UserRead
from workflow.accounts import LoginFailed, authenticate, issue_token, revoke_token
from workflow.actors import Actor
from workflow.db import read_unit
from workflow.tables import USERS

router = APIRouter(prefix="/api", tags=["accounts"])


@router.post("/auth/token", response_model=TokenRead, dependencies=[PUBLIC])
async def sign_in(
    request: Request, context: ContextDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> TokenRead:
    """Exchange a username and password for a bearer token. Repeated failures are answered more slowly,
    then the account is locked for a while."""

    def work() -> tuple[str, Any]:
        with Session(context.engine) as session:
            user = authenticate(
                session,
                username=form.username,
                password=form.password,
                clock=context.clock,
                settings=context.settings,
                source=request.client.host if request.client else None,
            )
            return issue_token(session, user_id=user.id, clock=context.clock, settings=context.settings)

    try:
        token, expires = await run_in_threadpool(work)
    except LoginFailed as exc:
        await asyncio.sleep(exc.delay_seconds)
        raise
    return TokenRead(access_token=token, expires_at=expires)


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
        user = conn.execute(USERS.select().where(USERS.c.id == actor.user_id)).one()
    return UserRead.model_validate(user._asdict())
