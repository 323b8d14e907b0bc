"""A rendered mail as an RFC 5322 message: headers, a stable Message-ID, plain text and HTML alternatives."""

from __future__ import annotations

import datetime as dt
import hashlib
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr

from notifications.render import Rendered

FALLBACK_DOMAIN = "dabiao"


def mail_domain(mail_from: str) -> str:
    """The domain of the configured sender (the right-hand side of our Message-IDs)."""
    address = parseaddr(mail_from)[1]
    domain = address.rpartition("@")[2].strip().lower()
    return domain if domain and domain.isascii() and "." in domain else FALLBACK_DOMAIN


def message_id_for(dedupe_key: str, domain: str = FALLBACK_DOMAIN) -> str:
    """The Message-ID of an outbox row: derived from its dedupe key, so every retry carries the same one."""
    return f"<{hashlib.sha256(dedupe_key.encode('utf-8')).hexdigest()[:32]}@{domain}>"


def envelope_sender(mail_from: str) -> str:
    return parseaddr(mail_from)[1] or mail_from


def _one_line(text: str) -> str:
    return " ".join(text.split())


def compose(
    rendered: Rendered,
    *,
    mail_from: str,
    to: str,
    to_name: str | None,
    message_id: str,
    date: dt.datetime,
    lang: str,
    kind: str,
    outbox_id: int,
) -> EmailMessage:
    msg = EmailMessage(policy=policy.default)
    msg["From"] = mail_from
    msg["To"] = formataddr((_one_line(to_name), to)) if to_name else to
    msg["Subject"] = rendered.subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    msg["X-Dabiao-Kind"] = kind
    msg["X-Dabiao-Outbox-Id"] = str(outbox_id)
    text_cte = None if rendered.text.isascii() else "base64"
    html_cte = None if rendered.html.isascii() else "base64"
    msg.set_content(rendered.text, subtype="plain", charset="utf-8", cte=text_cte)
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8", cte=html_cte)
    msg["Content-Language"] = lang  # after the content: setting content clears Content-* headers
    return msg


def needs_smtputf8(*addresses: str) -> bool:
    return not all(a.isascii() for a in addresses)


def to_bytes(msg: EmailMessage, *, smtputf8: bool = False, crlf: bool = True) -> bytes:
    """The wire form (CRLF) for SMTP, or LF line ends for a file on disk."""
    chosen = policy.SMTPUTF8 if smtputf8 else policy.SMTP
    if not crlf:
        chosen = chosen.clone(linesep="\n")
    return msg.as_bytes(policy=chosen)
