"""What the guards know about one firm, read lazily from the database inside the fire's transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import cached_property
from typing import Any

import sqlalchemy as sa

from workflow.campaign import Campaign
from workflow.tables import APPLICATIONS, HAZARDS, OPEN_APPLICATION_STATUSES, SELF_ASSESSMENTS

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


class DbFacts:
    """Implements `states.Facts` for one firm; each fact costs a query only when a guard asks for it."""

    def __init__(
        self,
        conn: sa.Connection,
        *,
        firm: sa.Row[Any],
        campaign: Campaign,
        today: dt.date,
        payload: Mapping[str, Any],
    ) -> None:
        self._conn = conn
        self._firm = firm
        self._campaign = campaign
        self.today = today
        self.payload = payload
        self.key_field = bool(firm.key_field)
        self.notified = firm.notified_at is not None
        self.evaluation_start = campaign.phases.evaluation.start
        self.evaluation_end = campaign.phases.evaluation.end
        self.pass_score = campaign.thresholds.compliant

    @cached_property
    def _hazard_counts(self) -> tuple[int, int]:
        row = self._conn.execute(
            sa.select(
                sa.func.count().filter(HAZARDS.c.status == "open"),
                sa.func.count().filter(_FIVE),
            ).where(HAZARDS.c.enterprise_id == self._firm.id)
        ).one()
        return int(row[0]), int(row[1])

    @property
    def open_hazards(self) -> int:
        return self._hazard_counts[0]

    @property
    def hazards_missing_implementations(self) -> int:
        return self._hazard_counts[1]

    @cached_property
    def self_assessment(self) -> Any:
        """The latest self-assessment (id, total_score), or None."""
        return self._conn.execute(
            sa.select(SELF_ASSESSMENTS.c.id, SELF_ASSESSMENTS.c.total_score)
            .where(SELF_ASSESSMENTS.c.enterprise_id == self._firm.id)
            .order_by(SELF_ASSESSMENTS.c.id.desc())
            .limit(1)
        ).first()

    @property
    def self_assessment_total(self) -> float | None:
        row = self.self_assessment
        return None if row is None else float(row.total_score)

    @cached_property
    def application(self) -> sa.Row[Any] | None:
        """The firm's application that is still under evaluation, if any."""
        return self._conn.execute(
            sa.select(APPLICATIONS)
            .where(
                APPLICATIONS.c.enterprise_id == self._firm.id,
                APPLICATIONS.c.status.in_(OPEN_APPLICATION_STATUSES),
            )
            .order_by(APPLICATIONS.c.id.desc())
            .limit(1)
        ).first()

    @property
    def audit_passed(self) -> bool:
        return self.application is not None and self.application.audit_passed_at is not None

    @property
    def review_score(self) -> float | None:
        app = self.application
        return None if app is None or app.review_score is None else float(app.review_score)
