"""Evidence files: checked (size, real type behind the extension, no zip bombs), stored once by SHA-256
under the data folder, and handed out only to those who may see the firm's record."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlmodel import Session

from states import InvalidInput, NotAllowed, NotFound, OutOfScope, Role
from workflow.actors import Actor, in_scope, visible
from workflow.clock import Clock
from workflow.context import Context
from workflow.db import read_unit, write_unit
from workflow.dossier import DOSSIER_KINDS as DOSSIER_KINDS  # re-exported: the kinds of upload
from workflow.dossier import KIND_LABELS as KIND_LABELS
from workflow.dossier import KINDS as KINDS
from workflow.dossier import LEGACY_KINDS
from workflow.engine import load_firm, record_event
from workflow.models import HazardStatus
from workflow.records import CLOSED_STATUSES, hazard_label
from workflow.tables import EVIDENCE_FILES, HAZARDS

# photos or documents of an inspection, kept by the district bureau that made it (not part of a dossier)
INSPECTION_KIND = "inspection"
CHUNK = 1 << 16
# office files are zip archives: refuse archives that unpack far beyond what a real document does
MAX_UNPACKED = 200 * 1024 * 1024
MAX_RATIO = 100
MAX_MEMBERS = 2000


@dataclass(frozen=True)
class FileType:
    content_type: str
    extensions: tuple[str, ...]


PDF = FileType("application/pdf", (".pdf",))
PNG = FileType("image/png", (".png",))
JPEG = FileType("image/jpeg", (".jpg", ".jpeg"))
OOXML = {
    "word/": FileType("application/vnd.openxmlformats-officedocument.wordprocessingml.document", (".docx",)),
    "xl/": FileType("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (".xlsx",)),
    "ppt/": FileType("application/vnd.openxmlformats-officedocument.presentationml.presentation", (".pptx",)),
}
OLE = FileType("application/msword", (".doc", ".xls", ".ppt"))  # legacy office (compound file)
ALLOWED = ".pdf .png .jpg .jpeg .docx .xlsx .pptx .doc .xls .ppt"


def safe_filename(name: str) -> str:
    """The name to show: no folders, no control characters, at most 200 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in unicodedata.normalize("NFC", base) if unicodedata.category(ch)[0] != "C")
    base = base.strip().lstrip(".") or "file"
    return base[-200:]


# An office file is an OOXML package: [Content_Types].xml, and the main part of its type declared there.
OOXML_MAIN = {
    "word/document.xml": ("wordprocessingml.document.main+xml", OOXML["word/"]),
    "xl/workbook.xml": ("spreadsheetml.sheet.main+xml", OOXML["xl/"]),
    "ppt/presentation.xml": ("presentationml.presentation.main+xml", OOXML["ppt/"]),
}
PDF_TAIL = 1024  # a PDF ends with %%EOF (and perhaps a line break) within its last bytes


def _pdf_ends(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(max(path.stat().st_size - PDF_TAIL, 0))
        return b"%%EOF" in handle.read()


def _sniff(path: Path, head: bytes) -> FileType:
    if head.startswith(b"%PDF-"):
        if not _pdf_ends(path):
            raise InvalidInput("PDF 文件不完整（缺少 %%EOF 结尾）/ the PDF is incomplete: it has no %%EOF trailer")
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return OLE
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                members = archive.infolist()
                unpacked = sum(m.file_size for m in members)
                packed = sum(m.compress_size for m in members) or 1
                if len(members) > MAX_MEMBERS or unpacked > MAX_UNPACKED or unpacked / packed > MAX_RATIO:
                    raise InvalidInput(
                        "压缩内容异常（疑似压缩炸弹），已拒收 / the archive unpacks abnormally (zip bomb?)"
                    )
                names = {m.filename for m in members}
                types = b""
                if "[Content_Types].xml" in names and archive.getinfo("[Content_Types].xml").file_size < 1 << 20:
                    types = archive.read("[Content_Types].xml")
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError):
            raise InvalidInput("文件已损坏，无法打开 / the file is damaged") from None
        for main, (declared, kind) in OOXML_MAIN.items():
            if main in names and declared.encode() in types:
                return kind
        if types:
            raise InvalidInput(
                "Office 文件结构不完整（缺少正文部件），已拒收 / the office file lacks its main part "
                f"({', '.join(OOXML_MAIN)})"
            )
    raise InvalidInput(f"只接受以下文件类型：{ALLOWED} / only these file types are accepted: {ALLOWED}")


def _firm_for_upload(conn: sa.Connection, *, enterprise_id: int, actor: Actor) -> Any:
    firm = load_firm(conn, enterprise_id=enterprise_id)
    if not in_scope(actor, firm):
        raise OutOfScope(f"找不到该企业 / no such enterprise: {enterprise_id}")
    return firm


def store_evidence(
    session: Session,
    *,
    enterprise_id: int,
    kind: str,
    filename: str,
    stream: BinaryIO,
    actor: Actor,
    data_dir: Path,
    max_bytes: int,
    clock: Clock,
    hazard_id: int | None = None,
) -> dict[str, Any]:
    """Check and keep an uploaded file; returns its record (id, sha256, name, type, size, kind, hazard).
    A rectification file names its hazard (of this firm, still open); the upload is an event in the firm's
    chain."""
    kind = LEGACY_KINDS.get(kind, kind)
    if kind == INSPECTION_KIND and actor.role is not Role.district_bureau:
        raise NotAllowed("检查照片或文件由辖区应急管理部门上传 / the district bureau uploads inspection files")
    if kind not in KINDS and kind != INSPECTION_KIND:
        raise InvalidInput(f"材料类别须为 {', '.join(KINDS)} / kind must be one of {', '.join(KINDS)}")
    if kind == "rectification" and hazard_id is None:
        raise InvalidInput("整改佐证须注明对应的隐患 / a rectification file must name its hazard")
    if kind != "rectification" and hazard_id is not None:
        zh, en = KIND_LABELS.get(kind, ("检查照片或文件", "inspection file"))
        raise InvalidInput(f"只有整改佐证对应隐患，{zh}不对应隐患 / only rectification files name a hazard, not a {en}")
    name = safe_filename(filename)
    suffix = os.path.splitext(name)[1].lower()
    with read_unit(session) as conn:  # refuse out-of-scope callers before reading their bytes
        _firm_for_upload(conn, enterprise_id=enterprise_id, actor=actor)
    store = data_dir / "evidence"
    (store / "tmp").mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    handle, tmp_name = tempfile.mkstemp(dir=store / "tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            head = b""
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    limit = f"{max_bytes / (1024 * 1024):g} MB"  # not "0 MB" under one megabyte
                    raise InvalidInput(f"文件超过 {limit} 上限 / the file is larger than {limit}")
                if len(head) < 16:
                    head += chunk[:16]
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise InvalidInput("文件为空 / the file is empty")
        detected = _sniff(tmp, head)
        if suffix not in detected.extensions:
            raise InvalidInput(
                f"文件内容（{detected.content_type}）与扩展名“{suffix or '无'}”不符 / the file's content "
                f"({detected.content_type}) does not match its extension {suffix or '(none)'}"
            )
        sha = digest.hexdigest()
        target = store / sha[:2] / sha
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            tmp.unlink()
        else:
            os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with write_unit(session) as conn:
        _firm_for_upload(conn, enterprise_id=enterprise_id, actor=actor)
        if hazard_id is not None:
            hazard = conn.execute(
                sa.select(HAZARDS).where(HAZARDS.c.id == hazard_id, HAZARDS.c.enterprise_id == enterprise_id)
            ).first()
            if hazard is None:
                raise NotFound(f"找不到该隐患 / no such hazard: {hazard_id}")
            if hazard.status in CLOSED_STATUSES or hazard.status == HazardStatus.submitted:
                raise InvalidInput(
                    f"隐患{hazard_label(hazard)}已提交或完成整改，不能再添加整改佐证 / hazard "
                    f"{hazard_label(hazard)} is already rectified or awaiting acceptance: no more files for it"
                )
        now = clock.now()
        result = conn.execute(
            sa.insert(EVIDENCE_FILES).values(
                sha256=sha,
                enterprise_id=enterprise_id,
                kind=kind,
                filename=name,
                content_type=detected.content_type,
                size=size,
                hazard_id=hazard_id,
                uploaded_at=now,
                uploaded_by=actor.name,
            )
        )
        assert result.inserted_primary_key is not None
        evidence_id = int(result.inserted_primary_key[0])
        record_event(
            conn,
            enterprise_id=enterprise_id,
            kind="evidence_uploaded",
            actor=actor,
            at=now,
            payload={
                "evidence_id": evidence_id,
                "sha256": sha,
                "kind": kind,
                "filename": name,
                "hazard_id": hazard_id,
            },
        )
    return {
        "id": evidence_id,
        "sha256": sha,
        "filename": name,
        "content_type": detected.content_type,
        "size": size,
        "kind": kind,
        "hazard_id": hazard_id,
    }


@dataclass(frozen=True)
class Upload:
    """A file as a front door received it: for which firm, of which kind, under which name (and, for a
    rectification file, for which hazard)."""

    enterprise_id: int
    kind: str
    filename: str
    stream: BinaryIO
    hazard_id: int | None = None


def store_upload(session: Session, upload: Upload, *, actor: Actor, context: Context) -> dict[str, Any]:
    """`store_evidence` with the upload limits and the folder from the settings: what the API and the pages
    call."""
    return store_evidence(
        session,
        enterprise_id=upload.enterprise_id,
        kind=upload.kind,
        filename=upload.filename,
        stream=upload.stream,
        actor=actor,
        data_dir=context.settings.data_dir,
        max_bytes=context.settings.upload_max_bytes,
        clock=context.clock,
        hazard_id=upload.hazard_id,
    )


def open_evidence(conn: sa.Connection, *, evidence_id: int, actor: Actor, data_dir: Path) -> tuple[Any, Path]:
    """The record and stored path of an evidence file the actor may see (its firm is in scope, or the
    actor reviews one of the firm's applications)."""
    row = conn.execute(sa.select(EVIDENCE_FILES).where(EVIDENCE_FILES.c.id == evidence_id)).first()
    if row is None:
        raise NotFound(f"找不到该材料 / no such evidence: {evidence_id}")
    if not visible(conn, actor, "evidence", evidence_id):
        raise OutOfScope(f"找不到该材料 / no such evidence: {evidence_id}")
    return row, data_dir / "evidence" / row.sha256[:2] / row.sha256
