"""The firm's safety code (常安码): a stable, signed token per firm that cannot be guessed from another, its QR
image (one firm as PNG, a district's printable sheet as PDF), and the two things a scan may open — the firm's
supervision page for a signed-in officer of its district (or the city), and a public page that shows only the
firm's name and its campaign status.

The token is `<firm id>-<HMAC-SHA256 of the id under the database's code key, base32, 26 characters>`; the key
is made once per database (table `safety_code_keys`), so every process and every printed sheet agree."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import io
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import segno
import sqlalchemy as sa

from states import NotFound, OutOfScope, Role
from workflow.actors import Actor, in_scope
from workflow.clock import Clock, today
from workflow.engine import load_firm
from workflow.tables import CERTIFICATIONS, ENTERPRISES, SAFETY_CODE_KEYS

SIGNATURE_CHARS = 26  # 130 bits of the HMAC
SCANNERS = (Role.city_bureau, Role.support_center, Role.district_bureau)
NOT_FOUND = "找不到该安全码 / no such safety code"


def code_key(conn: sa.Connection) -> bytes:
    """The database's code key, made on first use in a transaction of its own (two processes racing both
    read the oldest row afterwards). Not to be called inside a write unit on SQLite."""
    query = sa.select(SAFETY_CODE_KEYS.c.secret).order_by(SAFETY_CODE_KEYS.c.id).limit(1)
    secret = conn.execute(query).scalar_one_or_none()
    if secret is None:
        with conn.engine.begin() as writer:
            writer.execute(
                sa.insert(SAFETY_CODE_KEYS).values(secret=secrets.token_hex(32), created_at=dt.datetime.now(dt.UTC))
            )
        with conn.engine.connect() as reader:
            secret = reader.execute(query).scalar_one()
    return bytes.fromhex(secret)


def _signature(key: bytes, enterprise_id: int) -> str:
    mac = hmac.new(key, f"dabiao-safety-code:{enterprise_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode("ascii").lower()[:SIGNATURE_CHARS]


def code_for(key: bytes, enterprise_id: int) -> str:
    return f"{enterprise_id}-{_signature(key, enterprise_id)}"


def enterprise_of(key: bytes, token: str) -> int:
    """The firm a token names; NotFound for anything not signed with this database's key."""
    head, _, signature = (token or "").strip().lower().partition("-")
    if not head.isdigit() or len(head) > 12 or len(signature) != SIGNATURE_CHARS:
        raise NotFound(NOT_FOUND)
    enterprise_id = int(head)
    if not hmac.compare_digest(_signature(key, enterprise_id), signature):
        raise NotFound(NOT_FOUND)
    return enterprise_id


def code_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/code/{token}"


@dataclass(frozen=True)
class PublicStatus:
    """All the public page shows: the firm's name and its campaign status."""

    name: str
    status: str  # benchmark / compliant / in_progress / closed
    label: str
    label_en: str
    valid_until: dt.date | None
    expired: bool


STATUS_LABELS = {
    "benchmark": ("标杆", "benchmark"),
    "compliant": ("达标", "compliant"),
    "in_progress": ("创建中", "working towards compliance"),
    "closed": ("已关闭", "closed"),
}


def public_status(conn: sa.Connection, *, key: bytes, token: str, clock: Clock) -> PublicStatus:
    enterprise_id = enterprise_of(key, token)
    firm = conn.execute(
        sa.select(ENTERPRISES.c.name, ENTERPRISES.c.state).where(ENTERPRISES.c.id == enterprise_id)
    ).first()
    if firm is None:
        raise NotFound(NOT_FOUND)
    status, valid_until = "in_progress", None
    if firm.state == "closed":
        status = "closed"
    elif firm.state == "certified":
        cert = conn.execute(
            sa.select(CERTIFICATIONS.c.level, CERTIFICATIONS.c.valid_until)
            .where(CERTIFICATIONS.c.enterprise_id == enterprise_id, CERTIFICATIONS.c.revoked_at.is_(None))
            .order_by(CERTIFICATIONS.c.id.desc())
            .limit(1)
        ).first()
        if cert is not None:
            status = "benchmark" if cert.level == "benchmark" else "compliant"
            valid_until = cert.valid_until
    zh, en = STATUS_LABELS[status]
    return PublicStatus(
        name=firm.name,
        status=status,
        label=zh,
        label_en=en,
        valid_until=valid_until,
        expired=valid_until is not None and valid_until < today(clock),
    )


def scan(conn: sa.Connection, *, key: bytes, token: str, actor: Actor) -> int:
    """The firm an officer's scan opens: only an officer who may supervise it (its district's bureau, the city);
    a forged code or another district's firm opens nothing (not found)."""
    enterprise_id = enterprise_of(key, token)
    firm = load_firm(conn, enterprise_id=enterprise_id)
    if actor.role not in SCANNERS or not in_scope(actor, firm):
        raise OutOfScope(NOT_FOUND)
    return enterprise_id


def firm_code(conn: sa.Connection, *, enterprise_id: int, actor: Actor) -> str:
    """The token of a firm the actor may see (the firm itself, its district, the city)."""
    firm = load_firm(conn, enterprise_id=enterprise_id)
    if not in_scope(actor, firm):
        raise OutOfScope(f"找不到该企业 / no such enterprise: {enterprise_id}")
    return code_for(code_key(conn), enterprise_id)


def qr_png(url: str, *, scale: int = 8) -> bytes:
    out = io.BytesIO()
    segno.make_qr(url, error="m").save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


# ---- a district's sheet for printing: a PDF of A4 pages, 3 × 4 codes each, name and USCC under each ----------

A4 = (595.28, 841.89)
COLUMNS, ROWS = 3, 4
CELL_W, CELL_H = A4[0] / COLUMNS, (A4[1] - 60) / ROWS
QR_SIZE = 130.0


def _pdf_text(text: str) -> str:
    """A string for the CJK font (UCS-2 big-endian, hex)."""
    return "<" + "".join(f"{ord(ch):04X}" for ch in text if ord(ch) <= 0xFFFF) + ">"


def _ascii(text: str) -> str:
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def _qr_ops(url: str, x: float, y: float, size: float) -> list[str]:
    qr = segno.make_qr(url, error="m")
    matrix = [list(row) for row in qr.matrix]
    n = len(matrix) + 8  # quiet zone of four modules
    module = size / n
    ops = ["0 g"]
    for r, row in enumerate(matrix):
        c = 0
        while c < len(row):
            if row[c]:
                start = c
                while c < len(row) and row[c]:
                    c += 1
                left = x + (start + 4) * module
                top = y + size - (r + 4) * module
                ops.append(f"{left:.2f} {top - module:.2f} {(c - start) * module:.2f} {module:.2f} re")
            else:
                c += 1
    ops.append("f")
    return ops


def district_sheet_pdf(firms: Iterable[Any], *, key: bytes, base_url: str, title: str, note: str) -> bytes:
    """A printable PDF: each firm's code with its name and USCC (CJK text in the reader's STSong-Light)."""
    pages: list[list[str]] = []
    ops: list[str] = []
    for n, firm in enumerate(firms):
        slot = n % (COLUMNS * ROWS)
        if slot == 0:
            if ops:
                pages.append(ops)
            ops = [
                "BT /F1 14 Tf 40 805 Td " + _pdf_text(title) + " Tj ET",
                "BT /F1 8 Tf 40 790 Td " + _pdf_text(note) + " Tj ET",
            ]
        col, row = slot % COLUMNS, slot // COLUMNS
        x0 = col * CELL_W
        y0 = A4[1] - 60 - (row + 1) * CELL_H
        qx = x0 + (CELL_W - QR_SIZE) / 2
        ops.extend(_qr_ops(code_url(base_url, code_for(key, firm.id)), qx, y0 + 40, QR_SIZE))
        name = str(firm.name)
        ops.append(f"BT /F1 9 Tf {x0 + 12:.2f} {y0 + 26:.2f} Td {_pdf_text(name[:18])} Tj ET")
        if len(name) > 18:
            ops.append(f"BT /F1 9 Tf {x0 + 12:.2f} {y0 + 15:.2f} Td {_pdf_text(name[18:36])} Tj ET")
        ops.append(f"BT /F2 8 Tf {x0 + 12:.2f} {y0 + 4:.2f} Td {_ascii(str(firm.uscc))} Tj ET")
    if ops:
        pages.append(ops)
    if not pages:
        pages.append(["BT /F1 14 Tf 40 805 Td " + _pdf_text(title) + " Tj ET"])
    return _pdf(pages)


def _pdf(pages: list[list[str]]) -> bytes:
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled below
    pages_obj = add(b"")
    cjk_desc = add(
        b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light "
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 4 >> "
        b"/FontDescriptor << /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [-25 -254 1000 880] "
        b"/ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >> >>"
    )
    cjk = add(
        f"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H "
        f"/DescendantFonts [{cjk_desc} 0 R] >>".encode()
    )
    latin = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    kids = []
    for ops in pages:
        stream = "\n".join(ops).encode("ascii")
        content = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        kids.append(
            add(
                f"<< /Type /Page /Parent {pages_obj} 0 R /MediaBox [0 0 {A4[0]} {A4[1]}] "
                f"/Resources << /Font << /F1 {cjk} 0 R /F2 {latin} 0 R >> >> /Contents {content} 0 R >>".encode()
            )
        )
    objects[catalog - 1] = f"<< /Type /Catalog /Pages {pages_obj} 0 R >>".encode()
    objects[pages_obj - 1] = (
        f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>".encode()
    )
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(f"{i} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for off in offsets:
        out.write(f"{off:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root {catalog} 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def district_firms(conn: sa.Connection, *, district: str, actor: Actor) -> Sequence[sa.Row[int, str, str]]:
    """The open firms of a district for its sheet (its bureau, or the city): id, name and USCC."""
    if actor.role not in SCANNERS or (actor.role is Role.district_bureau and actor.district_code != district):
        raise OutOfScope(f"找不到该辖区 / no such district: {district}")
    return conn.execute(
        sa.select(ENTERPRISES.c.id, ENTERPRISES.c.name, ENTERPRISES.c.uscc)
        .where(ENTERPRISES.c.district_code == district, ENTERPRISES.c.state != "closed")
        .order_by(ENTERPRISES.c.name, ENTERPRISES.c.id)
    ).all()


@dataclass(frozen=True)
class DistrictSheet:
    pdf: bytes
    filename: str


def district_sheet(
    conn: sa.Connection, *, district_code: str, district_name: str, actor: Actor, base_url: str, clock: Clock
) -> DistrictSheet:
    """A district's printable sheet of safety codes (PDF, twelve firms a page) for its bureau or the city — the
    one sheet the API and the pages both serve."""
    firms = district_firms(conn, district=district_code, actor=actor)
    pdf = district_sheet_pdf(
        firms,
        key=code_key(conn),
        base_url=base_url,
        title=f"{district_name} 企业安全码（常安码）",
        note=f"扫码查看企业名称与创建状态；辖区监管人员登录后进入企业监管页。{today(clock)}",
    )
    return DistrictSheet(pdf=pdf, filename=f"safety-codes-{district_code}.pdf")
