"""Certificates after certification: the city bureau's 标杆 list, a firm's earlier standardization certificate
(原一级、二级安全生产标准化证书) and the eligibility it decides, the certificate itself and the published lists.

The plan: 市应急管理局根据验收结果确定达标企业(评分不得低于60分)与标杆企业名单(评分不得低于75分) — certification records
达标; naming a firm 标杆 is the city bureau's decision, taken from certified firms scoring at least 75, audited
in the firm's hash chain and reversible with a reason. 未取得原一级、二级安全生产标准化证书的企业评分达到90分以上，
方可新申报一级标准化企业；企业评分达到75分以上，方可新申报二级标准化企业 — eligibility is computed only for firms
recorded as holding no earlier certificate; for a firm whose status nobody recorded the system says so.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from states import GuardFailed, InvalidInput, InvalidTransition, NotAllowed, OutOfScope, Role
from workflow.actors import Actor, in_scope
from workflow.campaign import Campaign
from workflow.clock import Clock
from workflow.context import Context
from workflow.db import write_unit
from workflow.effects import MAX_TEXT, eligible_level, prior_certificate_status, score_level
from workflow.engine import load_firm, record_event
from workflow.tables import CERTIFICATIONS, DISTRICTS, ENTERPRISES

PRIOR_LEVELS = {1: "一级", 2: "二级"}
# what a person may type for the level of an earlier certificate (directory cell, CLI, form)
_LEVEL_WORDS = {
    "1": 1,
    "一级": 1,
    "level 1": 1,
    "level1": 1,
    "2": 2,
    "二级": 2,
    "level 2": 2,
    "level2": 2,
    "无": 0,
    "none": 0,
    "否": 0,
    "0": 0,
}
PRIOR_NO_MAX = 60
_PRIOR_NO = re.compile(r"^[\w\-（）()〔〕\[\]/ ]+$")
LIST_KINDS = ("certified", "benchmark")
PRIOR_RECORDERS = (Role.city_bureau, Role.district_bureau)


# ---- earlier certificates ----------------------------------------------------------------------


@dataclass(frozen=True)
class PriorCertificate:
    """A firm's earlier level-1/2 standardization certificate as recorded; level None: holds none."""

    level: int | None
    number: str | None = None
    issued_on: dt.date | None = None

    def payload(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "number": self.number,
            "date": None if self.issued_on is None else self.issued_on.isoformat(),
        }


def parse_prior_level(value: Any) -> int | None:
    """1 or 2 for an earlier level-1/2 certificate, None for "holds none"; InvalidInput otherwise."""
    if isinstance(value, bool):
        raise InvalidInput("原标准化等级须为 一级、二级 或 无 / prior_level must be 1, 2 or none")
    if isinstance(value, int) and value in (0, 1, 2):
        return value or None
    word = str(value if value is not None else "").strip().lower()
    if word in _LEVEL_WORDS:
        return _LEVEL_WORDS[word] or None
    raise InvalidInput(
        f"原标准化等级须为 一级、二级 或 无，实际为“{value}” / prior_level must be 1, 2 or none, not: {value}"
    )


def check_prior(
    level: int | None, number: str | None, issued_on: dt.date | None, *, today: dt.date
) -> PriorCertificate:
    """A level with its certificate number and date of issue, or none with neither; every problem named."""
    number = (number or "").strip() or None
    if level is None:
        if number is not None or issued_on is not None:
            raise InvalidInput(
                "未持有原标准化证书时不应填写证书编号或发证日期 / a certificate number or date was given for a firm "
                "recorded as holding no earlier certificate"
            )
        return PriorCertificate(None)
    if number is None:
        raise InvalidInput(
            f"原{PRIOR_LEVELS[level]}标准化证书须填写证书编号 / the earlier level-{level} certificate needs its number"
        )
    if len(number) > PRIOR_NO_MAX or not _PRIOR_NO.fullmatch(number):
        raise InvalidInput(
            f"原证书编号“{number}”格式不正确（最多{PRIOR_NO_MAX}个字符：文字、数字、-、/、括号） / "
            f"prior certificate number {number!r} is not valid (at most {PRIOR_NO_MAX} letters, digits, - / ( ))"
        )
    if issued_on is None:
        raise InvalidInput(
            f"原{PRIOR_LEVELS[level]}标准化证书须填写发证日期 / "
            f"the earlier level-{level} certificate needs its date of issue"
        )
    if issued_on > today:
        raise InvalidInput(
            f"原证书发证日期 {issued_on.isoformat()} 晚于今天 / the prior certificate's date {issued_on.isoformat()} "
            "is in the future"
        )
    return PriorCertificate(level, number, issued_on)


def parse_date(value: Any, what: str = "原发证日期 / prior_certificate_date") -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip().replace("/", "-").replace(".", "-")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        zh, _, en = what.partition(" / ")
        raise InvalidInput(
            f"{zh}“{value}”须为日期 YYYY-MM-DD / {en or zh} must be a date YYYY-MM-DD, not: {value}"
        ) from None


def apply_prior(
    conn: sa.Connection,
    *,
    firm: Any,
    prior: PriorCertificate,
    actor: Actor,
    at: dt.datetime,
    source: str,
    campaign: Campaign,
) -> bool:
    """Store a firm's earlier-certificate status inside the caller's write transaction, as an event in its
    chain; the current certificate's eligibility follows. Returns False when nothing changed."""
    same = firm.prior_certificate_recorded_at is not None and (
        firm.prior_certificate_level,
        firm.prior_certificate_no,
        firm.prior_certificate_date,
    ) == (prior.level, prior.number, prior.issued_on)
    if same:
        return False
    conn.execute(
        sa.update(ENTERPRISES)
        .where(ENTERPRISES.c.id == firm.id)
        .values(
            prior_certificate_level=prior.level,
            prior_certificate_no=prior.number,
            prior_certificate_date=prior.issued_on,
            prior_certificate_recorded_at=at,
            updated_at=at,
        )
    )
    current = _current_certification(conn, firm.id)
    eligible = None
    if current is not None:
        status = prior_certificate_status(recorded=True, level=prior.level)
        eligible = eligible_level(float(current.score), campaign.thresholds, prior_status=status)
        conn.execute(sa.update(CERTIFICATIONS).where(CERTIFICATIONS.c.id == current.id).values(eligible_level=eligible))
    before = None
    if firm.prior_certificate_recorded_at is not None:
        before = PriorCertificate(firm.prior_certificate_level, firm.prior_certificate_no, firm.prior_certificate_date)
    record_event(
        conn,
        enterprise_id=firm.id,
        kind="prior_certificate_recorded",
        actor=actor,
        at=at,
        payload={
            **prior.payload(),
            "before": None if before is None else before.payload(),
            "source": source,
            **({} if current is None else {"certification_id": int(current.id), "eligible_level": eligible}),
        },
    )
    return True


def record_prior_certificate(
    session: Session,
    *,
    enterprise_id: int,
    level: Any,
    number: str | None,
    issued_on: Any,
    actor: Actor,
    context: Context,
) -> dict[str, Any]:
    """The city or the firm's district bureau records whether the firm holds an earlier level-1/2 certificate
    (level 1 or 2 with number and date, or none). Refused to other roles and outside the scope."""
    campaign, clock = context.campaign, context.clock
    parsed = parse_prior_level(level)
    now = clock.now()
    prior = check_prior(parsed, number, parse_date(issued_on), today=now.astimezone(clock.tz).date())
    with write_unit(session) as conn:
        firm = _firm(conn, enterprise_id, actor, lock=True)
        if actor.role not in PRIOR_RECORDERS:
            raise NotAllowed(
                "原标准化证书情况由市应急管理局或辖区应急管理局录入 / the earlier certificate is recorded by the city "
                "bureau or the firm's district bureau"
            )
        changed = apply_prior(conn, firm=firm, prior=prior, actor=actor, at=now, source="manual", campaign=campaign)
    return {"enterprise_id": enterprise_id, "changed": changed, **prior.payload()}


def prior_of(firm: Any) -> dict[str, Any]:
    """The firm's earlier-certificate status for pages and the API."""
    status = prior_certificate_status(
        recorded=firm.prior_certificate_recorded_at is not None, level=firm.prior_certificate_level
    )
    return {
        "status": status,
        "level": firm.prior_certificate_level,
        "number": firm.prior_certificate_no,
        "date": None if firm.prior_certificate_date is None else firm.prior_certificate_date.isoformat(),
        "recorded_at": None
        if firm.prior_certificate_recorded_at is None
        else firm.prior_certificate_recorded_at.isoformat(),
    }


def eligibility(score: float, prior_status: str, campaign: Campaign) -> dict[str, Any]:
    """What the score means for a new standardization application, in the plan's terms (方可新申报)."""
    reached = score_level(score, campaign.thresholds)
    return {
        "score_level": reached,
        "prior_status": prior_status,
        "eligible_level": eligible_level(score, campaign.thresholds, prior_status=prior_status),
        "floor": None
        if reached is None
        else (campaign.thresholds.level1_eligible if reached == 1 else campaign.thresholds.level2_eligible),
    }


def certificate_panel(*, firm: Any, actor: Actor, campaign: Campaign, certification: Any) -> dict[str, Any]:
    """What the firm page shows about certificates, and which of its forms the viewer may use."""
    prior = prior_of(firm)
    panel: dict[str, Any] = {
        "prior": prior,
        "can_record_prior": actor.role in PRIOR_RECORDERS,
        "can_decide_benchmark": False,
        "benchmark_floor": campaign.thresholds.benchmark,
        "eligibility": None,
    }
    if certification is not None and firm.state == "certified":
        panel["eligibility"] = eligibility(float(certification["score"]), prior["status"], campaign)
        panel["can_decide_benchmark"] = actor.role is Role.city_bureau
    return panel


# ---- the city's 标杆 list ------------------------------------------------------------------------


def _firm(conn: sa.Connection, enterprise_id: int, actor: Actor, *, lock: bool = False) -> Any:
    """The firm in the actor's scope; `lock` holds its row for the caller's write (PostgreSQL)."""
    query = sa.select(ENTERPRISES).where(ENTERPRISES.c.id == enterprise_id)
    firm = conn.execute(query.with_for_update() if lock else query).first()
    if firm is None or not in_scope(actor, firm):
        raise OutOfScope(f"找不到该企业 / no such enterprise: {enterprise_id}")
    return firm


def _current_certification(conn: sa.Connection, enterprise_id: int) -> Any:
    return conn.execute(
        sa.select(CERTIFICATIONS)
        .where(CERTIFICATIONS.c.enterprise_id == enterprise_id, CERTIFICATIONS.c.revoked_at.is_(None))
        .order_by(CERTIFICATIONS.c.id.desc())
        .limit(1)
    ).first()


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise InvalidInput("请填写理由 / a reason is required")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"理由超过 {MAX_TEXT} 字 / the reason is longer than {MAX_TEXT} characters")
    return text


def _city_only(actor: Actor) -> None:
    if actor.role is not Role.city_bureau:
        raise NotAllowed("标杆企业名单由市应急管理局确定 / only the city bureau names benchmark (标杆) firms")


def name_benchmark(
    session: Session, *, enterprise_id: int, reason: str | None, actor: Actor, context: Context
) -> dict[str, Any]:
    """The city bureau names a certified firm 标杆 (评分不得低于75分): refused below the floor, naming the score."""
    campaign, clock = context.campaign, context.clock
    _city_only(actor)
    text = _reason(reason)
    floor = campaign.thresholds.benchmark
    with write_unit(session) as conn:
        firm = _firm(conn, enterprise_id, actor, lock=True)
        cert = _current_certification(conn, enterprise_id)
        if firm.state != "certified" or cert is None:
            raise InvalidTransition(
                f"{firm.name}尚未通过达标认定，不能列入标杆企业名单 / {firm.name} is not certified, so it cannot be "
                "named a benchmark firm"
            )
        if cert.level == "benchmark":
            raise InvalidTransition(f"{firm.name}已列入标杆企业名单 / {firm.name} is already a benchmark firm")
        if float(cert.score) < floor:
            raise GuardFailed(
                "benchmark_floor",
                f"{firm.name}评审得分 {float(cert.score):.1f} 分，低于标杆企业的 {floor:g} 分（评分不得低于75分） / "
                f"{firm.name} scored {float(cert.score):.1f}, below the benchmark floor of {floor:g}",
            )
        now = clock.now()
        conn.execute(
            sa.update(CERTIFICATIONS)
            .where(CERTIFICATIONS.c.id == cert.id)
            .values(level="benchmark", benchmark_at=now, benchmark_by=actor.name)
        )
        payload = {"certification_id": int(cert.id), "certificate_no": cert.certificate_no, "score": float(cert.score)}
        event_id = record_event(
            conn,
            enterprise_id=firm.id,
            kind="benchmark_named",
            actor=actor,
            at=now,
            payload={**payload, "reason": text},
        )
    return {"enterprise_id": enterprise_id, "level": "benchmark", "event_id": event_id, **payload}


def withdraw_benchmark(
    session: Session, *, enterprise_id: int, reason: str | None, actor: Actor, clock: Clock
) -> dict[str, Any]:
    """The city bureau takes a firm off the 标杆 list (it stays 达标), with a reason."""
    _city_only(actor)
    text = _reason(reason)
    with write_unit(session) as conn:
        firm = _firm(conn, enterprise_id, actor, lock=True)
        cert = _current_certification(conn, enterprise_id)
        if cert is None or cert.level != "benchmark":
            raise InvalidTransition(f"{firm.name}不在标杆企业名单中 / {firm.name} is not a benchmark firm")
        now = clock.now()
        conn.execute(
            sa.update(CERTIFICATIONS)
            .where(CERTIFICATIONS.c.id == cert.id)
            .values(level="compliant", benchmark_at=None, benchmark_by=None)
        )
        payload = {"certification_id": int(cert.id), "certificate_no": cert.certificate_no, "score": float(cert.score)}
        event_id = record_event(
            conn,
            enterprise_id=firm.id,
            kind="benchmark_withdrawn",
            actor=actor,
            at=now,
            payload={**payload, "reason": text},
        )
    return {"enterprise_id": enterprise_id, "level": "compliant", "event_id": event_id, **payload}


def firm_id_by_code(conn: sa.Connection, uscc: str) -> int:
    return int(load_firm(conn, uscc=uscc.strip().upper()).id)


# ---- the certificate and the published lists -----------------------------------------------------


def certificate_of(conn: sa.Connection, *, enterprise_id: int, actor: Actor, campaign: Campaign) -> dict[str, Any]:
    """The firm's current certificate, for the printable page and the API; NotFound when it has none."""
    firm = _firm(conn, enterprise_id, actor)
    cert = _current_certification(conn, enterprise_id)
    if cert is None or firm.state != "certified":
        raise InvalidTransition(f"{firm.name}没有有效的达标证书 / {firm.name} holds no current certificate")
    district = conn.execute(sa.select(DISTRICTS.c.name).where(DISTRICTS.c.code == firm.district_code)).scalar()
    return {
        "enterprise_id": firm.id,
        "name": firm.name,
        "uscc": firm.uscc,
        "district": district,
        "certificate_no": cert.certificate_no,
        "level": cert.level,
        "score": float(cert.score),
        "certified_at": cert.certified_at,
        "valid_until": cert.valid_until,
        "benchmark_at": cert.benchmark_at,
        "issuer": campaign.campaign.city + "应急管理局",
        "eligibility": eligibility(float(cert.score), prior_of(firm)["status"], campaign),
        "prior": prior_of(firm),
    }


@dataclass(frozen=True)
class ListRow:
    certificate_no: str | None
    uscc: str
    name: str
    district: str
    sector: str
    key_field: bool
    score: float
    certified_on: dt.date
    valid_until: dt.date | None
    benchmark_on: dt.date | None


def published_list(conn: sa.Connection, *, kind: str, clock: Clock) -> Iterator[ListRow]:
    """The 达标企业名单 (every current certificate) or the 标杆企业名单 the city publishes, by district and
    certificate number, streamed."""
    if kind not in LIST_KINDS:
        raise InvalidInput(f"名单须为 certified 或 benchmark / kind must be certified or benchmark, not: {kind}")
    c, e, d = CERTIFICATIONS, ENTERPRISES, DISTRICTS
    query = (
        sa.select(
            c.c.certificate_no,
            e.c.uscc,
            e.c.name,
            d.c.name.label("district"),
            e.c.sector,
            e.c.key_field,
            c.c.score,
            c.c.certified_at,
            c.c.valid_until,
            c.c.benchmark_at,
        )
        .join(e, e.c.id == c.c.enterprise_id)
        .join(d, d.c.code == e.c.district_code)
        .where(c.c.revoked_at.is_(None), e.c.state == "certified")
        .order_by(d.c.code, c.c.id)
    )
    if kind == "benchmark":
        query = query.where(c.c.level == "benchmark")
    tz = clock.tz
    for r in conn.execute(query.execution_options(yield_per=2000)):
        yield ListRow(
            certificate_no=r.certificate_no,
            uscc=r.uscc,
            name=r.name,
            district=r.district,
            sector=r.sector,
            key_field=bool(r.key_field),
            score=float(r.score),
            certified_on=r.certified_at.astimezone(tz).date(),
            valid_until=r.valid_until,
            benchmark_on=None if r.benchmark_at is None else r.benchmark_at.astimezone(tz).date(),
        )


def list_counts(conn: sa.Connection) -> dict[str, int]:
    """How many firms each published list holds."""
    c, e = CERTIFICATIONS, ENTERPRISES
    row = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.count().filter(c.c.level == "benchmark"),
        )
        .select_from(c.join(e, e.c.id == c.c.enterprise_id))
        .where(c.c.revoked_at.is_(None), e.c.state == "certified")
    ).one()
    return {"certified": int(row[0]), "benchmark": int(row[1])}
