"""Request and response shapes of the JSON API, in families (…Create, …Read, …Update, …Page)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workflow.limits import TEXT_LIMITS


class ErrorRead(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. guard_failed")
    message: str
    message_zh: str
    message_en: str
    guard: str | None = None


class TokenRead(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: dt.datetime


class UserRead(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    district_code: str | None
    enterprise_id: int | None
    lang: str


class EnterpriseRead(BaseModel):
    id: int
    uscc: str
    name: str
    district_code: str
    district_name: str
    sector: str
    key_field: bool
    above_size: bool
    state: str
    state_label: str
    state_since: dt.datetime
    version: int
    overdue: bool


class EnterprisePage(BaseModel):
    items: list[EnterpriseRead]
    total: int
    page: int
    page_size: int
    pages: int
    sort: str  # the sort applied: a column key, `-key` when descending
    first_id: int | None  # pass as `before` for the page before this one (a keyset seek)
    last_id: int | None  # pass as `after` for the page after this one


class EnterpriseDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    uscc: str
    name: str
    state: str
    version: int
    next_deadline: dict[str, Any] | None
    open_hazards: list[dict[str, Any]]
    allowed_triggers: list[str]
    history: list[dict[str, Any]]


class TransitionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, description="the firm's version the caller saw; another one is a conflict (409)")
    data: dict[str, Any] | None = Field(default=None, description="reason, score, findings, materials …")
    confirm_name: str | None = Field(
        default=None,
        max_length=400,
        description="the firm's full name, required to close a firm, revoke its certificate or fail its audit or "
        "review (422 without it or with another name)",
    )


class TransitionResult(BaseModel):
    enterprise_id: int
    trigger: str
    from_state: str
    to_state: str
    version: int
    event_id: int
    at: dt.datetime
    record: dict[str, Any]
    mails: list[str]


class SelfAssessmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scores: dict[str, float] = Field(description="outline item code → score")
    notes: dict[str, str] | None = Field(
        default=None, description=f"outline item code → note (at most {TEXT_LIMITS['self_assessment_note']} characters)"
    )


class SelfAssessmentRead(BaseModel):
    id: int
    total_score: float


class FiveImplementationsFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    responsible_person: str | None = Field(default=None, max_length=TEXT_LIMITS["responsible_person"])
    measures: str | None = Field(default=None, max_length=TEXT_LIMITS["measures"])
    funds: Decimal | None = Field(default=None, description="yuan, at most two decimal places")
    deadline: dt.date | None = Field(default=None, description="from the report day to the campaign's latest")
    emergency_plan: str | None = Field(default=None, max_length=TEXT_LIMITS["emergency_plan"])


class HazardCreate(FiveImplementationsFields):
    description: str = Field(min_length=1, max_length=TEXT_LIMITS["description"])
    severity: str = Field(default="general", pattern="^(general|major)$")


class HazardUpdate(FiveImplementationsFields):
    pass


class HazardRectify(BaseModel):
    model_config = ConfigDict(extra="forbid")

    evidence_id: int | None = Field(default=None, description="the uploaded rectification file for this hazard")
    evidence_sha256: str | None = Field(default=None, pattern="^[0-9a-f]{64}$", description="or its SHA-256")
    note: str | None = Field(default=None, max_length=TEXT_LIMITS["note"])


class HazardDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=TEXT_LIMITS["note"], description="required to reject")


class HazardRead(BaseModel):
    id: int
    description: str
    severity: str
    source: str
    status: str
    responsible_person: str | None
    measures: str | None
    funds: float | None
    deadline: dt.date | None
    emergency_plan: str | None
    rectified_at: dt.datetime | None = None
    rectification_evidence_id: int | None = None
    closed_by: str | None = Field(default=None, description="enterprise, or the office that accepts it")
    decided_at: dt.datetime | None = None
    decided_by: str | None = None
    decision_note: str | None = None


class EvidenceRead(BaseModel):
    id: int
    sha256: str
    filename: str
    content_type: str
    size: int
    kind: str
    hazard_id: int | None = None


class WorklistItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    application_id: int
    since: dt.datetime
    days_waiting: int


class WorklistPage(BaseModel):
    name: str
    items: list[WorklistItem]


class UndeliverableItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    enterprise_id: int
    name: str
    reason: str
    tried_at: dt.datetime | None
    days_waiting: int


class UndeliverablePage(BaseModel):
    name: str
    items: list[UndeliverableItem]


class TaskItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: str = Field(description="verification, audit, review, certification, undeliverable or assignment")
    application_id: int | None
    enterprise_id: int
    uscc: str
    name: str
    district_code: str
    sector: str
    key_field: bool
    version: int
    position: int = Field(description="the row's place in the whole list under these filters, from 0")
    since: dt.datetime
    due: dt.date
    due_source: str = Field(description="plan: the plan's date; local: a time limit of the campaign file (本地设置)")
    days_waiting: int
    days_overdue: int
    due_today: bool


class TaskCount(BaseModel):
    total: int
    overdue: int


class TaskLimit(BaseModel):
    days: int | None
    date: dt.date | None
    source: str
    words: str


class TaskPage(BaseModel):
    kinds: list[str]
    counts: dict[str, TaskCount]
    total: int
    page: int
    page_size: int
    pages: int
    items: list[TaskItem]
    limits: dict[str, TaskLimit]
    evaluation_end: dt.date


class TeamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: Any = Field(default=None, description="not accepted: the server draws with a seed of its own, recorded")


class RedrawCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(max_length=2000)


class RecusalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reviewer_id: int | None = Field(default=None, description="the organiser names the reviewer; a reviewer omits it")
    reason: str = Field(max_length=2000)


class EmploymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enterprise_id: int


class ReviewerReportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reviewer_id: int
    enterprise_id: int
    application_id: int | None = None
    description: str = Field(max_length=2000)


class ReviewerReportDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["dismiss", "disqualify"]
    note: str = Field(max_length=2000)


class TeamRead(BaseModel):
    application_id: int
    seed: int
    reviewer_ids: list[int]


class ReviewerScoreCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sheet: dict[str, Any] = Field(
        description='per outline element its online and on-site score, e.g. {"1": {"online": 9.5, "on_site": 10}}'
    )
    findings: list[dict[str, Any]] = Field(default_factory=list, max_length=200)


class TeamResultCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(default=None, ge=1)


class ReviewerRead(BaseModel):
    id: int
    username: str
    name: str
    organisation: str
    employer_enterprise_id: int | None
    trained_on: dt.date | None
    active: bool
    disqualified_at: dt.datetime | None
    disqualified_reason: str | None
    consulted_for: list[int]


class ConsultancyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enterprise_id: int = Field(ge=1)


class DisqualifyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


class DisqualifyRead(BaseModel):
    reviewer_id: int
    reassigned: list[dict[str, int]]


class ApplicationRead(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    enterprise_id: int
    status: str


class PasswordWrite(BaseModel):
    password: str = Field(max_length=1000)  # the service's own cap (256) answers with its message


class AccountChangeRead(BaseModel):
    username: str
    active: bool
    revoked: int


class UpRead(BaseModel):
    status: str  # up / down


class ReplicaRead(BaseModel):
    """The hot standby as this process last measured it (DABIAO_READ_DATABASE_URL)."""

    read: bool  # reads go there now
    as_of: dt.datetime | None
    lag_seconds: float | None
    reason: str  # why not, when not


class HealthRead(BaseModel):
    status: str
    database: bool
    scheduler_leader: bool | None
    outbox_pending: int | None
    outbox_failed: int | None
    replica: ReplicaRead | None = None  # None: no standby configured
