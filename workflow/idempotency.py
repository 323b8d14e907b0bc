"""Idempotent requests: the first answer to a request sent with an `Idempotency-Key` is kept, so that a
retried request gets that answer back instead of doing the work twice."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from states import InvalidInput
from workflow.tables import IDEMPOTENT_REQUESTS


@dataclass(frozen=True)
class KeptAnswer:
    """The answer given the first time a key was used."""

    status_code: int
    response: Any


def kept_answer(conn: sa.Connection, *, user_id: int, key: str, request_hash: str) -> KeptAnswer | None:
    """The answer kept for this user's `key`, or None when the key is new. A key used before for a
    different request (another hash) is refused."""
    kept = conn.execute(
        sa.select(IDEMPOTENT_REQUESTS).where(IDEMPOTENT_REQUESTS.c.user_id == user_id, IDEMPOTENT_REQUESTS.c.key == key)
    ).first()
    if kept is None:
        return None
    if kept.request_hash != request_hash:
        raise InvalidInput(
            "该 Idempotency-Key 已用于另一个请求 / this Idempotency-Key was used for a different request"
        )
    return KeptAnswer(status_code=kept.status_code, response=kept.response)


def keep_answer(
    conn: sa.Connection,
    *,
    user_id: int,
    key: str,
    request_hash: str,
    response: Any,
    at: dt.datetime,
    status_code: int = 200,
) -> None:
    """Keep the answer to a request, in the same transaction as the work it answers (a second request
    with the same key that races this one fails on the unique key and reads the kept answer)."""
    conn.execute(
        sa.insert(IDEMPOTENT_REQUESTS).values(
            user_id=user_id,
            key=key,
            request_hash=request_hash,
            status_code=status_code,
            response=response,
            created_at=at,
        )
    )
