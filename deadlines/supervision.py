"""Graded supervision (分级监管): each firm's grade from its state and record, the inspections a year the
campaign sets for that grade, and a district bureau's inspection plan for one month.

Inspections of a grade with an interval of n months fall in the months where (firm id + month number)
is a multiple of n, so a district's load spreads evenly over the year and a plan is the same however
often it is printed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from states import STATE_LABELS, InvalidInput, State
from workflow.campaign import Campaign
from workflow.tables import CERTIFICATIONS, ENTERPRISES, ESCALATIONS, HAZARDS

E = ENTERPRISES
GRADES = ("non_participating", "overdue", "on_track", "compliant", "benchmark")  # strictest first
GRADE_LABELS = {
    "benchmark": "标杆",
    "compliant": "达标",
    "on_track": "正常推进",
    "non_participating": "未启动创建",
    "overdue": "逾期",
}
PLAN_HEADERS = (
    "序号",
    "统一社会信用代码",
    "企业名称",
    "行业",
    "重点监管领域",
    "规模以上",
    "当前状态",
    "监管等级",
    "检查频次（次/年）",
)


def parse_month(text: str) -> dt.date:
    try:
        year, month = (int(part) for part in text.split("-"))
        return dt.date(year, month, 1)
    except ValueError:
        raise InvalidInput(
            f"月份须写作 YYYY-MM，例如 2023-01 / month must be YYYY-MM, e.g. 2023-01: {text!r}"
        ) from None


def grade_expression(campaign: Campaign, as_of: dt.date) -> sa.ColumnElement[str]:
    """The grade of each firm of ENTERPRISES as of a date, first match wins: a current certificate
    (benchmark or compliant), still `mobilized` after its group's milestone, an open escalation or a
    hazard open past its deadline (overdue), else on track."""
    level = (
        sa.select(CERTIFICATIONS.c.level)
        .where(CERTIFICATIONS.c.enterprise_id == E.c.id, CERTIFICATIONS.c.revoked_at.is_(None))
        .order_by(CERTIFICATIONS.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    late = []
    for m in campaign.milestones:
        if as_of <= m.date:
            continue
        group = (
            E.c.key_field == sa.true()
            if m.applies_to == "key_field"
            else sa.and_(E.c.key_field == sa.false(), E.c.above_size == sa.true())
        )
        late.append(group)
    open_escalation = sa.exists(
        sa.select(1).where(ESCALATIONS.c.enterprise_id == E.c.id, ESCALATIONS.c.status.in_(("open", "acknowledged")))
    )
    hazard_late = sa.exists(
        sa.select(1).where(HAZARDS.c.enterprise_id == E.c.id, HAZARDS.c.status == "open", HAZARDS.c.deadline < as_of)
    )
    whens: list[tuple[Any, str]] = [
        (sa.and_(E.c.state == "certified", level == "benchmark"), "benchmark"),
        (E.c.state == "certified", "compliant"),
    ]
    if late:
        whens.append((sa.and_(E.c.state == "mobilized", sa.or_(*late)), "non_participating"))
    whens.append((sa.or_(open_escalation, hazard_late), "overdue"))
    return sa.case(*whens, else_="on_track")


@dataclass(frozen=True)
class PlanLine:
    enterprise_id: int
    uscc: str
    name: str
    sector: str
    key_field: bool
    above_size: bool
    state: str
    grade: str
    per_year: int

    def as_json(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "state_label": STATE_LABELS[State(self.state)][0],
            "grade_label": GRADE_LABELS[self.grade],
        }

    def cells(self, n: int, campaign: Campaign) -> list[Any]:
        sector = campaign.sector(self.sector)
        return [
            n,
            self.uscc,
            self.name,
            sector.name if sector else self.sector,
            "是" if self.key_field else "否",
            "是" if self.above_size else "否",
            STATE_LABELS[State(self.state)][0],
            GRADE_LABELS[self.grade],
            self.per_year,
        ]


def inspection_plan(
    conn: sa.Connection, *, campaign: Campaign, district: str, month: dt.date, as_of: dt.date | None = None
) -> Iterator[PlanLine]:
    """The firms of one district due for inspection in `month`, strictest grade first (streamed).
    Grades are taken as of `as_of`, by default the first day of the month."""
    if campaign.district(district) is None:
        raise InvalidInput(f"未知辖区 / unknown district: {district}")
    code = campaign.district(district).code  # type: ignore[union-attr]
    grade = grade_expression(campaign, as_of or month).label("grade")
    graded = (
        sa.select(E.c.id, E.c.uscc, E.c.name, E.c.sector, E.c.key_field, E.c.above_size, E.c.state, grade)
        .where(E.c.district_code == code, E.c.state != "closed")
        .subquery()
    )
    supervision = campaign.supervision
    interval = sa.case(*((graded.c.grade == g, supervision.interval_months(g)) for g in GRADES), else_=1)
    per_year = sa.case(*((graded.c.grade == g, supervision.inspections_per_year[g]) for g in GRADES), else_=12)  # type: ignore[index]
    rank = sa.case(*((graded.c.grade == g, n) for n, g in enumerate(GRADES)), else_=99)
    month_number = month.year * 12 + month.month - 1
    query = (
        sa.select(graded, per_year.label("per_year"))
        .where((graded.c.id + month_number) % interval == 0)
        .order_by(rank, graded.c.name, graded.c.id)
    )
    for row in conn.execution_options(yield_per=2000).execute(query):
        yield PlanLine(
            enterprise_id=row.id,
            uscc=row.uscc,
            name=row.name,
            sector=row.sector,
            key_field=bool(row.key_field),
            above_size=bool(row.above_size),
            state=row.state,
            grade=row.grade,
            per_year=int(row.per_year),
        )


def grade_counts(
    conn: sa.Connection, *, campaign: Campaign, as_of: dt.date, district: str | None = None
) -> dict[str, int]:
    """Firms per grade (open firms), for a district or the whole city."""
    grade = grade_expression(campaign, as_of).label("grade")
    inner = sa.select(grade).where(E.c.state != "closed")
    if district:
        inner = inner.where(E.c.district_code == district)
    sub = inner.subquery()
    rows = conn.execute(sa.select(sub.c.grade, sa.func.count()).group_by(sub.c.grade)).all()
    return {g: 0 for g in GRADES} | {str(g): int(n) for g, n in rows}
