"""Reads from the hot standby at the HTTP door: who wrote a moment ago reads the primary until the standby
holds that write (a cookie, and a marker in this process for clients that keep no cookies), and a response
read from the standby says how fresh it is (`X-Data-As-Of`; pages say 数据截至 HH:MM:SS when it lags)."""

from __future__ import annotations

import contextlib
import hashlib
import time
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import Request, cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workflow.db import Read, Reads

WROTE_COOKIE = "dabiao_wrote"  # when (epoch seconds) this browser last wrote
SESSION_COOKIE = "dabiao_session"  # the pages' session (api.pages.access)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MARKERS_KEPT = 10_000  # writers remembered in this process (the oldest are let go first)


def credential(headers: Any, cookies: dict[str, str]) -> str | None:
    """Whose request this is (a digest of its bearer token or session cookie), or None for nobody's."""
    secret = None
    auth = headers.get("authorization") or ""
    if auth[:7].lower() == "bearer ":
        secret = auth[7:]
    secret = secret or cookies.get(SESSION_COOKIE)
    return hashlib.blake2b(secret.encode(), digest_size=16).hexdigest() if secret else None


class Writers:
    """When each credential last wrote, in this process (for API clients that keep no cookies)."""

    def __init__(self) -> None:
        self._at: dict[str, float] = {}

    def note(self, who: str, at: float) -> None:
        self._at.pop(who, None)
        self._at[who] = at
        if len(self._at) > MARKERS_KEPT:
            for stale in list(self._at)[: len(self._at) - MARKERS_KEPT]:
                self._at.pop(stale, None)  # (another thread may have let it go already)

    def at(self, who: str | None) -> float | None:
        return self._at.get(who) if who else None


def wrote_at(request: Request, writers: Writers) -> float | None:
    """When the caller last wrote, as far as this request tells (its cookie or this process's marker)."""
    times = [writers.at(credential(request.headers, request.cookies))]
    with contextlib.suppress(ValueError):
        times.append(float(request.cookies.get(WROTE_COOKIE, "")))
    known = [t for t in times if t is not None]
    return max(known) if known else None


def read_from(request: Request) -> Read | None:
    """The standby read of this request, when it read one."""
    read: Read | None = getattr(request.state, "read_from", None)
    return read


class NoteWrites:
    """ASGI middleware: a write that succeeded (a method other than GET/HEAD/OPTIONS answered below 400)
    marks its caller as a writer until the standby can hold the write; a response read from the standby
    carries `X-Data-As-Of`."""

    def __init__(self, app: ASGIApp, *, reads: Reads, writers: Writers, secure: bool) -> None:
        self.app, self.reads, self.writers, self.secure = app, reads, writers, secure
        # the standby is either past the write or not read at all after this long (see Reads)
        self.max_age = int(reads.max_lag_seconds + reads.check_seconds) + 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        writing = scope["method"] not in SAFE_METHODS

        async def send_noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if writing and message["status"] < 400:
                    at = time.time()
                    request_headers = MutableHeaders(scope=scope)
                    who = credential(request_headers, cookie_parser(request_headers.get("cookie", "")))
                    if who:
                        self.writers.note(who, at)
                    cookie = f"{WROTE_COOKIE}={at:.3f}; Max-Age={self.max_age}; Path=/; HttpOnly; SameSite=Lax"
                    headers.append("set-cookie", cookie + ("; Secure" if self.secure else ""))
                read = scope.get("state", {}).get("read_from")
                if isinstance(read, Read) and read.as_of is not None:
                    headers["x-data-as-of"] = read.as_of.isoformat(timespec="seconds")
            await send(message)

        await self.app(scope, receive, send_noting)
