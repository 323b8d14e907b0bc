"""Graded supervision (分级分类监管): each firm's grade from its own duties (把企业创建情况作为分级分类监管的重要
依据), the inspections a year and the penalty scale (检查频次和处罚尺度) the campaign sets for that grade, and a
district bureau's inspection plan for one month. An office's delay (a verification, audit, review or
certification waiting on a bureau) never raises a firm's grade.

Inspections of a grade with an interval of n months fall in the months where (firm id + month number)
is a multiple of n, so a district's load spreads evenly over the year and a plan is the same however
often it is printed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from deadlines.export import Column, sector_name, yes_no
from states import STATE_LABELS, InvalidInput, State
from workflow import labels
from workflow.campaign import Campaign
from workflow.labels import zh
from workflow.models import ReferralStatus
from workflow.tables import CERTIFICATIONS, ENTERPRISES, REFERRALS

E = ENTERPRISES
# strictest first
GRADES = ("referred", "non_participating", "not_started", "on_track", "compliant", "benchmark")
GRADE_LABELS = zh(labels.GRADES)
LOCAL_SETTING = "本地设置"
REFERRED = (
    ReferralStatus.confirmed,
    ReferralStatus.acknowledged,
)  # confirmed by the city: reported to the local government
PLAN_COLUMNS = (
    Column("序号", "No.", "number"),
    Column("统一社会信用代码", "Unified social credit code"),
    Column("企业名称", "Firm"),
    Column("行业", "Sector"),
    Column("重点监管领域", "Key supervision field"),
    Column("规模以上", "Above size"),
    Column("当前状态", "Current state"),
    Column("监管等级", "Supervision grade"),
    Column("检查频次（次/年）", "Inspections a year", "number"),
    Column("处罚尺度", "Penalty scale"),
    Column("取值依据", "Source of the figures"),
)
PLAN_HEADERS = tuple(c.zh for c in PLAN_COLUMNS)


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
    (benchmark or compliant); a referral the city confirmed (达标无望, 按流程报送属地政府); still `mobilized`
    after its own group's milestone (non_participating: 对未开展达标创建的企业加大检查频率); still `mobilized`
    without a duty yet (not_started); else started (on_track). Escalations are not looked at: the officials'
    time limits are theirs, not the firm's."""
    level = (
        sa.select(CERTIFICATIONS.c.level)
        .where(CERTIFICATIONS.c.enterprise_id == E.c.id, CERTIFICATIONS.c.revoked_at.is_(None))
        .order_by(CERTIFICATIONS.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    late = []
    for m in campaign.milestones:
        if as_of <= m.date:  # 2022年底前 / 2023年底前: the milestone's day itself is still in time
            continue
        group = (
            E.c.key_field == sa.true()
            if m.applies_to == "key_field"
            else sa.and_(E.c.key_field == sa.false(), E.c.above_size == sa.true())
        )
        late.append(group)
    referred = sa.exists(sa.select(1).where(REFERRALS.c.enterprise_id == E.c.id, REFERRALS.c.status.in_(REFERRED)))
    whens: list[tuple[Any, str]] = [
        (sa.and_(E.c.state == "certified", level == "benchmark"), "benchmark"),
        (E.c.state == "certified", "compliant"),
        (referred, "referred"),
    ]
    if late:
        whens.append((sa.and_(E.c.state == "mobilized", sa.or_(*late)), "non_participating"))
    whens.append((E.c.state == "mobilized", "not_started"))
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
    penalty_band: str
    penalty_factor: float
    local_setting: bool  # frequencies and penalty scale are the campaign's local settings (本地设置)
    penalty_band_en: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "state_label": STATE_LABELS[State(self.state)][0],
            "grade_label": GRADE_LABELS[self.grade],
        }

    def cells(self, n: int, campaign: Campaign, lang: str = "zh-CN") -> list[Any]:
        zh = lang == "zh-CN"
        return [
            n,
            self.uscc,
            self.name,
            sector_name(campaign, self.sector, lang),
            yes_no(self.key_field, lang),
            yes_no(self.above_size, lang),
            STATE_LABELS[State(self.state)][0 if zh else 1],
            labels.name(labels.GRADES, self.grade, lang),
            self.per_year,
            f"{self.penalty_band}（×{self.penalty_factor:g}）"
            if zh
            else f"{self.penalty_band_en} (×{self.penalty_factor:g})",
            (LOCAL_SETTING if zh else "local setting")
            if self.local_setting
            else ("正式标准" if zh else "official standard"),
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
        penalty = supervision.penalty_scale[row.grade]
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
            penalty_band=penalty.band,
            penalty_factor=penalty.factor,
            local_setting=supervision.local,
            penalty_band_en=penalty.band_en,
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


@dataclass(frozen=True)
class FirmGrade:
    """One firm's grade with what it means for supervision (the firm page)."""

    grade: str
    label: str
    per_year: int
    penalty_band: str
    penalty_band_en: str
    penalty_factor: float
    local_setting: bool

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def firm_grade(conn: sa.Connection, *, campaign: Campaign, enterprise_id: int, as_of: dt.date) -> FirmGrade | None:
    """The grade of one firm as of a day; None for a closed or unknown firm."""
    grade = grade_expression(campaign, as_of).label("grade")
    row = conn.execute(sa.select(grade).where(E.c.id == enterprise_id, E.c.state != "closed")).first()
    if row is None:
        return None
    supervision = campaign.supervision
    penalty = supervision.penalty_scale[row.grade]
    return FirmGrade(
        grade=row.grade,
        label=GRADE_LABELS[row.grade],
        per_year=supervision.inspections_per_year[row.grade],
        penalty_band=penalty.band,
        penalty_band_en=penalty.band_en,
        penalty_factor=penalty.factor,
        local_setting=supervision.local,
    )
