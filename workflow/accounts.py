"""Accounts: users with a role and a scope, argon2 passwords, opaque bearer tokens, and login throttling."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session

from states import InvalidInput, Role, WorkflowError
from workflow.actors import Actor
from workflow.clock import Clock
from workflow.db import write_unit
from workflow.settings import Settings
from workflow.tables import API_TOKENS, DISTRICTS, ENTERPRISES, LOGIN_ATTEMPTS, REVIEWER_PROFILES, USERS

# OWASP's minimum argon2id settings: strong enough, and a login stays well under 100 ms.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
_DUMMY_HASH = _HASHER.hash("dabiao-no-such-user")
USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{3,80}$")
MIN_PASSWORD = 10


class LoginFailed(WorkflowError):
    code = "login_failed"

    def __init__(self, message: str, *, delay_seconds: float = 0.0) -> None:
        super().__init__(message)
        self.delay_seconds = delay_seconds


class AccountLocked(WorkflowError):
    code = "account_locked"

    def __init__(self, until: dt.datetime) -> None:
        super().__init__(
            f"登录失败次数过多，账号已锁定至 {until:%Y-%m-%d %H:%M} UTC / too many failed logins: "
            f"the account is locked until {until:%Y-%m-%d %H:%M} UTC"
        )
        self.until = until


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def actor_of(user: Any) -> Actor:
    """The engine's view of a signed-in user."""
    return Actor(
        name=user.username,
        role=Role(user.role),
        district_code=user.district_code,
        enterprise_id=user.enterprise_id,
        user_id=user.id,
    )


@dataclass(frozen=True)
class NewUser:
    username: str
    password: str
    role: Role
    display_name: str
    district_code: str | None = None
    enterprise_id: int | None = None
    email: str | None = None
    lang: str = "zh-CN"
    organisation: str | None = None  # reviewers: their employer
    trained_on: dt.date | None = None  # reviewers: when they passed the training


def _check_new_user(conn: sa.Connection, new: NewUser) -> None:
    if not USERNAME.match(new.username):
        raise InvalidInput("用户名须为3至80位字母、数字或 _.@- / username: 3–80 letters, digits or _.@-")
    if len(new.password) < MIN_PASSWORD:
        raise InvalidInput(f"密码至少 {MIN_PASSWORD} 位 / the password must have at least {MIN_PASSWORD} characters")
    if new.lang not in ("zh-CN", "en"):
        raise InvalidInput("语言须为 zh-CN 或 en / language must be zh-CN or en")
    needs_district = new.role in (Role.district_bureau, Role.local_government)
    if needs_district != (new.district_code is not None):
        raise InvalidInput(
            "辖区局和属地政府账号须指定辖区，其他角色不得指定 / district bureaus and local governments need a "
            "district; other roles take none"
        )
    if (
        new.district_code is not None
        and conn.execute(sa.select(DISTRICTS.c.code).where(DISTRICTS.c.code == new.district_code)).first() is None
    ):
        raise InvalidInput(f"辖区 {new.district_code} 不存在 / unknown district: {new.district_code}")
    if (new.role is Role.enterprise) != (new.enterprise_id is not None):
        raise InvalidInput("企业账号须指定企业，其他角色不得指定 / enterprise accounts need a firm; others take none")
    if (
        new.enterprise_id is not None
        and conn.execute(sa.select(ENTERPRISES.c.id).where(ENTERPRISES.c.id == new.enterprise_id)).first() is None
    ):
        raise InvalidInput(f"企业 {new.enterprise_id} 不存在 / no such enterprise: {new.enterprise_id}")
    if new.role is Role.reviewer and not (new.organisation or "").strip():
        raise InvalidInput("评定人员须填写所在单位 / reviewers need their organisation")
    if conn.execute(sa.select(USERS.c.id).where(USERS.c.username == new.username)).first() is not None:
        raise InvalidInput(f"用户名 {new.username} 已存在 / username {new.username} is taken")


def create_user(session: Session, *, new: NewUser, clock: Clock, employer_enterprise_id: int | None = None) -> int:
    """Create an account (and, for a reviewer, its place in the evaluator pool); returns its id."""
    with write_unit(session) as conn:
        _check_new_user(conn, new)
        result = conn.execute(
            sa.insert(USERS).values(
                username=new.username,
                display_name=new.display_name,
                role=new.role.value,
                district_code=new.district_code,
                enterprise_id=new.enterprise_id,
                organisation=new.organisation,
                email=new.email,
                lang=new.lang,
                password_hash=_HASHER.hash(new.password),
                active=True,
                created_at=clock.now(),
            )
        )
        assert result.inserted_primary_key is not None
        user_id = int(result.inserted_primary_key[0])
        if new.role is Role.reviewer:
            conn.execute(
                sa.insert(REVIEWER_PROFILES).values(
                    user_id=user_id,
                    organisation=(new.organisation or "").strip(),
                    employer_enterprise_id=employer_enterprise_id,
                    trained_on=new.trained_on,
                    active=True,
                )
            )
    return user_id


def _delay(settings: Settings, failures: int) -> float:
    if failures <= 1:
        return 0.0
    return float(min(settings.login_delay_seconds * 2 ** (failures - 2), settings.login_delay_max_seconds))


def _locked(attempt: Any, now: dt.datetime) -> dt.datetime | None:
    if attempt is not None and attempt.locked_until is not None and attempt.locked_until > now:
        return attempt.locked_until  # type: ignore[no-any-return]
    return None


def _count_failure(
    conn: sa.Connection, *, key: str, attempt: Any, now: dt.datetime, limit: int, settings: Settings
) -> tuple[int, dt.datetime | None]:
    """One more failure under `key`; returns (failures so far, locked until) — locked once `limit` is hit.
    Failures older than the lock period are forgotten."""
    window = dt.timedelta(minutes=settings.login_lock_minutes)
    recent = attempt is not None and attempt.last_failure_at is not None and now - attempt.last_failure_at < window
    failures = (attempt.failures if recent else 0) + 1
    locked_until = now + window if failures >= limit else None
    values = {"failures": 0 if locked_until else failures, "last_failure_at": now, "locked_until": locked_until}
    if attempt is None:
        conn.execute(sa.insert(LOGIN_ATTEMPTS).values(username=key, **values))
    else:
        conn.execute(sa.update(LOGIN_ATTEMPTS).where(LOGIN_ATTEMPTS.c.username == key).values(**values))
    return failures, locked_until


def authenticate(
    session: Session, *, username: str, password: str, clock: Clock, settings: Settings, source: str | None = None
) -> Any:
    """The active user with this name and password.

    Failures are counted per account (locked after `login_lock_after`) and, when the caller's address is
    given as `source`, per address too (locked after `login_source_lock_after`), so one address cannot try
    one password against many accounts either.

    Raises:
        AccountLocked: too many failures lately. LoginFailed: wrong name or password (the same answer for
        both, with how long the caller should wait before answering, to slow guessing down).
    """
    now = clock.now()
    source_key = f"@{source}"[:80] if source else None
    with write_unit(session) as conn:
        keys = [username] + ([source_key] if source_key else [])
        attempts = {
            row.username: row
            for row in conn.execute(sa.select(LOGIN_ATTEMPTS).where(LOGIN_ATTEMPTS.c.username.in_(keys)))
        }
        for key in keys:
            until = _locked(attempts.get(key), now)
            if until is not None:
                raise AccountLocked(until)
        user = conn.execute(sa.select(USERS).where(USERS.c.username == username, USERS.c.active.is_(True))).first()
        try:
            _HASHER.verify(user.password_hash if user is not None and user.password_hash else _DUMMY_HASH, password)
            ok = user is not None and bool(user.password_hash)
        except (VerificationError, InvalidHashError):
            ok = False
        if ok:
            if username in attempts:
                conn.execute(sa.delete(LOGIN_ATTEMPTS).where(LOGIN_ATTEMPTS.c.username == username))
            return user
        failures, locked_until = _count_failure(
            conn,
            key=username,
            attempt=attempts.get(username),
            now=now,
            limit=settings.login_lock_after,
            settings=settings,
        )
        if source_key is not None:
            _, source_locked = _count_failure(
                conn,
                key=source_key,
                attempt=attempts.get(source_key),
                now=now,
                limit=settings.login_source_lock_after,
                settings=settings,
            )
            locked_until = locked_until or source_locked
    # the failure is recorded (committed) before it is reported
    if locked_until is not None:
        raise AccountLocked(locked_until)
    raise LoginFailed("用户名或密码错误 / wrong username or password", delay_seconds=_delay(settings, failures))


def issue_token(session: Session, *, user_id: int, clock: Clock, settings: Settings) -> tuple[str, dt.datetime]:
    """A new bearer token for the user; only its hash is kept. Returns (token, expiry)."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    expires = now + dt.timedelta(minutes=settings.token_ttl_minutes)
    with write_unit(session) as conn:
        conn.execute(
            sa.insert(API_TOKENS).values(
                token_hash=hash_token(token), user_id=user_id, created_at=now, expires_at=expires
            )
        )
    return token, expires


def user_for_token(conn: sa.Connection, *, token: str, clock: Clock) -> Any:
    """The active user a live token belongs to, or None."""
    return conn.execute(
        sa.select(USERS)
        .join(API_TOKENS, API_TOKENS.c.user_id == USERS.c.id)
        .where(
            API_TOKENS.c.token_hash == hash_token(token),
            API_TOKENS.c.revoked_at.is_(None),
            API_TOKENS.c.expires_at > clock.now(),
            USERS.c.active.is_(True),
        )
    ).first()


def revoke_token(session: Session, *, token: str, clock: Clock) -> bool:
    with write_unit(session) as conn:
        result = conn.execute(
            sa.update(API_TOKENS)
            .where(API_TOKENS.c.token_hash == hash_token(token), API_TOKENS.c.revoked_at.is_(None))
            .values(revoked_at=clock.now())
        )
    return result.rowcount == 1
