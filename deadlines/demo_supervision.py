"""The demo's supervision carried out: in the last months before the demo's day every district works through
most of its monthly inspection plan (on site with two inspectors, or an online patrol), misses some, raises a
few findings the firms answer; and districts hold training sessions and briefings for part of their directory.
Its own random stream keeps the rest of the replay as it was."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from deadlines.inspections import Finding, plan_worklist, record_inspection
from states import WorkflowError
from workflow.clock import SHANGHAI, FixedClock
from workflow.records import FiveImplementations, decide_rectification, rectify_hazard, update_hazard
from workflow.tables import ENTERPRISES, HAZARDS
from workflow.trainings import record_training

MONTHS_CARRIED_OUT = 4
# How much of its plan each district carries out (the demo's figures, not the plan's).
CARRY_OUT = (0.95, 0.9, 0.86, 0.92, 0.82, 0.88, 0.9)
FINDINGS = (
    ("消防通道堆放杂物", "general"),
    ("特种作业人员证书过期", "general"),
    ("危险化学品储存场所未设置防爆设施", "major"),
    ("安全生产责任制未覆盖全员", "general"),
)
INSPECTORS = ("王", "李", "张", "刘", "陈", "杨", "赵", "黄")
TRAININGS = (
    (dt.date(2022, 3, 10), "training", "达标创建专项培训：创建大纲与自评方法"),
    (dt.date(2022, 5, 18), "briefing", "企业宣讲：达标创建政策与申报流程"),
    (dt.date(2022, 9, 14), "training", "专项培训：隐患排查与“五落实”"),
    (dt.date(2023, 3, 15), "briefing", "企业宣讲：规模以上企业2023年底前全部开展创建"),
)


class SupervisionOffice:
    def __init__(self, replay: Any, seed: int) -> None:  # deadlines.demo.Replay
        self.replay = replay
        self.rng = random.Random(seed + 18)
        self.time_rng = random.Random(seed + 19)  # the minutes of its visits, apart from its choices
        self.visits: dict[dt.date, list[tuple[int, str]]] = defaultdict(list)
        self.answers: dict[dt.date, list[int]] = defaultdict(list)
        self.stats = replay.stats
        # the last months before the demo's day (what the dashboards show), to keep the replay quick
        last = replay.until.replace(day=1)
        self.first_month = max(dt.date(2022, 3, 1), (last - dt.timedelta(days=MONTHS_CARRIED_OUT * 31)).replace(day=1))

    def clock_at(self, day: dt.date, hour: int) -> FixedClock:
        """A clock at some minute of `hour` on `day` (drawn from the seed): the office's visits are not all on
        the hour."""
        minute, second = self.time_rng.randint(0, 59), self.time_rng.randint(0, 59)
        return FixedClock(dt.datetime.combine(day, dt.time(hour, minute, second), SHANGHAI))

    def count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1

    def day(self, day: dt.date) -> None:
        for held_on, kind, topic in TRAININGS:
            if day == held_on:
                self.train(day, kind, topic)
        if day >= self.first_month and day.day == 1:
            self.plan_month(day)
        for firm, district in self.visits.pop(day, []):
            self.inspect(day, firm, district)
        for hazard in self.answers.pop(day, []):
            self.answer(day, hazard)

    def plan_month(self, month: dt.date) -> None:
        """Spread the share of the plan a district carries out over the month's working days."""
        r = self.replay
        end = min((month.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1), r.until)
        days = [month + dt.timedelta(days=n) for n in range((end - month).days + 1)]
        days = [d for d in days if d.weekday() < 5] or days
        for n, d in enumerate(r.campaign.districts):
            office = r.district_of(d.code)
            with r.engine.connect() as conn:
                items = list(
                    plan_worklist(conn, campaign=r.campaign, district=d.code, month=month, actor=office, clock=r.clock)
                )
            for item in items:
                if self.rng.random() < CARRY_OUT[n % len(CARRY_OUT)]:
                    self.visits[self.rng.choice(days)].append((item.line.enterprise_id, d.code))
                else:
                    self.count("inspection_missed")

    def _quiet(self, firm: int, day: dt.date) -> bool:
        """No step of the firm's own is due within three weeks (so a finding is answered before it acts)."""
        soon = day + dt.timedelta(days=21)
        return not any(s.firm == firm and s.day <= soon for s in self.replay.queue)

    def inspect(self, day: dt.date, firm: int, district: str) -> None:
        r = self.replay
        office = r.district_of(district)
        onsite = self.rng.random() < 0.7
        names = self.rng.sample(INSPECTORS, 2)
        with r.engine.connect() as conn:
            state = conn.execute(sa.select(ENTERPRISES.c.state).where(ENTERPRISES.c.id == firm)).scalar_one()
        findings: list[Finding] = []
        if state in ("self_assessing", "rectifying") and self.rng.random() < 0.25 and self._quiet(firm, day):
            findings = [Finding(*f) for f in self.rng.sample(FINDINGS, self.rng.randint(1, 2))]
        penalty: dict[str, Any] = {}
        if state == "mobilized" and day >= dt.date(2023, 1, 1) and self.rng.random() < 0.05:
            penalty = {
                "penalty_decision": "责令限期改正，处罚款人民币一万元",
                "legal_basis": "《中华人民共和国安全生产法》第九十七条",
            }
        items = [i.code for i in self.rng.sample(r.campaign.outline_items, 4)]
        with Session(r.engine) as session:
            try:
                result = record_inspection(
                    session,
                    enterprise_id=firm,
                    kind="onsite" if onsite else "online",
                    held_on=day,
                    inspectors=[f"{district}{n}科员" for n in names] if onsite else [f"{district}{names[0]}科员"],
                    items_checked=items,
                    findings=findings,
                    summary="现场检查安全管理台账与作业现场" if onsite else "通过“常安码”线上巡查企业创建进度",
                    actor=office,
                    campaign=r.campaign,
                    clock=self.clock_at(day, 15),
                    **penalty,
                )
            except WorkflowError:
                self.count("inspection_refused")
                return
        self.count("inspection_onsite" if onsite else "inspection_online")
        for hazard in result["hazard_ids"]:
            self.answers[day + dt.timedelta(days=self.rng.randint(5, 12))].append(hazard)

    def answer(self, day: dt.date, hazard_id: int) -> None:
        """The firm fills the five implementations of the bureau's finding, uploads its rectification file and
        submits it; the district bureau that raised it accepts it (only that office closes it)."""
        r = self.replay
        with r.engine.connect() as conn:
            hazard = conn.execute(sa.select(HAZARDS).where(HAZARDS.c.id == hazard_id)).first()
        if hazard is None or hazard.status != "open":
            return
        firm = r.enterprise(hazard.enterprise_id)
        clock = self.clock_at(day, 11)
        deadline = day + dt.timedelta(days=20)
        five = FiveImplementations("安全科长", "按检查意见整改", 8000.0, deadline, "企业综合应急预案")
        try:
            with Session(r.engine) as session:
                update_hazard(
                    session, hazard_id=hazard_id, implementations=five, actor=firm, clock=clock, campaign=r.campaign
                )
            evidence = r.upload(
                hazard.enterprise_id, "rectification", f"隐患{hazard_id}整改照片.pdf", hazard_id=hazard_id
            )
            with Session(r.engine) as session:
                rectify_hazard(session, hazard_id=hazard_id, evidence_id=evidence, actor=firm, clock=clock)
            with Session(r.engine) as session:
                decide_rectification(
                    session,
                    hazard_id=hazard_id,
                    accept=True,
                    note="经复查，整改到位",
                    actor=r.district(hazard.enterprise_id),
                    clock=self.clock_at(day, 17),
                )
            self.count("finding_accepted")
        except WorkflowError:
            self.count("finding_refused")

    def train(self, day: dt.date, kind: str, topic: str) -> None:
        """Each district trains about a third of its open firms (one to three people each)."""
        r = self.replay
        for d in r.campaign.districts:
            with r.engine.connect() as conn:
                firms = list(
                    conn.execute(
                        sa.select(ENTERPRISES.c.id).where(
                            ENTERPRISES.c.district_code == d.code, ENTERPRISES.c.state != "closed"
                        )
                    ).scalars()
                )
            chosen = [f for f in firms if self.rng.random() < 0.33][:2000]
            if not chosen:
                continue
            with Session(r.engine) as session:
                record_training(
                    session,
                    kind=kind,
                    held_on=day,
                    topic=topic,
                    attendees={f: self.rng.randint(1, 3) for f in chosen},
                    actor=r.district_of(d.code),
                    campaign=r.campaign,
                    clock=self.clock_at(day, 16),
                )
            self.count(f"{kind}_held")
