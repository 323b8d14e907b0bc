"""Accounts: users with a role and a scope, argon2 passwords, opaque bearer tokens, and login throttling."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session

from states import InvalidInput, NotFound, Role, WorkflowError
from workflow.actors import Actor
from workflow.clock import Clock
from workflow.db import write_unit
from workflow.listing import Order, order_by, parse_order
from workflow.settings import Settings
from workflow.tables import (
    API_TOKENS,
    DISTRICTS,
    ENTERPRISES,
    LOGIN_THROTTLES,
    REVIEWER_PROFILES,
    SERVER_SECRETS,
    USERS,
)

# OWASP's minimum argon2id settings: strong enough, and a login stays well under 100 ms.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
_DUMMY_HASH = _HASHER.hash("dabiao-no-such-user")
USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{3,80}$")
# Local settings (the plan sets no password rules): the length NIST SP 800-63B asks of a password chosen
# without other rules, plus room for passphrases; the caps bound what a sign-in hashes.
MIN_PASSWORD = 12
MAX_PASSWORD = 256
MAX_USERNAME = 80
COMMON_PASSWORDS_FILE = Path(__file__).parent / "common-passwords.txt"


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


def user_record(conn: sa.Connection, *, user_id: int | None) -> dict[str, Any]:
    """One account as stored (the signed-in user's own record)."""
    row = conn.execute(USERS.select().where(USERS.c.id == user_id)).one()
    return dict(row._asdict())


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


@cache
def _common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip().lower() for w in lines if w.strip() and not w.startswith("#"))


def check_password(password: str, *, username: str) -> None:
    """Refuse a password that is too short or too long, one character (or a short run) repeated, a common
    password (the list shipped in workflow/common-passwords.txt, also with digits or symbols added at its
    end), or built from the username."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"密码至少 {MIN_PASSWORD} 位 / the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"密码最多 {MAX_PASSWORD} 位 / the password may have at most {MAX_PASSWORD} characters")
    if any(password == password[:n] * (len(password) // n) for n in range(1, 5) if len(password) % n == 0):
        raise InvalidInput("密码不能是同一字符或短串的重复 / the password must not repeat one character or a short run")
    lowered = password.lower()
    extras = "0123456789!@#$%^&*()-_=+.?~ "
    core = lowered.strip(extras)
    common = _common_passwords()
    if {lowered, core, lowered.rstrip(extras), lowered.lstrip(extras)} & common:
        raise InvalidInput("密码过于常见，请另选 / the password is too common: choose another")
    name = username.lower()
    rest = lowered.replace(name, "").strip(extras) if len(name) >= 3 else lowered
    if len(rest) < MIN_PASSWORD // 2 or (len(core) >= 3 and core in name):  # the username and a few more
        raise InvalidInput("密码不能由用户名构成 / the password must not be built from the username")


def normal_email(address: str | None) -> str | None:
    """A valid e-mail address (one line, a real domain), normalised; None stays None."""
    if address is None or not address.strip():
        return None
    if any(c in address for c in "\r\n\0") or len(address) > 254:
        raise InvalidInput("电子邮箱地址无效 / not a valid e-mail address (one line, at most 254 characters)")
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidInput(f"电子邮箱地址无效：{address!r} / not a valid e-mail address: {exc}") from None


def _check_new_user(conn: sa.Connection, new: NewUser) -> None:
    if not USERNAME.match(new.username):
        raise InvalidInput("用户名须为3至80位字母、数字或 _.@- / username: 3–80 letters, digits or _.@-")
    check_password(new.password, username=new.username)
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
                email=normal_email(new.email),
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


class SourceLocked(AccountLocked):
    """Too many failures from one address, whatever the accounts."""

    def __init__(self, until: dt.datetime) -> None:
        WorkflowError.__init__(
            self,
            f"此地址登录失败次数过多，请于 {until:%Y-%m-%d %H:%M} UTC 后再试 / too many failed sign-ins from this "
            f"address: try again after {until:%Y-%m-%d %H:%M} UTC",
        )
        self.until = until


def check_login_fields(username: str, password: str) -> None:
    """The caps on what a sign-in may send, checked before anything is looked up or hashed."""
    if len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD:
        raise InvalidInput(
            f"用户名最多 {MAX_USERNAME} 个字符，密码最多 {MAX_PASSWORD} 个字符 / the username may have at most "
            f"{MAX_USERNAME} characters and the password at most {MAX_PASSWORD}"
        )


def _locked(attempt: Any, now: dt.datetime) -> dt.datetime | None:
    if attempt is not None and attempt.locked_until is not None and attempt.locked_until > now:
        return attempt.locked_until  # type: ignore[no-any-return]
    return None


def _recent(attempt: Any, now: dt.datetime, window: dt.timedelta) -> int:
    """The failures of a row that are still remembered (failures older than the window are forgotten)."""
    if attempt is None or attempt.last_failure_at is None or now - attempt.last_failure_at >= window:
        return 0
    return int(attempt.failures)


def _count_failure(
    conn: sa.Connection, *, key: tuple[str, str, str], attempt: Any, now: dt.datetime, lock: bool,
    window: dt.timedelta,
) -> int:  # fmt: skip
    """One more failure under `key` (scope, username, address); locked for `window` when `lock`. Returns
    the failures so far."""
    failures = _recent(attempt, now, window) + 1
    values = {"failures": failures, "last_failure_at": now, "locked_until": now + window if lock else None}
    scope, username, address = key
    if attempt is None:
        conn.execute(sa.insert(LOGIN_THROTTLES).values(scope=scope, username=username, address=address, **values))
    else:
        conn.execute(
            sa.update(LOGIN_THROTTLES)
            .where(
                LOGIN_THROTTLES.c.scope == scope,
                LOGIN_THROTTLES.c.username == username,
                LOGIN_THROTTLES.c.address == address,
            )
            .values(**values)
        )
    return failures


def authenticate(
    session: Session, *, username: str, password: str, clock: Clock, settings: Settings, source: str | None = None
) -> Any:
    """The active user with this name and password.

    Failures are counted in three scopes kept apart (see models.LoginThrottle), none of which lets one
    client lock another out of an account:
    * this account from this address (`source`): answered ever more slowly, then refused for a while after
      `login_lock_after` failures — only from this address;
    * this address, any account: refused for a while after `login_source_lock_after` failures;
    * this account, any address: after `login_account_lock_after` failures from at least
      `login_account_lock_sources` addresses the account is locked for the addresses that failed on it; its
      owner still signs in from an address that has not.

    Raises:
        InvalidInput: a field longer than its cap (nothing hashed). AccountLocked / SourceLocked: too many
        failures lately. LoginFailed: wrong name or password (the same answer for both, with how long the
        caller should wait before answering, to slow guessing down).
    """
    check_login_fields(username, password)
    now = clock.now()
    window = dt.timedelta(minutes=settings.login_lock_minutes)
    address = (source or "")[:64]
    pair, per_address, per_account = ("pair", username, address), ("address", "", address), ("account", username, "")
    with write_unit(session) as conn:
        rows = conn.execute(
            sa.select(LOGIN_THROTTLES).where(
                sa.tuple_(LOGIN_THROTTLES.c.scope, LOGIN_THROTTLES.c.username, LOGIN_THROTTLES.c.address).in_(
                    [pair, per_address, per_account]
                )
            )
        ).all()
        attempts = {(r.scope, r.username, r.address): r for r in rows}
        until = _locked(attempts.get(per_address), now) if address else None
        if until is not None:
            raise SourceLocked(until)
        until = _locked(attempts.get(pair), now)
        failed_here = _recent(attempts.get(pair), now, window) > 0
        if until is None and failed_here:
            until = _locked(attempts.get(per_account), now)
        if until is not None:
            raise AccountLocked(until)
        user = conn.execute(sa.select(USERS).where(USERS.c.username == username, USERS.c.active.is_(True))).first()
        try:
            _HASHER.verify(user.password_hash if user is not None and user.password_hash else _DUMMY_HASH, password)
            ok = user is not None and bool(user.password_hash)
        except (VerificationError, InvalidHashError):
            ok = False
        if ok:
            if pair in attempts:
                conn.execute(
                    sa.delete(LOGIN_THROTTLES).where(
                        LOGIN_THROTTLES.c.scope == "pair",
                        LOGIN_THROTTLES.c.username == username,
                        LOGIN_THROTTLES.c.address == address,
                    )
                )
            return user
        pair_failures = _recent(attempts.get(pair), now, window) + 1
        failures = _count_failure(
            conn, key=pair, attempt=attempts.get(pair), now=now, window=window,
            lock=pair_failures >= settings.login_lock_after,
        )  # fmt: skip
        locked_until = now + window if failures >= settings.login_lock_after else None
        source_failures = _recent(attempts.get(per_address), now, window) + 1
        source_locked = bool(address) and source_failures >= settings.login_source_lock_after
        if address:
            _count_failure(
                conn, key=per_address, attempt=attempts.get(per_address), now=now, window=window, lock=source_locked
            )
        account_failures = _recent(attempts.get(per_account), now, window) + 1
        sources = conn.execute(
            sa.select(sa.func.count()).where(
                LOGIN_THROTTLES.c.scope == "pair",
                LOGIN_THROTTLES.c.username == username,
                LOGIN_THROTTLES.c.last_failure_at > now - window,
            )
        ).scalar_one()
        account_locked = (
            account_failures >= settings.login_account_lock_after and sources >= settings.login_account_lock_sources
        )
        _count_failure(
            conn, key=per_account, attempt=attempts.get(per_account), now=now, window=window, lock=account_locked
        )
    # the failure is recorded (committed) before it is reported
    if source_locked:
        raise SourceLocked(now + window)
    if locked_until is not None or account_locked:
        raise AccountLocked(now + window)
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


@dataclass(frozen=True)
class SignedIn:
    """A successful sign-in: the bearer token, when it expires, and the user."""

    token: str
    expires: dt.datetime
    user: Any


def password_sign_in(
    engine: sa.Engine, username: str, password: str, *, clock: Clock, settings: Settings, source: str | None
) -> SignedIn:
    """Check the name and password (`authenticate`: throttled, locked after repeated failures) and issue a
    token: the one sign-in of the API and the pages."""
    with Session(engine) as session:
        user = authenticate(
            session, username=username, password=password, clock=clock, settings=settings, source=source
        )
        token, expires = issue_token(session, user_id=user.id, clock=clock, settings=settings)
    return SignedIn(token, expires, user)


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


def revoke_all_tokens(conn: sa.Connection, *, user_id: int, now: dt.datetime) -> int:
    """Revoke every live token (API token or page session) of the user; returns how many."""
    result = conn.execute(
        sa.update(API_TOKENS)
        .where(API_TOKENS.c.user_id == user_id, API_TOKENS.c.revoked_at.is_(None), API_TOKENS.c.expires_at > now)
        .values(revoked_at=now)
    )
    return int(result.rowcount or 0)


def _account(conn: sa.Connection, username: str) -> Any:
    user = conn.execute(sa.select(USERS).where(USERS.c.username == username)).first()
    if user is None:
        raise NotFound(f"没有用户 {username} / no user {username}")
    return user


@dataclass(frozen=True)
class AccountChange:
    username: str
    active: bool
    revoked: int  # tokens and sessions revoked


def set_active(
    session: Session, *, username: str, active: bool, clock: Clock, actor: Actor | None = None
) -> AccountChange:
    """Disable an account (it cannot sign in, and every token and session it has dies at once) or enable it
    again. An administrator cannot disable their own account."""
    now = clock.now()
    with write_unit(session) as conn:
        user = _account(conn, username)
        if not active and actor is not None and actor.user_id == user.id:
            raise InvalidInput("不能停用自己的账号 / you cannot disable your own account")
        conn.execute(sa.update(USERS).where(USERS.c.id == user.id).values(active=active))
        revoked = 0 if active else revoke_all_tokens(conn, user_id=user.id, now=now)
    return AccountChange(username, active, revoked)


def reset_password(session: Session, *, username: str, password: str, clock: Clock) -> AccountChange:
    """Give the account a new password (checked like a new one); every token and session it had dies, and
    its failed sign-ins are forgotten."""
    now = clock.now()
    with write_unit(session) as conn:
        user = _account(conn, username)
        check_password(password, username=username)
        conn.execute(sa.update(USERS).where(USERS.c.id == user.id).values(password_hash=_HASHER.hash(password)))
        revoked = revoke_all_tokens(conn, user_id=user.id, now=now)
        conn.execute(sa.delete(LOGIN_THROTTLES).where(LOGIN_THROTTLES.c.username == username))
    return AccountChange(username, bool(user.active), revoked)


def revoke_sessions(session: Session, *, username: str, clock: Clock) -> AccountChange:
    """Sign the account out everywhere: every token and page session it has is revoked."""
    with write_unit(session) as conn:
        user = _account(conn, username)
        revoked = revoke_all_tokens(conn, user_id=user.id, now=clock.now())
    return AccountChange(username, bool(user.active), revoked)


# The sign-in form's nonce: issued by the server (signed with its own secret, with the time it was issued),
# so a nonce a client makes up or plants in a cookie is refused.
LOGIN_NONCE_SECONDS = 3600


def server_secret(engine: sa.Engine, name: str) -> bytes:
    """The server's random secret `name`, made on first use and kept in the database so every process
    serving it agrees."""
    for _ in range(2):
        with engine.connect() as conn:
            value = conn.execute(sa.select(SERVER_SECRETS.c.value).where(SERVER_SECRETS.c.name == name)).scalar()
        if value is not None:
            return bytes.fromhex(value)
        try:
            with engine.begin() as conn:
                conn.execute(sa.insert(SERVER_SECRETS).values(name=name, value=secrets.token_hex(32)))
        except sa.exc.IntegrityError:
            pass  # another process made it first
    raise RuntimeError("the server secret could not be stored")


def _nonce_mac(secret: bytes, body: str) -> str:
    return hmac.new(secret, f"dabiao-login-nonce:{body}".encode(), hashlib.sha256).hexdigest()


def issue_login_nonce(secret: bytes, *, now: dt.datetime) -> str:
    body = f"{secrets.token_urlsafe(18)}.{int(now.timestamp())}"
    return f"{body}.{_nonce_mac(secret, body)}"


def login_nonce_valid(secret: bytes, nonce: str | None, *, now: dt.datetime) -> bool:
    """Was this nonce issued by this server within the last hour?"""
    if not nonce or nonce.count(".") != 2 or len(nonce) > 200:
        return False
    body, _, mac = nonce.rpartition(".")
    if not hmac.compare_digest(_nonce_mac(secret, body), mac):
        return False
    try:
        issued = int(body.rsplit(".", 1)[1])
    except ValueError:
        return False
    return 0 <= now.timestamp() - issued <= LOGIN_NONCE_SECONDS


# the account list's sortable columns, as shown; ties by id
USER_SORTS: dict[str, tuple[sa.ColumnElement[Any], ...]] = {
    "username": (USERS.c.username,),
    "display_name": (USERS.c.display_name,),
    "role": (USERS.c.role,),
    "active": (USERS.c.active,),
}


def user_order(sort: str | None) -> Order:
    """`column` or `-column` of USER_SORTS (the order accounts were made in when empty)."""
    return parse_order(sort, allowed=[*USER_SORTS, "id"], default="id")


def list_users(conn: sa.Connection, *, order: Order | None = None) -> list[dict[str, Any]]:
    """Every account with its role, scope and whether it may sign in, in `order` (by id when None)."""
    keys = [*USER_SORTS.get(order.key, ()), USERS.c.id] if order else [USERS.c.id]
    rows = conn.execute(
        sa.select(
            USERS.c.id,
            USERS.c.username,
            USERS.c.display_name,
            USERS.c.role,
            USERS.c.district_code,
            USERS.c.enterprise_id,
            USERS.c.email,
            USERS.c.active,
        ).order_by(*order_by(keys, descending=order is not None and order.descending))
    ).all()
    return [r._asdict() for r in rows]
