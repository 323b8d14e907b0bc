"""What each transition writes besides the state: application, review and certification records,
hazards from findings, and the mail it implies (as outbox rows, sent after commit)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from states import InvalidInput
from workflow.campaign import Campaign, Thresholds
from workflow.dossier import DOSSIER_ITEMS, DOSSIER_KINDS
from workflow.driver import Raw
from workflow.facts import DbFacts
from workflow.models import ApplicationStatus, HazardStatus
from workflow.tables import APPLICATIONS, CERTIFICATIONS, EVIDENCE_FILES, HAZARDS, REVIEWS

MAX_TEXT = 2000
SEVERITIES = ("general", "major")


@dataclass(frozen=True)
class Mail:
    kind: str
    audience: str = "enterprise"
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Effect:
    firm_values: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)  # added to the event's payload
    mails: list[Mail] = field(default_factory=list)


@dataclass(frozen=True)
class Context:
    raw: Raw  # the fire's transaction, at the driver: the effects' statements go through it
    firm: Any  # the firm's row as the engine loaded it
    facts: DbFacts
    campaign: Campaign
    now: dt.datetime
    payload: Mapping[str, Any]
    # updates whose outcome nothing in the fire reads back: on PostgreSQL they join the engine's one statement
    # (`Raw.move_and_append`), saving a round trip each; on SQLite they run at once
    later: list[tuple[sa.Table, dict[str, Any], dict[str, Any]]] = field(default_factory=list)

    def update(self, table: sa.Table, values: dict[str, Any], *, where: dict[str, Any]) -> None:
        """UPDATE table SET values WHERE where, in the fire's transaction, at the latest with the firm's own
        update (and only if that one matches)."""
        if self.raw.sqlite:
            self.raw.update(table, values, where=where)
        else:
            self.later.append((table, values, where))


# ---- payload validation -------------------------------------------------------------------------


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"“{key}”须为文字 / {key} must be text")
    if len(value) > MAX_TEXT:
        raise InvalidInput(f"“{key}”超过 {MAX_TEXT} 字 / {key} is longer than {MAX_TEXT} characters")
    return value


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"“{key}”须为数字 / {key} must be a number")
    return float(value)


def clean_findings(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or len(value) > 200:
        raise InvalidInput("findings 须为问题清单（最多200项） / findings must be a list of at most 200 items")
    out = []
    for n, item in enumerate(value, start=1):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("description"), str)
            or not item["description"].strip()
        ):
            raise InvalidInput(f"第{n}项问题缺少描述 / finding {n} has no description")
        severity = item.get("severity", "general")
        if severity not in SEVERITIES:
            raise InvalidInput(
                f"第{n}项问题的等级须为 general 或 major / finding {n}: severity must be general or major"
            )
        out.append({"description": _text(item["description"], "description").strip(), "severity": severity})
    return out


def _materials(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or len(value) > 100:
        raise InvalidInput("materials 须为材料清单（最多100项） / materials must be a list of at most 100 items")
    out = []
    for n, item in enumerate(value, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("sha256"), str) or len(item["sha256"]) != 64:
            raise InvalidInput(f"第{n}份材料缺少有效的 sha256 / material {n} needs a sha256")
        out.append({k: _text(item.get(k, ""), k) for k in ("sha256", "name", "kind")})
    return out


def _codes(value: Any, key: str, known: Mapping[str, Any] | None = None) -> list[str]:
    """A list of distinct codes (dossier items, checklist items), each known when `known` is given."""
    if not isinstance(value, list) or len(value) > 50 or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"“{key}”须为条目代码的清单 / {key} must be a list of item codes")
    unknown = [v for v in value if known is not None and v not in known]
    if unknown:
        raise InvalidInput(
            f"“{key}”中有未知条目：{', '.join(unknown)}（可选：{', '.join(known or ())}） / {key}: unknown items "
            f"{', '.join(unknown)} (choose from {', '.join(known or ())})"
        )
    return list(dict.fromkeys(value))


def _combination(value: Any) -> dict[str, Any]:
    """How a review team's score was combined (written by the evaluator pool's service, never typed)."""
    if not isinstance(value, dict):
        raise InvalidInput("combination 须为键值对 / combination must be a JSON object")
    return value


NOTIFY_CHANNELS = {"mail": "电子邮件", "phone": "电话", "in_person": "当面送达", "letter": "书面函件"}


def _channel(value: Any) -> str:
    if value not in NOTIFY_CHANNELS:
        names = "、".join(NOTIFY_CHANNELS.values())
        raise InvalidInput(f"通知方式须为 {names} 之一 / channel must be one of {', '.join(NOTIFY_CHANNELS)}")
    return str(value)


_FIELDS: dict[str, Callable[[Any], Any]] = {
    "reason": lambda v: _text(v, "reason"),
    "note": lambda v: _text(v, "note"),
    "score": lambda v: _number(v, "score"),
    "online_score": lambda v: _number(v, "online_score"),
    "onsite_score": lambda v: _number(v, "onsite_score"),
    "findings": clean_findings,
    "materials": _materials,
    "opinion": lambda v: _text(v, "opinion"),
    "checklist": lambda v: _codes(v, "checklist"),  # the campaign's items, checked by the effect
    "missing": lambda v: _codes(v, "missing", DOSSIER_ITEMS),
    "combination": _combination,
    "channel": _channel,
}

ALLOWED_KEYS: dict[str, frozenset[str]] = {
    "notify": frozenset({"channel"}),
    "start_self_assessment": frozenset(),
    "report_hazards": frozenset(),
    "finish_rectification": frozenset(),
    "submit_application": frozenset({"materials"}),
    "return_application": frozenset({"reason", "missing"}),
    "verify": frozenset({"opinion", "checklist"}),
    "pass_audit": frozenset(),
    "fail_audit": frozenset({"reason", "findings"}),
    "record_review": frozenset({"score", "online_score", "onsite_score", "findings", "combination"}),
    "certify": frozenset(),
    "fail_review": frozenset({"findings"}),
    "revoke": frozenset({"reason", "findings"}),
    "close": frozenset({"reason"}),
}


def clean_payload(trigger: str, payload: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check the caller's data for a trigger: known keys only, each of the right shape."""
    if payload is None:
        return {}
    if not isinstance(payload, Mapping):
        raise InvalidInput("附加数据须为键值对 / data must be a JSON object")
    allowed = ALLOWED_KEYS.get(trigger, frozenset()) | {"note"}
    unknown = sorted(set(payload) - allowed)
    if unknown:
        raise InvalidInput(
            f"不接受的字段：{', '.join(unknown)} / fields not accepted for {trigger}: {', '.join(unknown)}"
        )
    # `score` stays as given so the guard can explain a bad one; everything else is normalised here.
    return {k: (v if k == "score" else _FIELDS[k](v)) for k, v in payload.items()}


# ---- certification rules ------------------------------------------------------------------------


def certification_level(score: float, thresholds: Thresholds) -> str | None:
    """compliant (达标) at or above its threshold, else None. 标杆 is not stamped here: the city bureau names
    标杆 firms from the certified ones (市应急管理局根据验收结果确定达标企业(评分不得低于60分)与标杆企业名单
    (评分不得低于75分)); see `workflow.certificates.name_benchmark`."""
    if score >= thresholds.compliant:
        return "compliant"
    return None


def score_level(score: float, thresholds: Thresholds) -> int | None:
    """The standardization level whose score floor this score reaches (未取得原一级、二级安全生产标准化证书的企业
    评分达到90分以上，方可新申报一级标准化企业；企业评分达到75分以上，方可新申报二级标准化企业)."""
    if score >= thresholds.level1_eligible:
        return 1
    if score >= thresholds.level2_eligible:
        return 2
    return None


def prior_certificate_status(*, recorded: bool, level: int | None) -> str:
    """held (an earlier level-1/2 certificate is on record), none (recorded as holding none) or unknown
    (nobody recorded it: the system must not say the firm holds none)."""
    if level is not None:
        return "held"
    return "none" if recorded else "unknown"


def eligible_level(score: float, thresholds: Thresholds, *, prior_status: str) -> int | None:
    """The level a firm may newly apply for (方可新申报), computed only for a firm recorded as holding no earlier
    level-1/2 certificate; None for a firm that holds one or whose status nobody recorded."""
    if prior_status != "none":
        return None
    return score_level(score, thresholds)


def certificate_number(prefix: str, year: int, serial: int) -> str:
    """PREFIX-YEAR-NNNNNN, e.g. CZDB-2023-000123 (a local setting; the plan gives no format). The serial is
    the certification's row id, unique by construction."""
    return f"{prefix}-{year}-{serial:06d}"


def valid_until(certified_on: dt.date, years: int) -> dt.date:
    """The last day of a certificate valid `years` from `certified_on` (local setting)."""
    try:
        end = certified_on.replace(year=certified_on.year + years)
    except ValueError:  # 29 February
        end = certified_on.replace(year=certified_on.year + years, day=28)
    return end - dt.timedelta(days=1)


# ---- per-trigger effects ------------------------------------------------------------------------


def _application_id(ctx: Context) -> int:
    app = ctx.facts.application
    if app is None:  # the machine's states guarantee one; a missing row means damaged data
        raise InvalidInput("找不到在办的达标申请 / no open application for this firm")
    return int(app.id)


def _set_application(ctx: Context, **values: Any) -> int:
    app_id = _application_id(ctx)
    ctx.update(APPLICATIONS, values, where={"id": app_id})
    return app_id


def _hazards_from(ctx: Context, findings: list[dict[str, str]], source: str) -> list[int]:
    ids = []
    for finding in findings:
        hazard = {
            "enterprise_id": ctx.firm.id,
            "source": source,
            "description": finding["description"],
            "severity": finding["severity"],
            "status": HazardStatus.open,
            "reported_at": ctx.now,
        }
        ids.append(ctx.raw.insert(HAZARDS, hazard))
    return ids


def _notify(ctx: Context) -> Effect:
    """对照工业企业名录清单对企业主要负责人逐个通知: by mail to the principal's address, or — recorded by the
    office — by another channel (phone, in person, letter). A mail with no address to go to reaches nobody:
    the firm stays un-notified (its mobilization escalation stays open) and is listed to its district as
    undeliverable (无法送达) until the address is fixed or the firm is notified otherwise."""
    channel = ctx.payload.get("channel", "mail")
    if channel != "mail":
        return Effect(firm_values={"notified_at": ctx.now}, record={"channel": channel})
    if not (ctx.firm.email or "").strip():
        return Effect(record={"channel": "mail", "undeliverable": "no_email"})
    return Effect(firm_values={"notified_at": ctx.now}, mails=[Mail("mobilization_notice")])


def _files(ctx: Context, where: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    rows = ctx.raw.execute(
        f"SELECT id, sha256, filename, kind FROM {EVIDENCE_FILES.name} WHERE enterprise_id = :firm_id AND {where} "
        "ORDER BY id",
        {"firm_id": ctx.firm.id, **params},
    )
    return list(rows.fetchall())


def _submit(ctx: Context) -> Effect:
    """The application is the dossier: the latest self-assessment report and application form (the guards
    made sure there are), with the supporting materials the firm names (by SHA-256; all of its supporting
    materials when it names none)."""
    named = ctx.payload.get("materials", [])
    # the dossier's files and, unless the firm names its materials, every supporting material: one query
    kinds = {f"k{n}": kind for n, kind in enumerate((*DOSSIER_KINDS, *([] if named else ["supporting_material"])))}
    rows = _files(ctx, f"kind IN ({', '.join(':' + name for name in kinds)})", kinds)
    required = [row for row in rows if row[3] in DOSSIER_KINDS]
    latest = {row[3]: row for row in required}  # ordered by id: the last of each kind wins
    if named:
        wanted = {m["sha256"] for m in named}
        hashes = {f"h{n}": sha for n, sha in enumerate(sorted(wanted))}
        found = _files(ctx, f"sha256 IN ({', '.join(':' + name for name in hashes)})", hashes)
        missing = sorted(wanted - {row[1] for row in found})
        if missing:
            names = ", ".join(m.get("name") or m["sha256"][:12] for m in named if m["sha256"] in missing)
            raise InvalidInput(f"以下材料尚未上传：{names} / these materials were not uploaded for this firm: {names}")
        extra = list({row[1]: row for row in found if row[3] != "rectification"}.values())
    else:
        extra = [row for row in rows if row[3] == "supporting_material"]
    chosen = {row[0]: row for row in [*latest.values(), *extra]}
    materials = [
        {"evidence_id": int(row[0]), "sha256": row[1], "name": row[2], "kind": row[3]} for row in chosen.values()
    ]
    sa_row = ctx.facts.self_assessment
    application = {
        "enterprise_id": ctx.firm.id,
        "status": ApplicationStatus.applied,
        "self_assessment_id": None if sa_row is None else sa_row.id,
        "self_assessment_total": None if sa_row is None else sa_row.total_score,
        "materials": materials,
        "submitted_at": ctx.now,
    }
    app_id = ctx.raw.insert(APPLICATIONS, application)
    return Effect(record={"application_id": app_id, "materials": materials}, mails=[Mail("application_received")])


def _return(ctx: Context) -> Effect:
    """Returned with the reason and the dossier items it lacks, which the firm sees."""
    reason = ctx.payload["reason"]
    missing = ctx.payload.get("missing", [])
    app_id = _set_application(
        ctx, status=ApplicationStatus.returned, decided_at=ctx.now, outcome_reason=reason, missing=missing
    )
    context = {
        "reason": reason,
        "missing": [DOSSIER_ITEMS[m][0] for m in missing],
        "missing_en": [DOSSIER_ITEMS[m][1] for m in missing],
    }
    return Effect(record={"application_id": app_id}, mails=[Mail("application_returned", context=context)])


def _verify(ctx: Context) -> Effect:
    """The district's verification (核实) with its opinion and the campaign's checklist items it checked."""
    checklist = ctx.payload.get("checklist", [])
    known = {item.code: item for item in ctx.campaign.dossier.verification_checklist}
    _codes(checklist, "checklist", known)
    app_id = _set_application(
        ctx,
        status=ApplicationStatus.verified,
        verified_at=ctx.now,
        verification_opinion=ctx.payload["opinion"].strip(),
        verification_checklist=checklist,
    )
    return Effect(record={"application_id": app_id})


def _pass_audit(ctx: Context) -> Effect:
    app_id = _set_application(ctx, audit_passed_at=ctx.now)
    return Effect(record={"application_id": app_id}, mails=[Mail("audit_outcome", context={"passed": True})])


def _fail_audit(ctx: Context) -> Effect:
    reason = ctx.payload["reason"]
    app_id = _set_application(ctx, status=ApplicationStatus.audit_failed, decided_at=ctx.now, outcome_reason=reason)
    hazards = _hazards_from(ctx, ctx.payload.get("findings", []), "audit")
    return Effect(
        record={"application_id": app_id, "hazard_ids": hazards},
        mails=[Mail("audit_outcome", context={"passed": False, "reason": reason, "hazards": len(hazards)})],
    )


def _record_review(ctx: Context) -> Effect:
    score = float(ctx.payload["score"])
    app_id = _set_application(ctx, status=ApplicationStatus.reviewed, reviewed_at=ctx.now, review_score=score)
    review = {
        "application_id": app_id,
        "part": "team",
        "score": score,
        "findings": ctx.payload.get("findings", []),
        "sheet": ctx.payload.get("combination"),
        "recorded_at": ctx.now,
    }
    ctx.raw.insert(REVIEWS, review)
    return Effect(record={"application_id": app_id})


def _certify(ctx: Context) -> Effect:
    app = ctx.facts.application
    assert app is not None and app.review_score is not None  # guaranteed by the review_passed guard
    score = float(app.review_score)
    thresholds, rules = ctx.campaign.thresholds, ctx.campaign.certificates
    level = certification_level(score, thresholds)
    prior = (ctx.firm.prior_certificate_recorded_at, ctx.firm.prior_certificate_level)  # loaded with the firm
    status = prior_certificate_status(recorded=prior[0] is not None, level=prior[1])
    eligible = eligible_level(score, thresholds, prior_status=status)
    _set_application(ctx, status=ApplicationStatus.certified, decided_at=ctx.now)
    certified_on = ctx.now.astimezone(ZoneInfo(ctx.campaign.campaign.timezone)).date()
    until = valid_until(certified_on, rules.validity_years)
    certification = {
        "enterprise_id": ctx.firm.id,
        "application_id": app.id,
        "level": level,
        "score": score,
        "eligible_level": eligible,
        "certified_at": ctx.now,
        "valid_until": until,
    }
    cert_id = ctx.raw.insert(CERTIFICATIONS, certification)
    number = certificate_number(rules.number_prefix, certified_on.year, cert_id)
    ctx.update(CERTIFICATIONS, {"certificate_no": number}, where={"id": cert_id})
    record = {
        "application_id": int(app.id),
        "level": level,
        "score": score,
        "eligible_level": eligible,
        "certificate_no": number,
        "valid_until": until.isoformat(),
    }
    mail = {**record, "score_level": score_level(score, thresholds), "prior_certificate": status}
    mail["prior_level"] = prior[1]
    return Effect(record=record, mails=[Mail("certification", context=mail)])


def _fail_review(ctx: Context) -> Effect:
    app = ctx.facts.application
    assert app is not None
    # the team's result holds the findings of the members still on the team (a replaced member's do not count)
    stored = ctx.raw.execute(
        f"SELECT findings FROM {REVIEWS.name} WHERE application_id = :app_id AND part = 'team' ORDER BY id",
        {"app_id": app.id},
    ).fetchall()
    batches = [ctx.raw.json_value(row[0]) for row in stored]
    findings = [f for batch in batches for f in (batch or [])] + list(ctx.payload.get("findings", []))
    _set_application(ctx, status=ApplicationStatus.review_failed, decided_at=ctx.now)
    hazards = _hazards_from(ctx, findings, "review")
    record = {"application_id": int(app.id), "score": app.review_score, "hazard_ids": hazards}
    return Effect(record=record, mails=[Mail("review_outcome", context={"passed": False, **record})])


def _revoke(ctx: Context) -> Effect:
    reason = ctx.payload["reason"]
    current = ctx.raw.first(
        f"SELECT id FROM {CERTIFICATIONS.name} WHERE enterprise_id = :firm_id AND revoked_at IS NULL "
        "ORDER BY id DESC LIMIT 1",
        {"firm_id": ctx.firm.id},
    )
    cert_id = None if current is None else int(current[0])
    if cert_id is not None:
        ctx.raw.update(CERTIFICATIONS, {"revoked_at": ctx.now, "revoke_reason": reason}, where={"id": cert_id})
    hazards = _hazards_from(ctx, ctx.payload.get("findings", []), "revocation")
    return Effect(
        record={"certification_id": cert_id, "hazard_ids": hazards},
        mails=[Mail("certificate_revoked", context={"reason": reason})],
    )


def _close(ctx: Context) -> Effect:
    if ctx.facts.application is not None:
        _set_application(ctx, status=ApplicationStatus.closed, decided_at=ctx.now, outcome_reason=ctx.payload["reason"])
    return Effect(firm_values={"closed_reason": ctx.payload["reason"]})


def _nothing(ctx: Context) -> Effect:
    return Effect()


EFFECTS: dict[str, Callable[[Context], Effect]] = {
    "notify": _notify,
    "start_self_assessment": _nothing,
    "report_hazards": _nothing,
    "finish_rectification": _nothing,
    "submit_application": _submit,
    "return_application": _return,
    "verify": _verify,
    "pass_audit": _pass_audit,
    "fail_audit": _fail_audit,
    "record_review": _record_review,
    "certify": _certify,
    "fail_review": _fail_review,
    "revoke": _revoke,
    "close": _close,
}
