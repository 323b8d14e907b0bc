"""What the guards know about one firm, read lazily from the database inside the fire's transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from workflow.campaign import Campaign
from workflow.dossier import DOSSIER_KINDS, KIND_LABELS
from workflow.driver import Raw
from workflow.models import HazardStatus
from workflow.tables import HAZARDS, OPEN_APPLICATION_STATUSES

# A hazard lacks one of the five implementations (五落实) when any of these is missing.
_FIVE = sa.or_(
    HAZARDS.c.responsible_person.is_(None),
    HAZARDS.c.responsible_person == "",
    HAZARDS.c.measures.is_(None),
    HAZARDS.c.measures == "",
    HAZARDS.c.funds.is_(None),
    HAZARDS.c.deadline.is_(None),
    HAZARDS.c.emergency_plan.is_(None),
    HAZARDS.c.emergency_plan == "",
)


def five_implementations_missing() -> sa.ColumnElement[bool]:
    return _FIVE


# The facts' queries, written once for the driver (`workflow.driver.Raw`); `_FIVE` spelled out in SQL.
_HAZARD_COUNTS = (
    f"SELECT count(CASE WHEN status IN ('{HazardStatus.open.value}', '{HazardStatus.submitted.value}') THEN 1 END), "
    "count(CASE WHEN responsible_person IS NULL OR responsible_person = '' OR measures IS NULL OR measures = '' "
    "OR funds IS NULL OR deadline IS NULL OR emergency_plan IS NULL OR emergency_plan = '' THEN 1 END) "
    "FROM hazards WHERE enterprise_id = :firm_id"
)
_LATEST_SELF_ASSESSMENT = (
    "SELECT id, total_score FROM self_assessments WHERE enterprise_id = :firm_id ORDER BY id DESC LIMIT 1"
)
_LATEST_SELF_ASSESSMENT_AT = (
    "SELECT recorded_at FROM self_assessments WHERE enterprise_id = :firm_id ORDER BY id DESC LIMIT 1"
)
_LAST_RECTIFICATION = (
    "SELECT rectified_at, id, description FROM hazards WHERE enterprise_id = :firm_id "
    "AND status IN ('rectified', 'accepted') AND rectified_at IS NOT NULL ORDER BY rectified_at DESC, id DESC LIMIT 1"
)
_OPEN_HAZARD_NAMES = (
    "SELECT id, description FROM hazards WHERE enterprise_id = :firm_id AND status IN ('open', 'submitted') "
    "ORDER BY id LIMIT 5"
)
_DOSSIER_KINDS_UPLOADED = (
    "SELECT DISTINCT kind FROM evidence_files WHERE enterprise_id = :firm_id "
    f"AND kind IN ({', '.join(repr(k) for k in DOSSIER_KINDS)})"
)
_OPEN_APPLICATION = (
    "SELECT id, audit_passed_at, review_score FROM applications WHERE enterprise_id = :firm_id "
    f"AND status IN ({', '.join(repr(s.value) for s in OPEN_APPLICATION_STATUSES)}) ORDER BY id DESC LIMIT 1"
)


_FIVE_MISSING_SQL = (
    "h.responsible_person IS NULL OR h.responsible_person = '' OR h.measures IS NULL OR h.measures = '' "
    "OR h.funds IS NULL OR h.deadline IS NULL OR h.emergency_plan IS NULL OR h.emergency_plan = ''"
)
_OPEN_APP_SQL = (
    "FROM applications a WHERE a.enterprise_id = e.id "
    f"AND a.status IN ({', '.join(repr(s.value) for s in OPEN_APPLICATION_STATUSES)}) ORDER BY a.id DESC LIMIT 1"
)
# Every fact as a column of the query that loads the firm `e` (each an index lookup), so `fire` learns them
# in the same round trip as the firm; `DbFacts(prefetched=…)` takes the values in this order.
PREFETCH_COLUMNS = (
    f"(SELECT count(*) FROM hazards h WHERE h.enterprise_id = e.id AND h.status IN ('{HazardStatus.open.value}', "
    f"'{HazardStatus.submitted.value}'))",
    f"(SELECT count(*) FROM hazards h WHERE h.enterprise_id = e.id AND ({_FIVE_MISSING_SQL}))",
    "(SELECT s.id FROM self_assessments s WHERE s.enterprise_id = e.id ORDER BY s.id DESC LIMIT 1)",
    "(SELECT s.total_score FROM self_assessments s WHERE s.enterprise_id = e.id ORDER BY s.id DESC LIMIT 1)",
    f"(SELECT a.id {_OPEN_APP_SQL})",
    f"(SELECT a.audit_passed_at {_OPEN_APP_SQL})",
    f"(SELECT a.review_score {_OPEN_APP_SQL})",
)


class SelfAssessmentFact(NamedTuple):
    id: int
    total_score: float


class ApplicationFact(NamedTuple):
    """What the guards and effects read of the open application (`audit_passed_at` as the driver gives it:
    only whether it is set matters here)."""

    id: int
    audit_passed_at: Any
    review_score: float | None


def _instant(value: Any, tz: ZoneInfo) -> dt.datetime:
    """An instant as the driver gives it (SQLite: naive UTC text; PostgreSQL: aware), in the campaign's zone."""
    at: dt.datetime = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(tz)


def _named(row: Sequence[Any]) -> str:
    text = str(row[1] or "")
    return f"#{row[0]}“{text[:40]}{'…' if len(text) > 40 else ''}”"


class DbFacts:
    """Implements `states.Facts` for one firm; each fact costs a query only when a guard asks for it."""

    def __init__(
        self,
        conn: sa.Connection | Raw,
        *,
        firm: Any,  # the firm's row: `sa.Row` or the engine's `FirmRow`
        campaign: Campaign,
        today: dt.date,
        payload: Mapping[str, Any],
        prefetched: Sequence[Any] | None = None,
    ) -> None:
        self._raw = conn if isinstance(conn, Raw) else Raw.of(conn)
        self._firm = firm
        self._campaign = campaign
        self.today = today
        self.payload = payload
        self.key_field = bool(firm.key_field)
        self.notified = firm.notified_at is not None
        self.evaluation_start = campaign.phases.evaluation.start
        self.evaluation_end = campaign.phases.evaluation.end
        self.pass_score = campaign.thresholds.compliant
        self._tz = ZoneInfo(campaign.campaign.timezone)
        if prefetched is not None:  # the values of PREFETCH_COLUMNS: fill the lazy facts at once
            opened, missing, sa_id, sa_total, app_id, app_audited, app_score = prefetched
            self.__dict__["_hazard_counts"] = (int(opened or 0), int(missing or 0))
            self.__dict__["self_assessment"] = None if sa_id is None else SelfAssessmentFact(sa_id, sa_total)
            self.__dict__["application"] = None if app_id is None else ApplicationFact(app_id, app_audited, app_score)

    @cached_property
    def _hazard_counts(self) -> tuple[int, int]:
        row = self._raw.first(_HAZARD_COUNTS, {"firm_id": self._firm.id})
        assert row is not None
        return int(row[0] or 0), int(row[1] or 0)

    @property
    def open_hazards(self) -> int:
        return self._hazard_counts[0]

    @property
    def hazards_missing_implementations(self) -> int:
        return self._hazard_counts[1]

    @cached_property
    def self_assessment(self) -> SelfAssessmentFact | None:
        """The latest self-assessment (id, total_score), or None."""
        row = self._raw.first(_LATEST_SELF_ASSESSMENT, {"firm_id": self._firm.id})
        return None if row is None else SelfAssessmentFact(*row)

    @cached_property
    def open_hazard_names(self) -> tuple[str, ...]:
        """The first few open hazards by number and description."""
        return tuple(
            _named(row) for row in self._raw.execute(_OPEN_HAZARD_NAMES, {"firm_id": self._firm.id}).fetchall()
        )

    @cached_property
    def self_assessment_at(self) -> dt.datetime | None:
        """When the latest self-assessment was taken (in the campaign's zone)."""
        row = self._raw.first(_LATEST_SELF_ASSESSMENT_AT, {"firm_id": self._firm.id})
        return None if row is None else _instant(row[0], self._tz)

    @cached_property
    def _last_rectification(self) -> tuple[dt.datetime, str] | None:
        row = self._raw.first(_LAST_RECTIFICATION, {"firm_id": self._firm.id})
        return None if row is None else (_instant(row[0], self._tz), _named(row[1:]))

    @property
    def last_rectification_at(self) -> dt.datetime | None:
        """When the firm last rectified a hazard (its own, or a finding it submitted that was accepted)."""
        last = self._last_rectification
        return None if last is None else last[0]

    @property
    def last_rectified_hazard(self) -> str | None:
        last = self._last_rectification
        return None if last is None else last[1]

    @cached_property
    def dossier_missing(self) -> tuple[tuple[str, str], ...]:
        """The required dossier files (自评报告, 申请表) the firm has not uploaded, as (中文, English)."""
        found = {row[0] for row in self._raw.execute(_DOSSIER_KINDS_UPLOADED, {"firm_id": self._firm.id}).fetchall()}
        return tuple(KIND_LABELS[k] for k in DOSSIER_KINDS if k not in found)

    @property
    def self_assessment_total(self) -> float | None:
        row = self.self_assessment
        return None if row is None else float(row.total_score)

    @cached_property
    def application(self) -> ApplicationFact | None:
        """The firm's application that is still under evaluation, if any."""
        row = self._raw.first(_OPEN_APPLICATION, {"firm_id": self._firm.id})
        return None if row is None else ApplicationFact(*row)

    @property
    def audit_passed(self) -> bool:
        return self.application is not None and self.application.audit_passed_at is not None

    @property
    def review_score(self) -> float | None:
        app = self.application
        return None if app is None or app.review_score is None else float(app.review_score)
