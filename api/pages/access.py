"""Who may open a page: the session cookie (an opaque token from `issue_token`, HttpOnly, SameSite=Lax),
the role rules of the JSON API, and a CSRF token on every form (an HMAC of the session token, so a page
of another site can neither read nor forge it)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from api.deps import Access, ContextDep, SessionDep, rule
from api.reads import SESSION_COOKIE as SESSION_COOKIE  # named here for the pages
from states import Role
from workflow.accounts import user_for_token
from workflow.actors import Actor
from workflow.db import read_unit

LOGIN_COOKIE = "dabiao_login"  # a nonce for the sign-in form's CSRF token, before there is a session
LANG_COOKIE = "dabiao_lang"
FLASH_COOKIE = "dabiao_flash"
CSRF_FIELD = "csrf"


class SignInRequired(Exception):
    """No live session: the page answers with the sign-in form."""


class CsrfRefused(Exception):
    """A form came without the token of this session (stale page, or sent by another site)."""


def csrf_token(secret: str, purpose: str = "form") -> str:
    return hmac.new(secret.encode("utf-8"), f"dabiao-csrf:{purpose}".encode(), hashlib.sha256).hexdigest()


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def token_matches(expected: str, given: Any) -> bool:
    return isinstance(given, str) and hmac.compare_digest(expected, given)


async def check_csrf(request: Request, secret: str | None, purpose: str = "form") -> None:
    form = await request.form()
    if not secret or not token_matches(csrf_token(secret, purpose), form.get(CSRF_FIELD)):
        raise CsrfRefused()


def page_user(request: Request, context: ContextDep, session: SessionDep) -> Any:
    """The signed-in user of this request (kept on request.state for the templates), or None."""
    if hasattr(request.state, "user"):
        return request.state.user
    user = None
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with read_unit(session) as conn:
            user = user_for_token(conn, token=token, clock=context.clock)
    request.state.user = user
    return user


UserDep = Annotated[Any, Depends(page_user)]


@dataclass(frozen=True)
class Page(Access):
    """A page's access rule, the API's rule (`api.deps.Access`) on the session cookie: without a live
    session the page answers with the sign-in form. Every page route carries one; a test walks them all.
    A form (POST) must carry this session's CSRF token, checked before anything else is done."""

    async def __call__(self, request: Request, user: UserDep) -> Actor:
        if user is None:
            raise SignInRequired()
        if request.method == "POST":
            await check_csrf(request, request.cookies.get(SESSION_COOKIE))
        return self.actor(user, "此页面 / this page")


@dataclass(frozen=True)
class PagePublic:
    """The rule of a page anyone may open (the sign-in form)."""

    def __call__(self) -> None:
        return None


def page(*roles: Role, scope: str = "none") -> Any:
    return rule(Page, *roles, scope=scope)


PUBLIC_PAGE = Depends(PagePublic())
OFFICIALS = (Role.city_bureau, Role.support_center, Role.district_bureau)
CITY = (Role.city_bureau, Role.support_center)
FIRM_READERS = (*OFFICIALS, Role.enterprise)
REFERRAL_READERS = (*OFFICIALS, Role.local_government)
