"""Supervision carried out (辖市(区)应急管理部门要结合"常安码"线上巡查、线下检查等方式督促企业…整改): on-site
inspections, online patrols and guidance visits as records, their findings raised as hazards of the firm that
the bureau closes, a penalty decision with its legal basis and the grade's penalty band, and the monthly plan
held against what was done.

Every record is an event in the firm's hash chain. A district bureau records and reads its own firms; the city
reads all; a firm reads the inspections of itself (and answers the findings in its hazard register)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from deadlines.export import Column, district_name
from deadlines.supervision import GRADE_LABELS, GRADES, PlanLine, firm_grade, grade_expression, inspection_plan
from states import InvalidInput, NotAllowed, NotFound, OutOfScope, Role
from workflow import labels
from workflow.actors import Actor, in_scope
from workflow.campaign import Campaign
from workflow.clock import Clock, today
from workflow.db import write_unit
from workflow.engine import load_firm
from workflow.guidance import visit_assignment
from workflow.supervision_records import Finding as Finding  # re-exported: the findings a caller records
from workflow.supervision_records import write_record
from workflow.tables import ENTERPRISES, EVIDENCE_FILES, HAZARDS, INSPECTION_FINDINGS, INSPECTIONS

# 线下检查（抽查）/ 线上巡查 / 重点指导: guidance of benchmark candidates (派驻专家重点指导、监管人员重点督导)
KIND_LABELS: dict[str, tuple[str, str]] = {
    "onsite": ("线下检查", "on-site inspection"),
    "online": ("线上巡查", "online patrol"),
    "guidance": ("重点指导", "guidance visit"),
}
KINDS = tuple(KIND_LABELS)
# what carries out a month's inspection plan: an inspection on site or a patrol online, not a guidance visit
PLAN_KINDS = ("onsite", "online")
# Law-enforcement practice: an inspection on site is made by at least two officers (执法人员不得少于两人).
MIN_ONSITE_INSPECTORS = 2
RECORDERS = (Role.district_bureau,)
READERS = (Role.city_bureau, Role.support_center, Role.district_bureau, Role.enterprise)
MAX_TEXT = 4000
STATUS_LABELS = {"done": ("已完成", "done"), "planned": ("待检查", "planned"), "overdue": ("逾期未检查", "overdue")}


def _text(name: str, value: str | None, *, required: bool = False, limit: int = MAX_TEXT) -> str | None:
    text = (value or "").strip()
    if required and not text:
        raise InvalidInput(f"请填写{name} / {name} is required")
    if len(text) > limit:
        raise InvalidInput(f"{name}超过{limit}字 / {name} is longer than {limit} characters")
    return text or None


def _inspectors(kind: str, names: Sequence[str]) -> list[str]:
    people: list[str] = []
    for name in names:
        text = (name or "").strip()
        if len(text) > 60:
            raise InvalidInput(f"检查人员姓名过长：{text[:20]}… / an inspector's name is too long: {text[:20]}…")
        if text and text not in people:
            people.append(text)
    if kind == "onsite" and len(people) < MIN_ONSITE_INSPECTORS:
        raise InvalidInput(
            f"线下检查须有至少 {MIN_ONSITE_INSPECTORS} 名检查人员，现为 {len(people)} 名"
            f"（{'、'.join(people) or '无'}） / "
            f"an on-site inspection needs at least {MIN_ONSITE_INSPECTORS} inspectors, "
            f"{len(people)} given ({', '.join(people) or 'none'})"
        )
    if not people:
        raise InvalidInput("请填写检查人员 / name who carried it out")
    return people


def _items(campaign: Campaign, kind: str, codes: Sequence[str]) -> list[str]:
    known = {item.code for item in campaign.outline_items}
    items = list(dict.fromkeys(c.strip() for c in codes if c and c.strip()))
    unknown = [c for c in items if c not in known]
    if unknown:
        raise InvalidInput(f"创建大纲中没有这些条目：{'、'.join(unknown)} / not in the outline: {', '.join(unknown)}")
    if kind in PLAN_KINDS and not items:
        raise InvalidInput(
            "请勾选本次检查的创建大纲条目 / tick the items of the creation outline this inspection checked"
        )
    return items


def _month_number(day: dt.date) -> int:
    return day.year * 12 + day.month - 1


def planned_in(
    conn: sa.Connection, *, campaign: Campaign, enterprise_id: int, month: dt.date, grade: str | None = None
) -> bool:
    """Whether the firm is on its district's inspection plan for `month` (the rule of `inspection_plan`: its
    grade on the month's first day, given or read, and its interval)."""
    if grade is None:
        grade = conn.execute(
            sa.select(grade_expression(campaign, month)).where(ENTERPRISES.c.id == enterprise_id)
        ).scalar_one_or_none()
    if grade is None:
        return False
    interval = campaign.supervision.interval_months(grade)
    return (enterprise_id + _month_number(month)) % interval == 0


def _visible_firm(conn: sa.Connection, *, enterprise_id: int, actor: Actor) -> sa.Row[Any]:
    firm = load_firm(conn, enterprise_id=enterprise_id)
    if actor.role not in READERS or not in_scope(actor, firm):
        raise OutOfScope(f"找不到该企业 / no such enterprise: {enterprise_id}")
    return firm


def record_inspection(
    session: Session,
    *,
    enterprise_id: int,
    kind: str,
    held_on: dt.date,
    inspectors: Sequence[str],
    items_checked: Sequence[str],
    findings: Sequence[Finding] = (),
    summary: str | None = None,
    penalty_decision: str | None = None,
    legal_basis: str | None = None,
    evidence_ids: Sequence[int] = (),
    guidance_assignment_id: int | None = None,
    actor: Actor,
    campaign: Campaign,
    clock: Clock,
) -> dict[str, Any]:
    """A district bureau records an inspection, patrol or guidance visit of one of its firms: each finding
    becomes a hazard raised by the bureau (`source = "inspection"`), a penalty decision carries its legal basis
    and the penalty band of the firm's grade. A guidance visit belongs to an expert's or officer's assignment
    (派驻专家重点指导、监管人员重点督导) and is the same record the guidance register lists. Returns the record."""
    with write_unit(session) as conn:
        firm = load_firm(conn, enterprise_id=enterprise_id)
        if not in_scope(actor, firm):
            raise OutOfScope(f"找不到该企业 / no such enterprise: {enterprise_id}")
        if actor.role not in RECORDERS:
            raise NotAllowed(
                "检查记录由企业所在辖区的应急管理部门填写 / the firm's district bureau records inspections"
            )
        if kind not in KINDS:
            raise InvalidInput(
                f"检查方式须为 {'、'.join(f'{k}（{v[0]}）' for k, v in KIND_LABELS.items())} / "
                f"kind must be one of {', '.join(KINDS)}"
            )
        day = today(clock)
        if held_on > day:
            raise InvalidInput(f"检查日期 {held_on} 晚于今天 {day} / the date {held_on} is after today {day}")
        began = campaign.phases.mobilization.start
        if held_on < began:
            raise InvalidInput(
                f"检查日期 {held_on} 早于创建工作开始日 {began} / the date {held_on} is before the campaign "
                f"began on {began}"
            )
        if firm.state == "closed":
            raise InvalidInput(f"企业“{firm.name}”已关闭 / the firm {firm.name} is closed")
        people = list(inspectors)
        if kind == "guidance":
            if guidance_assignment_id is None:
                raise InvalidInput(
                    "重点指导须选择派驻的专家或监管人员 / "
                    "a guidance visit belongs to an expert's or officer's assignment"
                )
            assignment = visit_assignment(
                conn, assignment_id=guidance_assignment_id, enterprise_id=enterprise_id, visited_on=held_on, today=day
            )
            people = [assignment.person, *people]
        elif guidance_assignment_id is not None:
            raise InvalidInput("只有重点指导记录属于派驻安排 / only a guidance visit belongs to an assignment")
        people = _inspectors(kind, people)
        items = _items(campaign, kind, items_checked)
        text = _text("检查情况", summary)
        decision = _text("处罚决定", penalty_decision)
        basis = _text("法律依据", legal_basis)
        if decision and not basis:
            raise InvalidInput("处罚决定须写明法律依据 / a penalty decision needs its legal basis")
        if basis and not decision:
            raise InvalidInput("填写了法律依据但没有处罚决定 / a legal basis was given without a penalty decision")
        problems: list[Finding] = []
        for n, finding in enumerate(findings, 1):
            description = _text(f"第{n}项问题", finding.description, limit=2000)
            if description is None:
                continue
            if finding.severity not in ("general", "major"):
                raise InvalidInput(
                    f"第{n}项问题的等级须为一般（general）或重大（major） / "
                    f"finding {n}: severity must be general or major"
                )
            problems.append(Finding(description, finding.severity))
        evidence = sorted({int(e) for e in evidence_ids})
        if evidence:
            found = set(
                conn.execute(
                    sa.select(EVIDENCE_FILES.c.id).where(
                        EVIDENCE_FILES.c.id.in_(evidence), EVIDENCE_FILES.c.enterprise_id == enterprise_id
                    )
                ).scalars()
            )
            missing = [str(e) for e in evidence if e not in found]
            if missing:
                raise NotFound(
                    f"找不到该企业的这些材料：{'、'.join(missing)} / no such files of this firm: {', '.join(missing)}"
                )
        grade = firm_grade(conn, campaign=campaign, enterprise_id=enterprise_id, as_of=held_on)
        assert grade is not None  # open firm
        month = held_on.replace(day=1)
        # the plan's grade is the one on the month's first day: the same as the day's unless it changed since
        plan_grade = grade.grade if held_on == month else None
        plan_month = (
            month
            if kind in PLAN_KINDS
            and planned_in(conn, campaign=campaign, enterprise_id=enterprise_id, month=month, grade=plan_grade)
            else None
        )
        penalty = None
        if decision:
            penalty = {
                "decision": decision,
                "legal_basis": basis,
                "band": grade.penalty_band,
                "factor": grade.penalty_factor,
                "local_setting": grade.local_setting,
            }
        return write_record(
            conn,
            enterprise_id=enterprise_id,
            district_code=firm.district_code,
            kind=kind,
            held_on=held_on,
            inspectors=people,
            items_checked=items,
            summary=text,
            grade=grade.grade,
            plan_month=plan_month,
            penalty=penalty,
            evidence_ids=evidence,
            findings=problems,
            guidance_assignment_id=guidance_assignment_id,
            actor=actor,
            now=clock.now(),
        )


def _inspection(row: Any, findings: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    zh, en = KIND_LABELS.get(row.kind, (row.kind, row.kind))
    return {
        "id": row.id,
        "enterprise_id": row.enterprise_id,
        "enterprise_name": getattr(row, "enterprise_name", None),
        "district_code": row.district_code,
        "kind": row.kind,
        "kind_label": zh,
        "kind_label_en": en,
        "held_on": row.held_on,
        "inspectors": list(row.inspectors or []),
        "items_checked": list(row.items_checked or []),
        "summary": row.summary,
        "grade": row.grade,
        "grade_label": GRADE_LABELS.get(row.grade, row.grade),
        "plan_month": row.plan_month,
        "penalty_decision": row.penalty_decision,
        "legal_basis": row.legal_basis,
        "penalty_band": row.penalty_band,
        "penalty_factor": row.penalty_factor,
        "evidence_ids": list(row.evidence_ids or []),
        "recorded_by": row.recorded_by,
        "recorded_at": row.recorded_at,
        "findings": findings.get(row.id, []),
    }


def _findings(conn: sa.Connection, inspection_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    ids = list(inspection_ids)
    out: dict[int, list[dict[str, Any]]] = {}
    if not ids:
        return out
    rows = conn.execute(
        sa.select(INSPECTION_FINDINGS.c.inspection_id, HAZARDS)
        .join(HAZARDS, HAZARDS.c.id == INSPECTION_FINDINGS.c.hazard_id)
        .where(INSPECTION_FINDINGS.c.inspection_id.in_(ids))
        .order_by(HAZARDS.c.id)
    )
    for r in rows:
        out.setdefault(r.inspection_id, []).append(
            {"hazard_id": r.id, "description": r.description, "severity": r.severity, "status": r.status}
        )
    return out


def inspections_of(conn: sa.Connection, *, enterprise_id: int, actor: Actor) -> list[dict[str, Any]]:
    """The inspections, patrols and guidance visits of one firm, newest first."""
    _visible_firm(conn, enterprise_id=enterprise_id, actor=actor)
    rows = conn.execute(
        sa.select(INSPECTIONS)
        .where(INSPECTIONS.c.enterprise_id == enterprise_id)
        .order_by(INSPECTIONS.c.held_on.desc(), INSPECTIONS.c.id.desc())
    ).all()
    findings = _findings(conn, (r.id for r in rows))
    return [_inspection(r, findings) for r in rows]


def inspection_record(conn: sa.Connection, *, inspection_id: int, actor: Actor) -> dict[str, Any]:
    row = conn.execute(sa.select(INSPECTIONS).where(INSPECTIONS.c.id == inspection_id)).first()
    if row is None:
        raise NotFound(f"找不到该检查记录 / no such inspection: {inspection_id}")
    try:
        _visible_firm(conn, enterprise_id=row.enterprise_id, actor=actor)
    except OutOfScope:
        raise OutOfScope(f"找不到该检查记录 / no such inspection: {inspection_id}") from None
    return _inspection(row, _findings(conn, [row.id]))


# ---- plan against done ---------------------------------------------------------------------------


def _district(campaign: Campaign, district: str) -> str:
    found = campaign.district(district)
    if found is None:
        raise InvalidInput(f"未知辖区 / unknown district: {district}")
    return str(found.code)


def _require_district(actor: Actor, code: str) -> None:
    if actor.role is Role.district_bureau and actor.district_code != code:
        raise OutOfScope(f"找不到该辖区 / no such district: {code}")
    if actor.role not in (Role.city_bureau, Role.support_center, Role.district_bureau):
        raise NotAllowed("检查计划由应急管理部门查看 / inspection plans are for the bureaus")


def _month_end(month: dt.date) -> dt.date:
    nxt = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return nxt - dt.timedelta(days=1)


@dataclass(frozen=True)
class PlanItem:
    """A firm of a month's plan and what became of it."""

    line: PlanLine
    status: str  # done / planned / overdue
    inspection_id: int | None = None
    held_on: dt.date | None = None
    kind: str | None = None
    inspectors: tuple[str, ...] = ()
    recorded_by: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            **self.line.as_json(),
            "status": self.status,
            "status_label": STATUS_LABELS[self.status][0],
            "inspection_id": self.inspection_id,
            "held_on": self.held_on,
            "kind": self.kind,
            "inspectors": list(self.inspectors),
            "recorded_by": self.recorded_by,
        }


def _done_in(conn: sa.Connection, *, district: str, month: dt.date) -> dict[int, Any]:
    """The first plan-carrying inspection of each firm of a district in a month."""
    rows = conn.execute(
        sa.select(INSPECTIONS)
        .where(
            INSPECTIONS.c.district_code == district,
            INSPECTIONS.c.held_on >= month,
            INSPECTIONS.c.held_on <= _month_end(month),
            INSPECTIONS.c.kind.in_(PLAN_KINDS),
        )
        .order_by(INSPECTIONS.c.held_on, INSPECTIONS.c.id)
    )
    done: dict[int, Any] = {}
    for r in rows:
        done.setdefault(r.enterprise_id, r)
    return done


def plan_worklist(
    conn: sa.Connection, *, campaign: Campaign, district: str, month: dt.date, actor: Actor, clock: Clock
) -> Iterator[PlanItem]:
    """The district's plan for `month` as a list it works through: each firm done (with when, how and by whom),
    still planned, or overdue once the month is over."""
    code = _district(campaign, district)
    _require_district(actor, code)
    day = today(clock)
    done = _done_in(conn, district=code, month=month)
    over = day > _month_end(month)
    # the plan as printed on the month's first day: the list does not shift under the district mid-month
    lines = inspection_plan(conn, campaign=campaign, district=code, month=month)
    seen: set[int] = set()
    for line in lines:
        seen.add(line.enterprise_id)
        hit = done.get(line.enterprise_id)
        if hit is not None:
            yield PlanItem(
                line,
                "done",
                inspection_id=hit.id,
                held_on=hit.held_on,
                kind=hit.kind,
                inspectors=tuple(hit.inspectors or ()),
                recorded_by=hit.recorded_by,
            )
        else:
            yield PlanItem(line, "overdue" if over else "planned")
    # a firm inspected as part of this plan stays on it when its grade has changed since (it started, say)
    for firm_id, hit in done.items():
        if firm_id in seen or hit.plan_month != month:
            continue
        firm = load_firm(conn, enterprise_id=firm_id)
        grade = hit.grade or "on_track"
        penalty = campaign.supervision.penalty_scale[grade]  # type: ignore[index]
        line = PlanLine(
            enterprise_id=firm_id,
            uscc=firm.uscc,
            name=firm.name,
            sector=firm.sector,
            key_field=bool(firm.key_field),
            above_size=bool(firm.above_size),
            state=firm.state,
            grade=grade,
            per_year=campaign.supervision.inspections_per_year[grade],  # type: ignore[index]
            penalty_band=penalty.band,
            penalty_factor=penalty.factor,
            local_setting=campaign.supervision.local,
        )
        yield PlanItem(
            line,
            "done",
            inspection_id=hit.id,
            held_on=hit.held_on,
            kind=hit.kind,
            inspectors=tuple(hit.inspectors or ()),
            recorded_by=hit.recorded_by,
        )


@dataclass
class ReportRow:
    district_code: str
    district_name: str
    grade: str
    planned: int = 0
    done: int = 0
    overdue: int = 0
    unplanned: int = 0  # firms inspected in the month without being on its plan

    @property
    def share(self) -> float | None:
        return self.done / self.planned if self.planned else None

    def as_json(self) -> dict[str, Any]:
        return {**self.__dict__, "grade_label": GRADE_LABELS.get(self.grade, self.grade), "share": self.share}


REPORT_COLUMNS = (
    Column("辖区", "District"),
    Column("监管等级", "Supervision grade"),
    Column("计划检查（家）", "Planned (firms)", "number"),
    Column("已完成", "Done", "number"),
    Column("逾期未检查", "Overdue", "number"),
    Column("完成率", "Share done", "percent"),
    Column("计划外检查（家）", "Unplanned (firms)", "number"),
)
REPORT_HEADERS = tuple(c.zh for c in REPORT_COLUMNS)


@dataclass
class PlanReport:
    month: dt.date
    rows: list[ReportRow] = field(default_factory=list)

    def totals(self, district: str | None = None) -> ReportRow:
        total = ReportRow(district or "", "合计", "all")
        for r in self.rows:
            if district is None or r.district_code == district:
                total.planned += r.planned
                total.done += r.done
                total.overdue += r.overdue
                total.unplanned += r.unplanned
        return total

    def cells(self) -> Iterator[list[Any]]:
        for r in self.rows:
            yield [
                r.district_name,
                GRADE_LABELS.get(r.grade, r.grade),
                r.planned,
                r.done,
                r.overdue,
                f"{r.share:.0%}" if r.share is not None else "—",
                r.unplanned,
            ]

    def sheet_rows(self, campaign: Campaign, lang: str = "zh-CN") -> Iterator[list[Any]]:
        """The report as spreadsheet rows in one language, the city's (or district's) total last; the share
        done as a number (the writer formats it as a percentage)."""
        for r in self.rows:
            name = district_name(campaign, r.district_code, lang) if r.district_code else r.district_name
            yield [name, labels.name(labels.GRADES, r.grade, lang), r.planned, r.done, r.overdue, r.share, r.unplanned]
        total = self.totals()
        yield ["合计" if lang == "zh-CN" else "Total", "", total.planned, total.done, total.overdue, total.share,
               total.unplanned]  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        total = self.totals()
        return {
            "month": f"{self.month:%Y-%m}",
            "rows": [r.as_json() for r in self.rows],
            "total": total.as_json(),
        }


def plan_report(
    conn: sa.Connection,
    *,
    campaign: Campaign,
    month: dt.date,
    actor: Actor,
    clock: Clock,
    district: str | None = None,
) -> PlanReport:
    """Planned against done for a month, per district and grade (the whole city, or one district), counted in
    the database: the plan's rule (grade on the month's first day, its interval) and an inspection or patrol of
    the firm in that month."""
    codes = [_district(campaign, district)] if district else [d.code for d in campaign.districts]
    if actor.role is Role.district_bureau and district is None:
        codes = [str(actor.district_code)]
    for code in codes:
        _require_district(actor, code)
    supervision = campaign.supervision
    E = ENTERPRISES
    grade = grade_expression(campaign, month).label("grade")
    graded = (
        sa.select(E.c.id, E.c.district_code, grade)
        .where(E.c.state != "closed", E.c.district_code.in_(codes))
        .subquery()
    )
    interval = sa.case(*((graded.c.grade == g, supervision.interval_months(g)) for g in GRADES), else_=1)
    in_month = sa.and_(
        INSPECTIONS.c.held_on >= month, INSPECTIONS.c.held_on <= _month_end(month), INSPECTIONS.c.kind.in_(PLAN_KINDS)
    )
    done = sa.exists(sa.select(1).where(INSPECTIONS.c.enterprise_id == graded.c.id, in_month))
    # a firm inspected as part of this plan stays on it when its grade has changed since
    recorded = sa.exists(
        sa.select(1).where(INSPECTIONS.c.enterprise_id == graded.c.id, INSPECTIONS.c.plan_month == month)
    )
    planned = conn.execute(
        sa.select(
            graded.c.district_code,
            graded.c.grade,
            sa.func.count(),
            sa.func.sum(sa.case((done, 1), else_=0)),
        )
        .where(sa.or_((graded.c.id + _month_number(month)) % interval == 0, recorded))
        .group_by(graded.c.district_code, graded.c.grade)
    ).all()
    unplanned = conn.execute(
        sa.select(
            INSPECTIONS.c.district_code, INSPECTIONS.c.grade, sa.func.count(sa.distinct(INSPECTIONS.c.enterprise_id))
        )
        .where(in_month, INSPECTIONS.c.plan_month.is_(None), INSPECTIONS.c.district_code.in_(codes))
        .group_by(INSPECTIONS.c.district_code, INSPECTIONS.c.grade)
    ).all()
    over = today(clock) > _month_end(month)
    rows: dict[tuple[str, str], ReportRow] = {}

    def row(code: str, g: str) -> ReportRow:
        if (code, g) not in rows:
            rows[(code, g)] = ReportRow(code, campaign.district(code).name, g)  # type: ignore[union-attr]
        return rows[(code, g)]

    for code, g, n, n_done in planned:
        r = row(code, g)
        r.planned, r.done = int(n), int(n_done or 0)
        r.overdue = r.planned - r.done if over else 0
    for code, g, n in unplanned:
        row(code, g).unplanned += int(n)
    order = {c: i for i, c in enumerate(codes)}
    rank = {g: i for i, g in enumerate(GRADES)}
    report = PlanReport(month=month)
    report.rows = sorted(rows.values(), key=lambda r: (order[r.district_code], rank.get(r.grade, 99)))
    return report


def supervision_figures(
    conn: sa.Connection, *, campaign: Campaign, actor: Actor, clock: Clock, district: str | None
) -> dict[str, Any] | None:
    """What the dashboards show of supervision carried out: the share of this month's and last month's plans
    done (per district for the city), and trained firms against the directory."""
    from workflow.trainings import training_reach

    if actor.role not in (Role.city_bureau, Role.support_center, Role.district_bureau):
        return None
    this_month = today(clock).replace(day=1)
    last_month = (this_month - dt.timedelta(days=1)).replace(day=1)
    months = []
    for month in (last_month, this_month):
        report = plan_report(conn, campaign=campaign, month=month, actor=actor, clock=clock, district=district)
        codes = list(dict.fromkeys(r.district_code for r in report.rows))
        per_district = []
        for code in codes:
            total = report.totals(code)
            total.district_name = campaign.district(code).name  # type: ignore[union-attr]
            per_district.append(total)
        months.append({"month": month, "total": report.totals(), "districts": per_district})
    return {"months": months, "reach": training_reach(conn, actor=actor, district=district)}


def more_inspections_due(
    conn: sa.Connection, *, campaign: Campaign, district: str, actor: Actor, clock: Clock, limit: int = 200
) -> list[dict[str, Any]]:
    """The district's task list of firms graded for more inspections (对未开展达标创建的企业加大检查频率: a grade
    inspected more often than a firm that has started) that were not inspected within their period (the
    grade's interval, counted back from today)."""
    code = _district(campaign, district)
    _require_district(actor, code)
    supervision = campaign.supervision
    base = supervision.inspections_per_year["on_track"]
    stricter = [g for g in GRADES if supervision.inspections_per_year[g] > base]  # type: ignore[index]
    if not stricter:
        return []
    day = today(clock)
    E = ENTERPRISES
    grade = grade_expression(campaign, day).label("grade")
    graded = (
        sa.select(E.c.id, E.c.uscc, E.c.name, E.c.state, grade)
        .where(E.c.district_code == code, E.c.state != "closed")
        .subquery()
    )
    last = (
        sa.select(sa.func.max(INSPECTIONS.c.held_on))
        .where(INSPECTIONS.c.enterprise_id == graded.c.id, INSPECTIONS.c.kind.in_(PLAN_KINDS))
        .scalar_subquery()
    )
    rows = conn.execute(
        sa.select(graded, last.label("last_inspected"))
        .where(graded.c.grade.in_(stricter))
        .order_by(graded.c.name, graded.c.id)
    )
    out: list[dict[str, Any]] = []
    for r in rows:
        interval = supervision.interval_months(r.grade)
        since = _months_back(day, interval)
        last_day = r.last_inspected
        if isinstance(last_day, str):
            last_day = dt.date.fromisoformat(last_day)
        if last_day is not None and last_day > since:
            continue
        out.append(
            {
                "enterprise_id": r.id,
                "uscc": r.uscc,
                "name": r.name,
                "state": r.state,
                "grade": r.grade,
                "grade_label": GRADE_LABELS[r.grade],
                "per_year": supervision.inspections_per_year[r.grade],
                "last_inspected": last_day,
                "due_since": since,
            }
        )
        if len(out) >= limit:
            break
    return out


def _months_back(day: dt.date, months: int) -> dt.date:
    n = _month_number(day) - months
    year, month = divmod(n, 12)
    last = _month_end(dt.date(year, month + 1, 1)).day
    return dt.date(year, month + 1, min(day.day, last))
