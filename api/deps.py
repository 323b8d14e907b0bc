"""Shared FastAPI dependencies: the app's context, a database session, the signed-in user and role checks."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlmodel import Session
from starlette.exceptions import HTTPException

from api.reads import Writers, wrote_at
from states import NotAllowed, Role
from workflow.accounts import actor_of, user_for_token
from workflow.actors import Actor
from workflow.campaign import Campaign
from workflow.clock import Clock
from workflow.context import Context
from workflow.db import Reads, read_unit
from workflow.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    campaign: Campaign
    engine: sa.Engine
    clock: Clock
    scheduler_running: Callable[[], bool] | None = None  # set when `dabiao serve` runs the scheduler in-process
    reads: Reads | None = None  # the hot standby (DABIAO_READ_DATABASE_URL), when there is one
    writers: Writers = field(default_factory=Writers)  # who wrote a moment ago (reads them from the primary)

    @property
    def service(self) -> Context:
        """The campaign, clock and settings as the one value service functions take."""
        return Context(self.campaign, self.clock, self.settings)


def client_address(request: Request, settings: Settings) -> str | None:
    """The client's address: the connection's own, unless it comes from a trusted proxy
    (DABIAO_TRUSTED_PROXIES), then the nearest address in X-Forwarded-For that is not a trusted proxy."""
    peer = request.client.host if request.client else None
    networks = settings.proxy_networks
    if peer is None or not networks or not _in(peer, networks):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, networks):
            return hop if _in(hop, None) else peer
    return peer


def _in(address: str, networks: Any) -> bool:
    """Is `address` in one of `networks` (with None: is it an address at all)?"""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return networks is None or any(ip in n for n in networks)


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_session(context: ContextDep) -> Iterator[Session]:
    with Session(context.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_read_session(request: Request, context: ContextDep) -> Iterator[Session]:
    """A session for what only reads and may be a moment old — dashboards, lists, exports, task lists: on
    the hot standby when there is one that answers and keeps up (see `workflow.db.Reads`), and not for a
    caller who wrote since the standby's data was taken; else on the primary, as `get_session`. Sign-in,
    tokens and anything that writes stay on `SessionDep` (the primary)."""
    if context.reads is None:
        with Session(context.engine) as session:
            yield session
        return
    with context.reads.reading(wrote_at=wrote_at(request, context.writers)) as read:
        if read.replica:
            request.state.read_from = read
        with Session(read.bind) as session:
            yield session


ReadSessionDep = Annotated[Session, Depends(get_read_session)]

bearer = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


def current_user(
    context: ContextDep, session: SessionDep, token: Annotated[str | None, Depends(bearer)], *, reading: bool = False
) -> Any:
    """The active user of a live bearer token (401 otherwise), looked up on every request, so a revoked
    token or a disabled account is refused at once.

    Args:
        reading: the request only reads (GET, HEAD). On PostgreSQL the lookup then opens the request's
            read, which the route's `read_unit` continues and ends: one pooled connection, one transaction
            (and one pre-ping) a request instead of two. Under READ COMMITTED every statement reads the
            latest commits, so nothing is staler for it. Otherwise (SQLite, where a read transaction holds a
            snapshot, and every write) the lookup is a read of its own, ended at once; on PostgreSQL a
            single statement in autocommit.
    """
    if token:
        engine = session.get_bind()
        if reading and engine.dialect.name == "postgresql":
            user = user_for_token(session.connection(), token=token, clock=context.clock)
        elif engine.dialect.name == "postgresql" and isinstance(engine, sa.Engine):
            # a write begins its own unit after this: the lookup is one statement outside any transaction
            # (no BEGIN and ROLLBACK around it), on a connection handed straight back to the pool
            with engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT")
                user = user_for_token(conn, token=token, clock=context.clock)
        else:
            with read_unit(session) as conn:
                user = user_for_token(conn, token=token, clock=context.clock)
        if user is not None:
            return user
    raise HTTPException(status_code=401, headers={"WWW-Authenticate": "Bearer"})


READING = frozenset({"GET", "HEAD"})


# The scope words of the access rules, and the kind of record of `workflow.actors` each is judged by
# (None: the rule has no record, or the record is the caller's own account or district).
SCOPE_KINDS: dict[str, str | None] = {
    "none": None,
    "self": None,
    "district": None,
    "enterprise": "firm",
    "hazard": "hazard",
    "application": "application",
    "evidence": "evidence",
    "escalation": "escalation",
    "referral": "referral",
    "reviewer": "review_assignment",
    "reviewer_report": "reviewer_report",
    "guidance": "guidance",
}


@dataclass(frozen=True)
class Access:
    """An access rule of a front door (the API's `Allow`, the pages' `Page`): the roles that may call it
    and the kind of record its scope is judged by. The record itself is judged below, by the service
    (`workflow.actors.require` and the scope predicates), so a route and a page get the same answer."""

    roles: frozenset[Role] | None  # None: anyone signed in
    scope: str = "none"

    def __post_init__(self) -> None:
        if self.scope not in SCOPE_KINDS:
            raise ValueError(f"unknown scope {self.scope!r}: one of {', '.join(SCOPE_KINDS)}")

    @property
    def kind(self) -> str | None:
        """The kind of record (`workflow.actors.SCOPES`) this rule's scope is judged by."""
        return SCOPE_KINDS[self.scope]

    def actor(self, user: Any, what: str = "此功能 / this") -> Actor:
        """The actor of a signed-in user, if its role may use this door (NotAllowed otherwise)."""
        if self.roles is not None and Role(user.role) not in self.roles:
            zh, en = what.split(" / ")
            raise NotAllowed(f"角色 {user.role} 无权使用{zh} / the role {user.role} may not use {en}")
        return actor_of(user)


# An access rule's class: built from (roles, scope), and its instances are the dependency FastAPI calls.
AccessRule = Callable[[frozenset[Role] | None, str], Callable[..., object]]


def rule(cls: AccessRule, *roles: Role, scope: str = "none") -> Any:
    """The one dependency factory of the front doors: `allow(...)` for the API, `page(...)` for the pages.
    Returns FastAPI's `Depends(...)` marker (typed `Any` by FastAPI, as it stands in for a parameter's value)."""
    return Depends(cls(frozenset(roles) if roles else None, scope))


@dataclass(frozen=True)
class Allow(Access):
    """A route's access rule (a bearer token). Every route carries one (a test walks the route table and
    fails on a route without it)."""

    def __call__(
        self,
        request: Request,
        context: ContextDep,
        session: SessionDep,
        token: Annotated[str | None, Depends(bearer)],
    ) -> Actor:
        return self.actor(current_user(context, session, token, reading=request.method in READING))


@dataclass(frozen=True)
class Public:
    """The access rule of a route anyone may call (sign-in, health, metrics)."""

    def __call__(self) -> None:
        return None


def allow(*roles: Role, scope: str = "none") -> Any:
    return rule(Allow, *roles, scope=scope)


PUBLIC = Depends(Public())
OFFICIALS = (Role.city_bureau, Role.support_center, Role.district_bureau)
FIRM_READERS = (*OFFICIALS, Role.enterprise)
