"""Where messages go: an SMTP server (aiosmtplib, one connection per batch) or, without SMTP settings, a folder
of .eml files that any mail program opens."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import aiosmtplib

from workflow.settings import Settings


@dataclass(frozen=True)
class Envelope:
    outbox_id: int
    kind: str
    sender: str  # MAIL FROM
    recipient: str  # RCPT TO
    message_id: str
    created_at: dt.datetime
    data: bytes  # the message in wire form (CRLF)
    smtputf8: bool = False  # an internationalised address: the server must offer SMTPUTF8


class SendFailure(Exception):
    """This message was not accepted. Permanent (5xx, a bad address) fails it; otherwise it is retried."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class BadSmtpSettings(ValueError):
    """The SMTP settings contradict each other."""


class ChannelDown(Exception):
    """The channel takes no message at all right now (server unreachable, login refused, disk unwritable)."""


class Channel(Protocol):
    description: str

    async def send(self, envelope: Envelope) -> None: ...

    async def close(self) -> None: ...


class SmtpChannel:
    """One SMTP connection, opened on the first message and reused for the batch; reopened once if it drops."""

    def __init__(self, settings: Settings) -> None:
        if settings.smtp_tls and settings.smtp_starttls:
            raise BadSmtpSettings("DABIAO_SMTP_TLS (implicit TLS) and DABIAO_SMTP_STARTTLS exclude each other")
        self.settings = settings
        self.description = f"smtp://{settings.smtp_host}:{settings.smtp_port}"
        self._smtp: aiosmtplib.SMTP | None = None

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        smtp = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            use_tls=s.smtp_tls,
            start_tls=s.smtp_starttls,  # explicit: never upgrade (or not) behind the operator's back
            timeout=s.smtp_timeout_seconds,
            username=s.smtp_user or None,
            password=s.smtp_password if s.smtp_user else None,
        )
        try:
            await smtp.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            await _quietly_close(smtp)
            raise ChannelDown(f"login refused by {self.description}: {exc.code} {exc.message}") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            await _quietly_close(smtp)
            raise ChannelDown(f"cannot reach {self.description}: {_describe(exc)}") from None
        return smtp

    async def send(self, envelope: Envelope) -> None:
        if self._smtp is None or not self._smtp.is_connected:
            self._smtp = await self._connect()
        try:
            await self._smtp.sendmail(
                envelope.sender,
                [envelope.recipient],
                envelope.data,
                mail_options=["SMTPUTF8"] if envelope.smtputf8 else None,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0]
            raise SendFailure(f"{refused.code} {refused.message}", permanent=_permanent(refused.code)) from None
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421:  # the server is closing the connection: start a fresh one next time
                await self.close()
            raise SendFailure(f"{exc.code} {exc.message}", permanent=_permanent(exc.code)) from None
        except aiosmtplib.SMTPNotSupported as exc:
            raise SendFailure(f"not supported by the server: {exc}", permanent=True) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            # The connection broke mid-message: we cannot know whether the server kept it, so it is retried
            # later with the same Message-ID.
            await self.close()
            raise SendFailure(f"connection lost: {_describe(exc)}", permanent=False) from None
        except ValueError as exc:  # an address aiosmtplib refuses to put on the wire
            raise SendFailure(f"unusable address: {exc}", permanent=True) from None

    async def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            await _quietly_close(smtp)


class MailDirChannel:
    """Writes each message as `{local date}-{outbox id}-{kind}.eml`; a retry rewrites the same file."""

    def __init__(self, directory: Path, *, tz: ZoneInfo) -> None:
        self.directory = directory
        self.tz = tz
        self.description = f"mail folder {directory}"

    def path_for(self, envelope: Envelope) -> Path:
        day = envelope.created_at.astimezone(self.tz).date().isoformat()
        return self.directory / f"{day}-{envelope.outbox_id:06d}-{envelope.kind}.eml"

    async def send(self, envelope: Envelope) -> None:
        target = self.path_for(envelope)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            data = envelope.data.replace(b"\r\n", b"\n")  # a file on disk gets this system's line ends
            fd, temp = tempfile.mkstemp(dir=self.directory, prefix=f".{target.name}.", suffix=".tmp")
            try:
                os.fchmod(fd, 0o644)  # mkstemp makes it private; a mail folder is meant to be read
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp, target)  # atomic: a reader sees the old file or the new one, never half
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise ChannelDown(f"cannot write {target}: {exc}") from None

    async def close(self) -> None:
        return None


def channel_for(settings: Settings) -> Channel:
    if settings.smtp_enabled:
        return SmtpChannel(settings)
    return MailDirChannel(settings.mail_dir, tz=settings.tz)


def _permanent(code: int) -> bool:
    return 500 <= code < 600


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _quietly_close(smtp: aiosmtplib.SMTP) -> None:
    try:
        if smtp.is_connected:
            await smtp.quit()
    except (aiosmtplib.SMTPException, OSError):
        smtp.close()
