"""Password rules, e-mail checks, the sign-in nonce and the client's address behind proxies, from tables
written here."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest

from api.deps import client_address
from states import InvalidInput
from workflow.accounts import check_password, issue_login_nonce, login_nonce_valid, normal_email
from workflow.settings import Settings

PASSWORDS = [  # password, username, refused because (None: accepted)
    ("correct horse battery", "city", None),
    ("velocity is key 2023", "city", None),
    ("short pass", "city", "at least 12"),
    ("x" * 257, "city", "at most 256"),
    ("aaaaaaaaaaaa", "city", "repeat"),
    ("abababababab", "city", "repeat"),
    ("password1234", "city", "too common"),
    ("!!Qwerty123456", "city", "too common"),
    ("wujin-2023-!!!", "wujin", "username"),
    ("firmfirmfirm99", "firm", "username"),
]


@pytest.mark.parametrize(("password", "username", "why"), PASSWORDS)
def test_password_rules(password: str, username: str, why: str | None) -> None:
    if why is None:
        check_password(password, username=username)
    else:
        with pytest.raises(InvalidInput, match=why):
            check_password(password, username=username)


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("boss@example.com", True),
        ("  boss@example.com ", True),
        ("x@example.com\r\nBcc: victim@example.com", False),
        ("x@example.com\nBcc: y@example.com", False),
        ("no-at-sign.example.com", False),
        ("a@" + "b" * 260 + ".com", False),
    ],
)
def test_email_addresses(address: str, ok: bool) -> None:
    if ok:
        assert normal_email(address) == "boss@example.com"
    else:
        with pytest.raises(InvalidInput, match="e-mail"):
            normal_email(address)


def test_the_sign_in_nonce_is_the_servers_and_expires() -> None:
    secret, now = b"k" * 32, dt.datetime(2022, 7, 1, tzinfo=dt.UTC)
    nonce = issue_login_nonce(secret, now=now)
    assert login_nonce_valid(secret, nonce, now=now + dt.timedelta(minutes=59))
    assert not login_nonce_valid(secret, nonce, now=now + dt.timedelta(minutes=61))
    assert not login_nonce_valid(b"other" * 8, nonce, now=now)
    assert not login_nonce_valid(secret, "chosen.by.client", now=now)
    assert not login_nonce_valid(secret, nonce[:-1] + ("0" if nonce[-1] != "0" else "1"), now=now)


def request(peer: str, forwarded: str | None = None) -> Any:
    headers = {"x-forwarded-for": forwarded} if forwarded else {}
    return SimpleNamespace(
        client=SimpleNamespace(host=peer),
        headers=SimpleNamespace(getlist=lambda name: [headers[name]] if name in headers else []),
    )


@pytest.mark.parametrize(
    ("proxies", "peer", "forwarded", "client"),
    [
        ("", "127.0.0.1", "198.51.100.7", "127.0.0.1"),  # no trusted proxy: the header is ignored
        ("10.0.0.0/8", "203.0.113.5", "198.51.100.7", "203.0.113.5"),  # not from a trusted proxy
        ("10.0.0.0/8", "10.1.2.3", "198.51.100.7", "198.51.100.7"),
        ("10.0.0.0/8", "10.1.2.3", "192.0.2.1, 198.51.100.7, 10.9.9.9", "198.51.100.7"),  # nearest untrusted
        ("10.0.0.0/8", "10.1.2.3", "not-an-address", "10.1.2.3"),
        ("10.0.0.0/8", "10.1.2.3", None, "10.1.2.3"),
    ],
)
def test_client_address_behind_proxies(proxies: str, peer: str, forwarded: str | None, client: str) -> None:
    assert client_address(request(peer, forwarded), Settings(trusted_proxies=proxies)) == client


def test_a_bad_trusted_proxy_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="DABIAO_TRUSTED_PROXIES"):
        Settings(trusted_proxies="10.0.0.0/8, proxy.example.com")
