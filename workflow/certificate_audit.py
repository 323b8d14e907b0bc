"""Can a certificate be checked? For every certified firm: its review team, each member's scores, the draw
(seed and candidates, redone), the evidence of every closed hazard and the dossier (application materials).
A certificate lacking any of them is named (firm, credit code, what is missing).

Streamed over the certified firms in chunks; each piece is one small set-based query per chunk (no query per
firm), in its own function, so a change of the records it reads touches one function:

* `check_benchmark`   — a 标杆 certificate carries the city bureau's decision;
* `team_members`      — review_assignments of the certified application still on the team;
* `member_scores`     — reviews of each member (online and on-site parts);
* `draws`             — each draw's seed and candidate list, redone with `workflow.pool.draw`;
* `closed_hazards`    — rectified (or accepted) hazards and the rectification files behind them;
* `dossier`           — the self-assessment and the files the application was submitted with.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from workflow.models import HazardStatus
from workflow.pool import draw
from workflow.tables import (
    APPLICATIONS,
    CERTIFICATIONS,
    ENTERPRISES,
    EVIDENCE_FILES,
    HAZARDS,
    REVIEW_ASSIGNMENTS,
    REVIEWS,
    USERS,
)

CHUNK = 500
ON_TEAM = ("active", "done")  # a replaced member is no longer on the team
SCORED_PARTS = ("online", "on_site")  # 线上和线下现场评审
CLOSED_HAZARDS = (HazardStatus.rectified, HazardStatus.accepted)
RECTIFICATION_KINDS = ("hazard_rectification", "rectification")
# The dossier: 提交自评报告、申请材料与佐证材料 — each required kind with the names uploads have carried.
DOSSIER_KINDS: dict[str, tuple[str, ...]] = {
    "自评报告 / self-assessment report": ("self_assessment_report",),
    "申请材料 / application form": ("application_form", "application_material"),
}


@dataclass
class CertificateCheck:
    enterprise_id: int
    uscc: str
    name: str
    certificate_no: str | None
    application_id: int
    score: float
    level: str = "compliant"
    benchmark_at: Any = None
    team: list[dict[str, Any]] = field(default_factory=list)
    draws: list[dict[str, Any]] = field(default_factory=list)
    hazards: list[dict[str, Any]] = field(default_factory=list)
    dossier: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing

    def as_json(self) -> dict[str, Any]:
        return {
            "enterprise_id": self.enterprise_id,
            "uscc": self.uscc,
            "name": self.name,
            "certificate_no": self.certificate_no,
            "application_id": self.application_id,
            "score": self.score,
            "level": self.level,
            "team": self.team,
            "draws": self.draws,
            "hazards": self.hazards,
            "dossier": self.dossier,
            "missing": self.missing,
            "ok": self.ok,
        }

    def failure(self) -> str:
        return f"{self.name}（{self.uscc}）缺少 / lacks: " + "；".join(self.missing)


def certified_firms(conn: sa.Connection, *, after: int, limit: int) -> list[CertificateCheck]:
    """The next chunk of certified firms (by firm id) with their current certificate."""
    c, e = CERTIFICATIONS, ENTERPRISES
    rows = conn.execute(
        sa.select(
            e.c.id, e.c.uscc, e.c.name, c.c.certificate_no, c.c.application_id, c.c.score, c.c.level, c.c.benchmark_at
        )
        .join(c, c.c.enterprise_id == e.c.id)
        .where(e.c.state == "certified", c.c.revoked_at.is_(None), e.c.id > after)
        .order_by(e.c.id, c.c.id.desc())
        .limit(limit)
    ).all()
    seen: dict[int, CertificateCheck] = {}
    for r in rows:  # the newest current certificate of each firm
        if r.id not in seen:
            seen[r.id] = CertificateCheck(
                int(r.id),
                r.uscc,
                r.name,
                r.certificate_no,
                int(r.application_id),
                float(r.score),
                level=r.level,
                benchmark_at=r.benchmark_at,
            )
    return list(seen.values())


def check_benchmark(check: CertificateCheck) -> None:
    """标杆 is the city bureau's decision (确定…标杆企业名单): a 标杆 certificate must carry it."""
    if check.level == "benchmark" and check.benchmark_at is None:
        check.missing.append("市应急管理局列入标杆名单的决定 / the city bureau's decision naming it a benchmark firm")


def team_members(conn: sa.Connection, application_ids: Sequence[int]) -> dict[int, list[Any]]:
    """application → its review assignments (every draw, replaced members included)."""
    ra = REVIEW_ASSIGNMENTS
    rows = conn.execute(
        sa.select(ra, USERS.c.display_name)
        .join(USERS, USERS.c.id == ra.c.reviewer_id)
        .where(ra.c.application_id.in_(application_ids))
        .order_by(ra.c.id)
    ).all()
    out: dict[int, list[Any]] = {}
    for r in rows:
        out.setdefault(int(r.application_id), []).append(r)
    return out


def member_scores(conn: sa.Connection, application_ids: Sequence[int]) -> dict[tuple[int, int], dict[str, float]]:
    """(application, reviewer) → the parts that reviewer scored."""
    rows = conn.execute(
        sa.select(REVIEWS.c.application_id, REVIEWS.c.reviewer_id, REVIEWS.c.part, REVIEWS.c.score).where(
            REVIEWS.c.application_id.in_(application_ids), REVIEWS.c.reviewer_id.is_not(None)
        )
    ).all()
    out: dict[tuple[int, int], dict[str, float]] = {}
    for r in rows:
        out.setdefault((int(r.application_id), int(r.reviewer_id)), {})[r.part] = float(r.score)
    return out


def check_team(
    check: CertificateCheck, assignments: list[Any], scores: dict[tuple[int, int], dict[str, float]]
) -> None:
    members = [a for a in assignments if a.status in ON_TEAM]
    if not members:
        check.missing.append("评审组 / review team")
        return
    for a in members:
        parts = scores.get((check.application_id, int(a.reviewer_id)), {})
        check.team.append({"reviewer_id": int(a.reviewer_id), "name": a.display_name, "scores": parts})
        lacking = [p for p in SCORED_PARTS if p not in parts]
        if lacking:
            check.missing.append(f"评定人员{a.display_name}的评分（{'、'.join(lacking)}） / scores of {a.display_name}")


def check_draws(check: CertificateCheck, assignments: list[Any]) -> None:
    """Every draw has its seed and candidates, and redoing it from them gives the reviewers it drew."""
    by_seed: dict[tuple[int | None, str], list[Any]] = {}
    for a in assignments:
        by_seed.setdefault((a.draw_seed, repr(sorted(a.draw_pool or []))), []).append(a)
    for (seed, _), group in by_seed.items():
        pool = sorted(int(x) for x in (group[0].draw_pool or []))
        drawn = sorted(int(a.reviewer_id) for a in group)
        entry = {"seed": seed, "candidates": pool, "drawn": drawn}
        check.draws.append(entry)
        if seed is None or not pool:
            check.missing.append("抽取评审组的随机种子与候选名单 / the draw's seed and candidates")
        elif len(pool) < len(drawn) or draw(pool, size=len(drawn), seed=int(seed)) != drawn:
            check.missing.append(
                f"可复核的抽取结果（种子 {seed} 抽不出 {drawn}） / "
                f"a reproducible draw (seed {seed} does not give {drawn})"
            )
    if not assignments and "评审组 / review team" not in check.missing:
        check.missing.append("抽取评审组的随机种子与候选名单 / the draw's seed and candidates")


def closed_hazards(conn: sa.Connection, firm_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """firm → its closed hazards, each with the rectification files of this firm behind it (linked by the
    hazard, or by the SHA-256 the rectification named)."""
    h, ef = HAZARDS, EVIDENCE_FILES
    linked = sa.and_(
        ef.c.enterprise_id == h.c.enterprise_id,
        ef.c.kind.in_(RECTIFICATION_KINDS),
        sa.or_(ef.c.hazard_id == h.c.id, ef.c.sha256 == h.c.rectification_evidence),
    )
    rows = conn.execute(
        sa.select(h.c.id, h.c.enterprise_id, h.c.description, ef.c.id.label("file_id"), ef.c.filename, ef.c.sha256)
        .select_from(h.outerjoin(ef, linked))
        .where(h.c.enterprise_id.in_(firm_ids), h.c.status.in_(CLOSED_HAZARDS))
        .order_by(h.c.id, ef.c.id)
    ).all()
    out: dict[int, dict[int, dict[str, Any]]] = {}
    for r in rows:
        hazard = out.setdefault(int(r.enterprise_id), {}).setdefault(
            int(r.id), {"id": int(r.id), "description": r.description, "evidence": []}
        )
        if r.file_id is not None:
            hazard["evidence"].append({"id": int(r.file_id), "filename": r.filename, "sha256": r.sha256})
    return {firm: list(hazards.values()) for firm, hazards in out.items()}


def check_hazards(check: CertificateCheck, hazards: list[dict[str, Any]]) -> None:
    check.hazards = hazards
    for hazard in hazards:
        if not hazard["evidence"]:
            check.missing.append(
                f"隐患 #{hazard['id']}“{hazard['description']}”的整改材料 / rectification evidence of hazard "
                f"#{hazard['id']} ({hazard['description']})"
            )


def dossier(conn: sa.Connection, application_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """application → its self-assessment and the files of the firm uploaded by the time it was submitted."""
    a, ef = APPLICATIONS, EVIDENCE_FILES
    apps = conn.execute(
        sa.select(a.c.id, a.c.self_assessment_id, a.c.materials).where(a.c.id.in_(application_ids))
    ).all()
    files = conn.execute(
        sa.select(a.c.id.label("application_id"), ef.c.id, ef.c.kind, ef.c.filename, ef.c.sha256)
        .join(ef, sa.and_(ef.c.enterprise_id == a.c.enterprise_id, ef.c.uploaded_at <= a.c.submitted_at))
        .where(a.c.id.in_(application_ids))
        .order_by(ef.c.id)
    ).all()
    out = {
        int(r.id): {"self_assessment_id": r.self_assessment_id, "materials": r.materials or [], "files": []}
        for r in apps
    }
    for f in files:
        out[int(f.application_id)]["files"].append(
            {"id": int(f.id), "kind": f.kind, "filename": f.filename, "sha256": f.sha256}
        )
    return out


def check_dossier(check: CertificateCheck, found: dict[str, Any] | None) -> None:
    found = found or {"self_assessment_id": None, "materials": [], "files": []}
    check.dossier = found
    if found["self_assessment_id"] is None:
        check.missing.append("自评记录 / the self-assessment")
    kinds = {f["kind"] for f in found["files"]}
    for label, accepted in DOSSIER_KINDS.items():
        if not kinds & set(accepted):
            check.missing.append(label)


def check_certificates(conn: sa.Connection, *, chunk: int = CHUNK) -> Iterator[CertificateCheck]:
    """Every certified firm's certificate, checked piece by piece, in firm order."""
    after = 0
    while True:
        checks = certified_firms(conn, after=after, limit=chunk)
        if not checks:
            return
        apps = [c.application_id for c in checks]
        firms = [c.enterprise_id for c in checks]
        assignments = team_members(conn, apps)
        scores = member_scores(conn, apps)
        hazards = closed_hazards(conn, firms)
        files = dossier(conn, apps)
        for check in checks:
            if check.certificate_no is None:
                check.missing.append("证书编号 / certificate number")
            check_benchmark(check)
            check_team(check, assignments.get(check.application_id, []), scores)
            check_draws(check, assignments.get(check.application_id, []))
            check_hazards(check, hazards.get(check.enterprise_id, []))
            check_dossier(check, files.get(check.application_id))
            yield check
        after = checks[-1].enterprise_id


@dataclass
class AuditSummary:
    checked: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    firms: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def audit_certificates(conn: sa.Connection, *, keep: int = 200, offset: int = 0) -> AuditSummary:
    """Every certificate checked; every failure named; the full record of `keep` firms from `offset`."""
    summary = AuditSummary()
    for n, check in enumerate(check_certificates(conn)):
        summary.checked += 1
        if not check.ok:
            summary.failures.append(
                {"enterprise_id": check.enterprise_id, "name": check.name, "uscc": check.uscc, "missing": check.missing}
            )
        if offset <= n < offset + keep:
            summary.firms.append(check.as_json())
    return summary
