"""Hostile uploads beyond tests/test_api_behaviour.py: path tricks in names, disguised content, archive bombs
of other shapes, and bodies far over the limit (sent whole, or chunked without a length). Each is refused,
nothing is kept, and nothing is written outside the evidence store."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api_helpers import World
from tests.reliability.conftest import Ledger, backend_of

PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def office(members: dict[str, bytes], *, stored: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def upload(world: World, name: str, content: bytes | Iterator[bytes], **kw: Any) -> Any:
    return world.client.post(
        f"/api/enterprises/{world.firms['home_key']}/evidence",
        data={"kind": "application_material"},
        files={"file": (name, content if isinstance(content, bytes) else b"".join(content), "application/pdf")},
        headers=world.as_("firm"),
        **kw,
    )


REFUSED = [
    ("script behind .png", "evil.png", b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"),
    ("HTML behind .pdf", "report.pdf", b"<!doctype html><script>alert(1)</script>"),
    ("ELF behind .docx", "制度.docx", b"\x7fELF\x02\x01\x01" + b"\x00" * 64),
    ("PNG behind .pdf", "scan.pdf", PNG),
    ("PDF with a double extension .pdf.exe", "report.pdf.exe", PDF),
    ("NUL in the name hiding .exe", "report.pdf\x00.exe", PDF),
    ("right-to-left override name", "report\u202efdp.exe", PDF),
    ("only dots", "..", PDF),
    ("a ZIP that is no office file", "bundle.docx", office({"a.txt": b"hello"})),
    ("a Word file named .xlsx", "book.xlsx", office({"[Content_Types].xml": b"<Types/>", "word/vbaProject.bin": b"x"})),
    ("zip bomb: many members", "many.docx",
     office({"[Content_Types].xml": b"<Types/>", **{f"word/m{n}.xml": b"" for n in range(2100)}}, stored=True)),
    ("zip bomb: one member of 60 MB zeros", "bomb.xlsx",
     office({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"0" * 60_000_000})),
    ("damaged ZIP", "broken.docx", b"PK\x03\x04" + b"\x00" * 200),
]  # fmt: skip


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_hostile_uploads_are_refused_and_nothing_is_kept(
    world: World, tmp_path: Path, ledger: Ledger, db_url: str
) -> None:
    store = world.settings.data_dir / "evidence"
    outcomes = {}
    for label, name, content in REFUSED:
        response = upload(world, name, content)
        outcomes[label] = response.status_code
        assert response.status_code == 422, (label, response.text)
        assert "message_en" in response.json()
    assert not [p for p in store.rglob("*") if p.is_file()]  # nothing kept, no temporary file left

    # path tricks in an otherwise good file: kept under its hash, shown without folders
    tricks = ["../../../../etc/cron.d/evil.pdf", "..\\..\\windows\\system32\\evil.pdf", "/etc/passwd.pdf",
              "%2e%2e%2fevil.pdf", "C:\\evil.pdf", "a" * 1000 + ".pdf"]  # fmt: skip
    for name in tricks:
        response = upload(world, name, PDF)
        assert response.status_code == 201, (name[:40], response.text)
        shown = response.json()["filename"]
        assert "/" not in shown and "\\" not in shown and ".." not in shown.removesuffix(".pdf")
        assert len(shown) <= 200
    huge_name = upload(world, "a" * 20_000 + ".pdf", PDF)  # the multipart parser's header limit: a clean 400
    assert huge_name.status_code == 400 and huge_name.json()["code"] == "http_error"
    files = [p for p in world.settings.data_dir.rglob("*") if p.is_file()]
    assert all(p.parent.parent == store and len(p.name) == 64 for p in files), files
    assert not (tmp_path.parent / "etc").exists() and not Path("/etc/cron.d/evil.pdf").exists()
    download = world.client.get(f"/api/evidence/{response.json()['id']}", headers=world.as_("firm"))
    assert download.headers["content-disposition"].startswith("attachment")
    assert download.headers["x-content-type-options"] == "nosniff"
    ledger.record(
        "hostile input",
        "uploads: " + "; ".join(label for label, _, _ in REFUSED),
        backend=backend_of(db_url),
        tries=len(REFUSED),
        detail="each refused with 422 and a message; nothing kept, no temporary file left",
    )
    ledger.record(
        "hostile input",
        "upload names with path tricks (../, ..\\, absolute, encoded, 1,000 and 20,000 characters)",
        backend=backend_of(db_url),
        tries=len(tricks),
        detail="stored only as evidence/xx/<sha256>; names shown without folders, ≤200 characters; "
        "downloads are attachments with nosniff",
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_body_far_over_the_limit_is_refused_before_it_is_read(world: World, ledger: Ledger, db_url: str) -> None:
    limit = world.settings.upload_max_bytes
    big = PDF + b"0" * (limit * 40)
    tries = 0
    response = upload(world, "big.pdf", big)  # with a Content-Length
    tries += 1
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server counts what arrives
        boundary = b"--x\r\n"
        yield boundary + b'Content-Disposition: form-data; name="kind"\r\n\r\napplication_material\r\n'
        yield boundary + b'Content-Disposition: form-data; name="file"; filename="big.pdf"\r\n\r\n'
        for _ in range(40):
            yield b"0" * limit
        yield b"\r\n--x--\r\n"

    response = world.client.post(
        f"/api/enterprises/{world.firms['home_key']}/evidence",
        content=chunks(),
        headers={**world.as_("firm"), "Content-Type": "multipart/form-data; boundary=x"},
    )
    tries += 1
    assert response.status_code == 413, response.text
    assert not [p for p in (world.settings.data_dir / "evidence").rglob("*") if p.is_file()]
    ledger.record(
        "hostile input",
        "upload bodies 40× the size limit, with a Content-Length and chunked without one",
        backend=backend_of(db_url),
        tries=tries,
        detail="413 before the body is parsed or spooled to disk; nothing kept",
    )
