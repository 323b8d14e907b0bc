"""The records: SQLModel tables and the indexes the engine, sweeps and dashboards query by."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

GENESIS_HASH = "0" * 64  # the hash every firm's event chain starts from
# indexes a migration makes on one backend only, which the models cannot declare: the trigram index that
# lets PostgreSQL find a word inside firm names without reading every name (pg_trgm, migration 0010_lists)
BACKEND_INDEXES = {"ix_enterprises_name_trgm": "postgresql"}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware instants, stored in UTC on every backend (SQLite keeps no zone of its own)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: every stored instant must be timezone-aware")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _instant(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


class District(SQLModel, table=True):
    __tablename__ = "districts"

    code: str = Field(primary_key=True, max_length=12)
    name: str = Field(max_length=40)
    name_en: str = Field(max_length=80)


class Enterprise(SQLModel, table=True):
    """A firm of the industrial directory and where it stands in the campaign."""

    __tablename__ = "enterprises"
    __table_args__ = (
        # covering for the dashboards' one pass of counts (migration 0006 added above_size)
        sa.Index("ix_enterprises_district_state_key_above", "district_code", "state", "key_field", "above_size"),
        sa.Index("ix_enterprises_state_key_above", "state", "key_field", "above_size"),
        # the firm list's sorts, each ending in the id that breaks ties, so that a page is an index range
        # (keyset) and a jump skips index entries only (migration 0010_lists)
        sa.Index("ix_enterprises_name_id", "name", "id"),
        sa.Index("ix_enterprises_state_since_id", "state_since", "id"),
        sa.Index("ix_enterprises_district_id", "district_code", "id"),
        sa.Index("ix_enterprises_district_name_id", "district_code", "name", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    uscc: str = Field(max_length=18, unique=True)  # 统一社会信用代码
    name: str = Field(max_length=200)
    district_code: str = Field(foreign_key="districts.code", max_length=12)
    sector: str = Field(max_length=40)
    key_field: bool  # 重点监管领域
    above_size: bool  # 规模以上
    principal: str = Field(max_length=60)  # 主要负责人
    phone: str = Field(default="", max_length=40)
    email: str | None = Field(default=None, max_length=254)
    lang: str = Field(default="zh-CN", max_length=8)
    prior_certificate_level: int | None = None  # an earlier level-1/2 standardization certificate
    prior_certificate_no: str | None = Field(default=None, max_length=60)  # 原标准化证书编号
    prior_certificate_date: dt.date | None = None  # 原标准化证书发证日期
    # when someone recorded the firm's earlier-certificate status (none held, or level/number/date);
    # unset: nobody has, and the system does not know whether the firm holds one
    prior_certificate_recorded_at: dt.datetime | None = _instant(default=None)
    state: str = Field(default="mobilized", max_length=20)
    version: int = Field(default=1)
    state_since: dt.datetime = _instant()
    notified_at: dt.datetime | None = _instant(default=None)
    # when the firm left `mobilized` (started, or closed before starting): the dashboards' history of starts
    left_mobilized_at: dt.datetime | None = _instant(default=None)
    closed_reason: str | None = None
    event_count: int = Field(default=0)
    chain_head: str = Field(default=GENESIS_HASH, max_length=64)
    created_at: dt.datetime = _instant()
    updated_at: dt.datetime = _instant()


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=80, unique=True)
    display_name: str = Field(max_length=80)
    role: str = Field(max_length=20)
    district_code: str | None = Field(default=None, foreign_key="districts.code", max_length=12)
    enterprise_id: int | None = Field(default=None, foreign_key="enterprises.id")
    organisation: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    lang: str = Field(default="zh-CN", max_length=8)
    password_hash: str | None = None
    active: bool = True
    created_at: dt.datetime = _instant()


class ApiToken(SQLModel, table=True):
    """An opaque bearer token; only its SHA-256 is stored. Revoked by logging out, useless after expiry."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    created_at: dt.datetime = _instant()
    expires_at: dt.datetime = _instant()
    revoked_at: dt.datetime | None = _instant(default=None)


class LoginThrottle(SQLModel, table=True):
    """Failed sign-ins, counted in three scopes kept apart by their columns: `pair` (one account from one
    address: growing delays, then that address is locked out of that account), `address` (every account
    from one address: a budget) and `account` (one account from every address: locked only after many
    failures from many addresses, and then only for addresses that failed). No username can name an address."""

    __tablename__ = "login_throttles"

    scope: str = Field(primary_key=True, max_length=8)  # pair / address / account
    username: str = Field(primary_key=True, max_length=80)  # "" for scope address
    address: str = Field(primary_key=True, max_length=64)  # "" for scope account
    failures: int = 0
    last_failure_at: dt.datetime | None = _instant(default=None)
    locked_until: dt.datetime | None = _instant(default=None)


class ServerSecret(SQLModel, table=True):
    """A random secret the server makes for itself on first use (the sign-in form's nonce is signed with it)."""

    __tablename__ = "server_secrets"

    name: str = Field(primary_key=True, max_length=40)
    value: str = Field(max_length=128)


class ReviewerProfile(SQLModel, table=True):
    """A member of the evaluator pool (评定人员库): a user with the reviewer role."""

    __tablename__ = "reviewer_profiles"

    user_id: int = Field(foreign_key="users.id", primary_key=True)
    organisation: str = Field(max_length=200)
    employer_enterprise_id: int | None = Field(default=None, foreign_key="enterprises.id")
    trained_on: dt.date | None = None
    active: bool = True
    disqualified_at: dt.datetime | None = _instant(default=None)
    disqualified_reason: str | None = None


class ReviewerConsultancy(SQLModel, table=True):
    """A firm the reviewer consulted for: it may never review that firm."""

    __tablename__ = "reviewer_consultancies"

    reviewer_id: int = Field(foreign_key="users.id", primary_key=True)
    enterprise_id: int = Field(foreign_key="enterprises.id", primary_key=True)


class ReviewAssignmentStatus(StrEnum):
    """Where a reviewer stands on a review team."""

    active = "active"
    done = "done"  # scored
    replaced = "replaced"  # left the team by a redraw or a replacement
    recused = "recused"  # declared a conflict of interest
    conflict = "conflict"  # removed for an undeclared conflict


class ReviewAssignment(SQLModel, table=True):
    """A reviewer on an application's review team, drawn at random with a recorded seed."""

    __tablename__ = "review_assignments"
    __table_args__ = (
        sa.Index("ix_review_assignments_reviewer_status", "reviewer_id", "status"),
        sa.Index("ix_review_assignments_application", "application_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="applications.id")
    reviewer_id: int = Field(foreign_key="users.id")
    status: str = Field(default=ReviewAssignmentStatus.active, max_length=12)  # a ReviewAssignmentStatus
    draw_seed: int
    draw_pool: list[int] = Field(default_factory=list, sa_type=sa.JSON)  # the candidates the seed drew from
    assigned_at: dt.datetime = _instant()
    assigned_by: str = Field(max_length=80)
    replaced_at: dt.datetime | None = _instant(default=None)
    replaced_reason: str | None = None
    draw_id: int | None = Field(default=None, foreign_key="review_draws.id")  # the draw that put them on the team


class ReviewDrawKind(StrEnum):
    """What a draw of reviewers was for."""

    team = "team"
    redraw = "redraw"
    replacement = "replacement"


class ReviewDraw(SQLModel, table=True):
    """One draw by the server (a team, a full redraw, or one replacement): the seed from `secrets`, the
    candidate list it drew from and the team it gave, so anyone can redo it."""

    __tablename__ = "review_draws"

    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="applications.id", index=True)
    kind: str = Field(max_length=12)  # a ReviewDrawKind
    seed: int
    size: int
    candidates: list[int] = Field(default_factory=list, sa_type=sa.JSON)
    team: list[int] = Field(default_factory=list, sa_type=sa.JSON)
    reason: str | None = None  # a redraw's or a replacement's reason
    replaces_reviewer_id: int | None = Field(default=None, foreign_key="users.id")
    drawn_at: dt.datetime = _instant()
    drawn_by: str = Field(max_length=80)


class ReviewerReportStatus(StrEnum):
    """Where a report of reviewer misconduct stands."""

    open = "open"
    dismissed = "dismissed"
    disqualified = "disqualified"


class ReviewerReport(SQLModel, table=True):
    """A suspected reviewer misconduct reported by a district bureau (加强对评审专家的监督管理), reviewed by the
    support center: dismissed with a note, or the reviewer disqualified."""

    __tablename__ = "reviewer_reports"

    id: int | None = Field(default=None, primary_key=True)
    reviewer_id: int = Field(foreign_key="users.id", index=True)
    enterprise_id: int = Field(foreign_key="enterprises.id")
    application_id: int | None = Field(default=None, foreign_key="applications.id")
    district_code: str = Field(max_length=6)
    description: str
    status: str = Field(default=ReviewerReportStatus.open, max_length=12)  # a ReviewerReportStatus
    reported_by: str = Field(max_length=80)
    reported_at: dt.datetime = _instant()
    decided_by: str | None = Field(default=None, max_length=80)
    decided_at: dt.datetime | None = _instant(default=None)
    decision_note: str | None = None


class EvidenceFile(SQLModel, table=True):
    """An uploaded evidence file, stored once by its SHA-256 under the data folder."""

    __tablename__ = "evidence_files"

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(max_length=64, index=True)
    enterprise_id: int = Field(foreign_key="enterprises.id", index=True)
    kind: str = Field(max_length=30)  # rectification / self_assessment_report / application_form / supporting_material
    filename: str = Field(max_length=200)
    content_type: str = Field(max_length=100)
    size: int
    hazard_id: int | None = Field(default=None, foreign_key="hazards.id")
    uploaded_at: dt.datetime = _instant()
    uploaded_by: str = Field(max_length=80)


class IdempotentRequest(SQLModel, table=True):
    """The first answer to a request sent with an `Idempotency-Key`, returned again on a retry."""

    __tablename__ = "idempotent_requests"
    __table_args__ = (sa.UniqueConstraint("user_id", "key", name="uq_idempotent_user_key"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id")
    key: str = Field(max_length=200)
    request_hash: str = Field(max_length=64)
    status_code: int
    response: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: dt.datetime = _instant()


class SelfAssessment(SQLModel, table=True):
    __tablename__ = "self_assessments"

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: int = Field(foreign_key="enterprises.id", index=True)
    total_score: float
    recorded_at: dt.datetime = _instant()
    recorded_by: str = Field(max_length=80)


class SelfAssessmentItem(SQLModel, table=True):
    __tablename__ = "self_assessment_items"

    assessment_id: int = Field(foreign_key="self_assessments.id", primary_key=True)
    item_code: str = Field(primary_key=True, max_length=20)
    score: float
    note: str | None = None


class HazardStatus(StrEnum):
    """Where a hazard's rectification stands."""

    open = "open"
    submitted = "submitted"  # rectified, awaiting acceptance by the office that raised the finding
    rectified = "rectified"
    accepted = "accepted"


class Hazard(SQLModel, table=True):
    """A hazard (隐患) with its five implementations (五落实)."""

    __tablename__ = "hazards"
    __table_args__ = (
        sa.Index("ix_hazards_enterprise_status", "enterprise_id", "status"),
        sa.Index("ix_hazards_status_deadline", "status", "deadline"),
    )

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: int = Field(foreign_key="enterprises.id")
    source: str = Field(default="self", max_length=20)  # self / audit / review / revocation
    description: str
    severity: str = Field(default="general", max_length=10)  # general / major
    responsible_person: str | None = Field(default=None, max_length=60)  # 责任人
    measures: str | None = None  # 措施
    funds: float | None = None  # 资金 (yuan)
    deadline: dt.date | None = None  # 时限
    emergency_plan: str | None = None  # 应急预案
    status: str = Field(default=HazardStatus.open, max_length=10)  # a HazardStatus
    reported_at: dt.datetime = _instant()
    rectified_at: dt.datetime | None = _instant(default=None)
    rectification_evidence: str | None = Field(default=None, max_length=64)
    rectification_evidence_id: int | None = None  # the evidence_files row of kind rectification
    decided_at: dt.datetime | None = _instant(default=None)  # the raising office accepted or rejected
    decided_by: str | None = Field(default=None, max_length=80)
    decision_note: str | None = None


class ApplicationStatus(StrEnum):
    """How far an application for certification has come."""

    applied = "applied"
    verified = "verified"
    reviewed = "reviewed"
    certified = "certified"
    returned = "returned"
    audit_failed = "audit_failed"
    review_failed = "review_failed"
    closed = "closed"


class Application(SQLModel, table=True):
    """One application for certification (达标申请) and how far it has come."""

    __tablename__ = "applications"
    __table_args__ = (sa.Index("ix_applications_status", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: int = Field(foreign_key="enterprises.id", index=True)
    status: str = Field(default=ApplicationStatus.applied, max_length=20)  # an ApplicationStatus
    self_assessment_id: int | None = Field(default=None, foreign_key="self_assessments.id")
    self_assessment_total: float | None = None
    materials: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    submitted_at: dt.datetime = _instant()
    verified_at: dt.datetime | None = _instant(default=None)
    audit_passed_at: dt.datetime | None = _instant(default=None)
    reviewed_at: dt.datetime | None = _instant(default=None)
    review_score: float | None = None
    decided_at: dt.datetime | None = _instant(default=None)
    outcome_reason: str | None = None
    verification_opinion: str | None = None  # 核实意见
    verification_checklist: list[str] | None = Field(default=None, sa_type=sa.JSON)  # the items checked
    missing: list[str] | None = Field(default=None, sa_type=sa.JSON)  # dossier items a return names


class Review(SQLModel, table=True):
    __tablename__ = "reviews"

    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="applications.id", index=True)
    reviewer_id: int | None = Field(default=None, foreign_key="users.id")
    part: str = Field(default="team", max_length=10)  # online / on_site / team
    score: float
    findings: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    # a member's part: the score per outline element; the team's row: how the members' scores were combined
    sheet: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    recorded_at: dt.datetime = _instant()


class Certification(SQLModel, table=True):
    __tablename__ = "certifications"
    __table_args__ = (sa.UniqueConstraint("certificate_no", name="uq_certifications_certificate_no"),)

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: int = Field(foreign_key="enterprises.id", index=True)
    application_id: int = Field(foreign_key="applications.id")
    level: str = Field(max_length=12)  # compliant (达标) / benchmark (标杆, named by the city bureau)
    score: float
    eligible_level: int | None = None  # may newly apply for standardization level 1 or 2
    certified_at: dt.datetime = _instant()
    certificate_no: str | None = Field(default=None, max_length=40)  # e.g. CZDB-2023-000123
    valid_until: dt.date | None = None  # last day of validity (local setting in the campaign file)
    benchmark_at: dt.datetime | None = _instant(default=None)  # named 标杆 by the city bureau
    benchmark_by: str | None = Field(default=None, max_length=80)
    revoked_at: dt.datetime | None = _instant(default=None)
    revoke_reason: str | None = None


class Event(SQLModel, table=True):
    """One transition, hash-chained per firm; append-only (database triggers refuse change)."""

    __tablename__ = "events"
    __table_args__ = (sa.UniqueConstraint("enterprise_id", "seq", name="uq_events_enterprise_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: int = Field(foreign_key="enterprises.id")
    seq: int
    trigger: str = Field(max_length=40)
    actor: str = Field(max_length=80)
    role: str = Field(max_length=20)
    at: dt.datetime = _instant()
    from_state: str = Field(max_length=20)
    to_state: str = Field(max_length=20)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class OutboxStatus(StrEnum):
    """Where a message in the outbox stands."""

    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    no_recipient = "no_recipient"


class Outbox(SQLModel, table=True):
    """Mail to be sent after commit; `dedupe_key` makes every message happen at most once."""

    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_status_next", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=200, unique=True)
    kind: str = Field(max_length=40)
    audience: str = Field(max_length=20)  # enterprise / district_bureau / city_bureau / ...
    enterprise_id: int | None = Field(default=None, foreign_key="enterprises.id", index=True)
    district_code: str | None = Field(default=None, max_length=12)
    to_address: str | None = Field(default=None, max_length=254)
    lang: str = Field(default="zh-CN", max_length=8)
    context: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    status: str = Field(default=OutboxStatus.pending, max_length=12)  # an OutboxStatus
    message_id: str | None = Field(default=None, max_length=200)  # stable, from the dedupe key
    claimed_by: str | None = Field(default=None, max_length=80)  # the dispatcher holding it
    claimed_until: dt.datetime | None = _instant(default=None)  # its lease; expired leases are retaken
    attempts: int = 0
    next_attempt_at: dt.datetime | None = _instant(default=None)
    last_error: str | None = None
    created_at: dt.datetime = _instant()
    sent_at: dt.datetime | None = _instant(default=None)


class OutboxRetry(SQLModel, table=True):
    """A message put back in the queue by hand (the city bureau's 重新发送, or `dabiao outbox retry`): who, when,
    and where the message stood. Append-only (database triggers refuse change)."""

    __tablename__ = "outbox_retries"

    id: int | None = Field(default=None, primary_key=True)
    outbox_id: int = Field(foreign_key="outbox.id", index=True)
    retried_by: str = Field(max_length=80)  # a user name, or `cli` for the command line
    retried_at: dt.datetime = _instant()
    was_status: str = Field(max_length=12)
    was_error: str | None = None


metadata = SQLModel.metadata


class EscalationStatus(StrEnum):
    """Where an escalation stands."""

    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


class Escalation(SQLModel, table=True):
    """One step of the escalation ladder for one overdue subject: the firm, then its district bureau, then
    the city bureau. `dedupe_key` (rule:subject:step) makes each step happen once however often sweeps run."""

    __tablename__ = "escalations"
    __table_args__ = (
        sa.Index("ix_escalations_district_status", "district_code", "status"),
        sa.Index("ix_escalations_status_created", "status", "created_at"),
        # the offices' cases (deadlines/escalations.py list_cases): the open ones from this index alone
        sa.Index("ix_escalations_cases", "step", "status", "district_code", "enterprise_id", "rule", "deadline"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=200, unique=True)
    rule: str = Field(max_length=40)  # key_field_start, creation_end, hazard_deadline, sla_verification, …
    subject_kind: str = Field(max_length=20)  # enterprise / hazard / application
    subject_id: int
    enterprise_id: int = Field(foreign_key="enterprises.id", index=True)
    district_code: str = Field(max_length=12)
    step: str = Field(max_length=20)  # firm / district / city
    deadline: dt.date
    days_overdue: int = 0
    status: str = Field(default=EscalationStatus.open, max_length=12)  # an EscalationStatus
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: dt.datetime = _instant()
    acknowledged_at: dt.datetime | None = _instant(default=None)
    acknowledged_by: str | None = Field(default=None, max_length=80)
    resolved_at: dt.datetime | None = _instant(default=None)


class ReferralStatus(StrEnum):
    """Where a referral to the local government stands."""

    proposed = "proposed"
    confirmed = "confirmed"
    declined = "declined"
    acknowledged = "acknowledged"
    withdrawn = "withdrawn"


class Referral(SQLModel, table=True):
    """A key-field firm with no hope of compliance, referred to its local government (属地政府):
    proposed by the district, confirmed or declined by the city, acknowledged by the local government."""

    __tablename__ = "referrals"
    __table_args__ = (sa.Index("ix_referrals_district_status", "district_code", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=200, unique=True)
    enterprise_id: int = Field(foreign_key="enterprises.id", index=True)
    district_code: str = Field(max_length=12)
    grounds: str = Field(max_length=40)  # non_participating / failed_review_twice / major_hazard_overdue
    status: str = Field(default=ReferralStatus.proposed, max_length=12)  # a ReferralStatus
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    proposed_at: dt.datetime = _instant()
    proposed_by: str = Field(max_length=80)
    decided_at: dt.datetime | None = _instant(default=None)
    decided_by: str | None = Field(default=None, max_length=80)
    decision_note: str | None = None
    acknowledged_at: dt.datetime | None = _instant(default=None)
    acknowledged_by: str | None = Field(default=None, max_length=80)
    proposer_user_id: int | None = Field(default=None, foreign_key="users.id")  # gets the withdrawal note
    withdrawn_at: dt.datetime | None = _instant(default=None)
    withdrawal_reason: str | None = None


class ReferralSuggestionStatus(StrEnum):
    """Where a sweep's suggestion of a referral stands."""

    open = "open"
    proposed = "proposed"
    lapsed = "lapsed"


class ReferralSuggestion(SQLModel, table=True):
    """A key-field firm whose grounds for referral hold, suggested by the sweep to its district: an item of
    the district's worklist, not a referral (only the district proposes one)."""

    __tablename__ = "referral_suggestions"
    __table_args__ = (sa.Index("ix_referral_suggestions_district_status", "district_code", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=200, unique=True)
    enterprise_id: int = Field(foreign_key="enterprises.id", index=True)
    district_code: str = Field(max_length=12)
    grounds: str = Field(max_length=40)
    status: str = Field(default=ReferralSuggestionStatus.open, max_length=12)  # a ReferralSuggestionStatus
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    suggested_at: dt.datetime = _instant()
    closed_at: dt.datetime | None = _instant(default=None)


class DistrictTarget(SQLModel, table=True):
    """A district's target for firms *starting* the creation work (附件2), imported from the official
    figures; it wins over the campaign file's figures."""

    __tablename__ = "district_targets"

    district_code: str = Field(foreign_key="districts.code", primary_key=True, max_length=12)
    key_field_started: int
    other_started: int
    source: str = Field(max_length=40)  # 附件2 for the official figures
    file_name: str = Field(default="", max_length=200)
    imported_by: str = Field(max_length=80)
    imported_at: dt.datetime = _instant()


class GuidanceAssignment(SQLModel, table=True):
    """An expert sent to guide, or an officer sent to supervise, a benchmark candidate (派驻专家重点指导、
    监管人员重点督导)."""

    __tablename__ = "guidance_assignments"

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: int = Field(foreign_key="enterprises.id", index=True)
    district_code: str = Field(max_length=12, index=True)
    person: str = Field(max_length=80)
    kind: str = Field(max_length=12)  # expert / officer
    from_date: dt.date
    assigned_by: str = Field(max_length=80)
    assigned_at: dt.datetime = _instant()


class SweepRunStatus(StrEnum):
    """Where a day's sweep stands."""

    running = "running"
    finished = "finished"


class SweepRun(SQLModel, table=True):
    """One day's deadline sweep: claimed once per `as_of` (unique), finished when every rule committed.
    `counts` holds what each rule did that day, updated in the same transaction as the rule's rows."""

    __tablename__ = "sweep_runs"

    id: int | None = Field(default=None, primary_key=True)
    as_of: dt.date = Field(unique=True)
    status: str = Field(default=SweepRunStatus.running, max_length=12)  # a SweepRunStatus
    runs: int = Field(default=1)  # how often the day was swept (reruns find nothing new)
    owner: str = Field(default="", max_length=120)  # host:pid of the process that swept last
    config: str = Field(default="", max_length=64)  # hash of the campaign's deadline rules it swept with
    counts: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    started_at: dt.datetime = _instant()
    finished_at: dt.datetime | None = _instant(default=None)


class SweepChange(SQLModel, table=True):
    """A subject a deadline rule looks at has changed (written by database triggers, see migration 0004);
    the next day's sweep claims the rows (`claimed_for`), evaluates those subjects, then deletes them."""

    __tablename__ = "sweep_changes"
    __table_args__ = (sa.Index("ix_sweep_changes_claimed", "claimed_for", "subject_kind", "subject_id"),)

    id: int | None = Field(default=None, primary_key=True)
    subject_kind: str = Field(max_length=20)  # enterprise / hazard / application
    subject_id: int
    claimed_for: dt.date | None = None


# Sweeps ask "has this subject reached this step?" through the unique dedupe key (migration 0006 dropped
# a second (subject_id, rule, step) index: one random index page fewer per escalation row written), and
# find the subjects a rule still holds open in one index range.
_escalations = Escalation.__table__  # type: ignore[attr-defined]
sa.Index("ix_escalations_rule_status", _escalations.c.rule, _escalations.c.status, _escalations.c.subject_id)
# The service-level rules find the applications whose instant falls in one day by an index range. Partial
# (instant set): a new application enters one of them, and each step adds one entry.
for _set_at in ("submitted_at", "verified_at", "audit_passed_at", "reviewed_at"):
    _column = Application.__table__.c[_set_at]  # type: ignore[attr-defined]
    sa.Index(
        f"ix_applications_{_set_at}", _column, sqlite_where=_column.is_not(None), postgresql_where=_column.is_not(None)
    )
# Firms not yet notified are few once mobilization is over; the sweep finds them by this index.
sa.Index("ix_enterprises_notified_at", Enterprise.__table__.c.notified_at)  # type: ignore[attr-defined]


def unreached_clause(table: sa.Table) -> sa.ColumnElement[bool]:
    """Firms the mobilization notice cannot reach (无法送达): still `mobilized`, never notified, no e-mail address.
    Written with literal values so that the partial index below serves it (SQLite matches an index's WHERE
    term by term, and never against a bound parameter)."""
    return sa.and_(
        table.c.state == sa.literal_column("'mobilized'"),
        table.c.notified_at.is_(None),
        sa.or_(table.c.email.is_(None), sa.func.trim(table.c.email) == sa.literal_column("''")),
    )


# The task list's undeliverable notices (of a district), oldest first: few rows once mobilization is over.
# state and notified_at lead although constant here: SQLite's planner prefers the index that matches the most
# equality terms, and would otherwise walk every `mobilized` firm of the district by the district index.
_unreached = unreached_clause(Enterprise.__table__)  # type: ignore[attr-defined]
sa.Index(
    "ix_enterprises_unreached",
    Enterprise.__table__.c.state,  # type: ignore[attr-defined]
    Enterprise.__table__.c.notified_at,  # type: ignore[attr-defined]
    Enterprise.__table__.c.district_code,  # type: ignore[attr-defined]
    Enterprise.__table__.c.created_at,  # type: ignore[attr-defined]
    sqlite_where=_unreached,
    postgresql_where=_unreached,
)


class Inspection(SQLModel, table=True):
    """An inspection, online patrol or guidance visit of a district bureau at a firm (线下检查、线上巡查、重点指导),
    with the outline items checked, the findings raised as hazards and any penalty decision."""

    __tablename__ = "inspections"
    __table_args__ = (
        sa.Index("ix_inspections_district_held", "district_code", "held_on"),
        sa.Index("ix_inspections_enterprise_held", "enterprise_id", "held_on"),
    )

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: int = Field(foreign_key="enterprises.id")
    district_code: str = Field(foreign_key="districts.code", max_length=12)
    kind: str = Field(max_length=12)  # onsite / online / guidance
    held_on: dt.date
    inspectors: list[str] = Field(sa_type=sa.JSON)
    items_checked: list[str] = Field(sa_type=sa.JSON)  # codes of the creation outline
    summary: str | None = None
    grade: str | None = Field(default=None, max_length=20)  # the firm's supervision grade (not on guidance visits)
    plan_month: dt.date | None = None  # first day of the monthly plan the inspection carries out
    penalty_decision: str | None = None
    legal_basis: str | None = None
    penalty_band: str | None = Field(default=None, max_length=40)
    penalty_factor: float | None = None
    evidence_ids: list[int] = Field(default_factory=list, sa_type=sa.JSON)
    # a guidance visit (kind `guidance`) of an expert or officer sent to a benchmark candidate
    guidance_assignment_id: int | None = Field(default=None, foreign_key="guidance_assignments.id", index=True)
    recorded_by: str = Field(max_length=80)
    recorded_at: dt.datetime = _instant()


class InspectionFinding(SQLModel, table=True):
    """A finding of an inspection, kept as a hazard of the firm raised by the bureau."""

    __tablename__ = "inspection_findings"

    inspection_id: int = Field(foreign_key="inspections.id", primary_key=True)
    hazard_id: int = Field(foreign_key="hazards.id", primary_key=True)


class Training(SQLModel, table=True):
    """A district's training session or briefing for firms (专项培训、企业宣讲)."""

    __tablename__ = "trainings"
    __table_args__ = (sa.Index("ix_trainings_district_held", "district_code", "held_on"),)

    id: int | None = Field(default=None, primary_key=True)
    district_code: str = Field(foreign_key="districts.code", max_length=12)
    kind: str = Field(max_length=12)  # training / briefing
    held_on: dt.date
    topic: str = Field(max_length=200)
    recorded_by: str = Field(max_length=80)
    recorded_at: dt.datetime = _instant()


class TrainingAttendance(SQLModel, table=True):
    """A firm at a training session or briefing, with how many of its people came."""

    __tablename__ = "training_attendances"

    training_id: int = Field(foreign_key="trainings.id", primary_key=True)
    enterprise_id: int = Field(foreign_key="enterprises.id", primary_key=True, index=True)
    people: int = 1


class SafetyCodeKey(SQLModel, table=True):
    """The secret the firms' safety codes (常安码) are signed with; the oldest row is the one in use."""

    __tablename__ = "safety_code_keys"

    id: int | None = Field(default=None, primary_key=True)
    secret: str = Field(max_length=64)
    created_at: dt.datetime = _instant()


class SummaryState(SQLModel, table=True):
    """The dashboards' daily summary: firms per district × field × size × state, kept by database triggers on
    `enterprises` (see `workflow.summary`). On PostgreSQL the triggers append to `summary_deltas` and the
    sweep folds those in; the live figure is this row plus its deltas."""

    __tablename__ = "summary_states"

    district_code: str = Field(primary_key=True, max_length=12)
    key_field: bool = Field(primary_key=True)
    above_size: bool = Field(primary_key=True)
    state: str = Field(primary_key=True, max_length=20)
    firms: int = 0


class SummaryStart(SQLModel, table=True):
    """The dashboards' history of starts: firms out of `mobilized` per district × field × size and the local
    day (Asia/Shanghai) they left it (`enterprises.left_mobilized_at`), kept as `summary_states` is."""

    __tablename__ = "summary_starts"

    district_code: str = Field(primary_key=True, max_length=12)
    key_field: bool = Field(primary_key=True)
    above_size: bool = Field(primary_key=True)
    started_on: dt.date = Field(primary_key=True)
    firms: int = 0


class SummaryDelta(SQLModel, table=True):
    """A change to the summary not yet folded in (PostgreSQL): appended by the triggers, so that concurrent
    transitions never wait on one counter row; `n` is +1/−1 (or a statement's count), `started_on` is set
    when the firm counts in the history of starts."""

    __tablename__ = "summary_deltas"

    id: int | None = Field(default=None, primary_key=True)
    district_code: str = Field(max_length=12)
    key_field: bool
    above_size: bool
    state: str = Field(max_length=20)
    started_on: dt.date | None = None
    n: int
