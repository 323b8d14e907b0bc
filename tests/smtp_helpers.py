"""A real SMTP server (aiosmtpd) on loopback for tests: it records what it accepted and can be told to refuse
a recipient with a given reply (550 for a bad address, 451 for "try later")."""

from __future__ import annotations

import email
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from workflow.settings import Settings

MAIL_FROM = "dabiao@changzhou.example.com"


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def text(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content())

    def html(self) -> str:
        part = self.message.get_body(("html",))
        assert part is not None
        return str(part.get_content())


class Inbox:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self.refuse: dict[str, str] = {}  # recipient → the server's reply, e.g. "550 5.1.1 No such user"

    def add(self, received: Received) -> None:
        with self._lock:
            self._messages.append(received)

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.rcpt_tos]

    def copies_by_message_id(self) -> Counter[str]:
        return Counter(m.message_id for m in self.messages)


class _Handler:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.inbox.refuse.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.inbox.add(Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpServer:
    """Start, stop and start again on the same port (a server that goes down and comes back)."""

    def __init__(self, *, port: int | None = None, **smtp_options: Any) -> None:
        self.port = port or free_port()
        self.inbox = Inbox()
        self.smtp_options = {"enable_SMTPUTF8": True, **smtp_options}
        self._controller: Controller | None = None

    def start(self) -> None:
        assert self._controller is None
        controller = Controller(_Handler(self.inbox), hostname="127.0.0.1", port=self.port, **self.smtp_options)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "smtp_host": "127.0.0.1",
            "smtp_port": self.port,
            "smtp_timeout_seconds": 5,
            "mail_from": MAIL_FROM,
            "public_url": "https://dabiao.changzhou.example.com",
            **overrides,
        }
        return Settings(**values)


@contextmanager
def running_smtp(*, started: bool = True, **smtp_options: Any) -> Iterator[SmtpServer]:
    server = SmtpServer(**smtp_options)
    if started:
        server.start()
    try:
        yield server
    finally:
        server.stop()


def maildir_settings(directory: Path, **overrides: Any) -> Settings:
    """No SMTP host: messages become .eml files in `directory`."""
    return Settings(smtp_host=None, mail_dir=directory, mail_from=MAIL_FROM, **overrides)
