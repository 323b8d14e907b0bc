"""Who a message goes to: the row's own address, else the firm's e-mail from the directory, the campaign's
mailboxes (district bureau, city bureau, support center, local government) or a user's address."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email

from workflow.campaign import Campaign
from workflow.tables import ENTERPRISES, USERS

# Context keys a writer may use to point a reviewer/user message at a row of `users`.
USER_KEYS = ("user_id", "reviewer_id")


@dataclass(frozen=True)
class Recipient:
    address: str
    name: str | None = None  # for the To header (officials' mailboxes, users)
    greeting: str | None = None  # how the mail addresses them, in the message's language


@dataclass(frozen=True)
class Addressable:
    """What recipient resolution needs to know of an outbox row."""

    id: int
    audience: str
    enterprise_id: int | None
    district_code: str | None
    to_address: str | None
    lang: str
    context: Mapping[str, Any]


class BadAddress(ValueError):
    """The recipient address is not a valid e-mail address (fails that message only)."""


def check_address(address: str) -> str:
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise BadAddress(f"invalid recipient address {address!r}: {exc}") from None


def _user_id(context: Mapping[str, Any]) -> int | None:
    for key in USER_KEYS:
        value = context.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
    return None


def _official(row: Addressable, campaign: Campaign) -> Recipient | None:
    en = row.lang == "en"
    info = campaign.campaign
    if row.audience == "city_bureau":
        greeting = f"city emergency management bureau of {info.city_en}" if en else f"{info.city}应急管理局"
        return Recipient(info.city_bureau_email, f"{info.city}应急管理局", greeting)
    if row.audience == "support_center":
        greeting = f"{info.city_en} emergency support center" if en else f"{info.city}应急保障中心"
        return Recipient(info.support_center_email, f"{info.city}应急保障中心", greeting)
    district = campaign.district(row.district_code) if row.district_code else None
    if district is None:
        return None
    if row.audience == "district_bureau":
        name = f"{district.name}应急管理局"
        greeting = f"emergency management bureau of {district.name_en}" if en else name
        return Recipient(district.bureau_email, name, greeting)
    if row.audience == "local_government":
        greeting = f"local government of {district.name_en}" if en else district.local_government
        return Recipient(district.local_government_email, district.local_government, greeting)
    return None


def resolve(conn: sa.Connection, rows: Iterable[Addressable], *, campaign: Campaign) -> dict[int, Recipient | None]:
    """Each row's recipient, or None when nobody can be found (the row is then marked `no_recipient`)."""
    rows = list(rows)
    firm_ids = {r.enterprise_id for r in rows if r.enterprise_id is not None and r.audience == "enterprise"}
    firms: dict[int, str | None] = {}
    if firm_ids:
        query = sa.select(ENTERPRISES.c.id, ENTERPRISES.c.email).where(ENTERPRISES.c.id.in_(firm_ids))
        firms = {int(r.id): r.email for r in conn.execute(query)}
    user_ids = {uid for r in rows if (uid := _user_id(r.context)) is not None}
    users: dict[int, Any] = {}
    if user_ids:
        user_query = sa.select(USERS.c.id, USERS.c.email, USERS.c.display_name).where(
            USERS.c.id.in_(user_ids), USERS.c.active.is_(True)
        )
        users = {int(r.id): r for r in conn.execute(user_query)}

    out: dict[int, Recipient | None] = {}
    for row in rows:
        official = _official(row, campaign)
        uid = _user_id(row.context)
        user = users.get(uid) if uid is not None else None
        if row.to_address:
            name = official.name if official else (user.display_name if user is not None else None)
            out[row.id] = Recipient(row.to_address, name, official.greeting if official else None)
        elif official is not None:
            out[row.id] = official
        elif row.audience == "enterprise" and row.enterprise_id is not None and firms.get(row.enterprise_id):
            out[row.id] = Recipient(str(firms[row.enterprise_id]))
        elif user is not None and user.email:
            out[row.id] = Recipient(str(user.email), user.display_name, user.display_name)
        else:
            out[row.id] = None
    return out
