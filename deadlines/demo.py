"""The demo behind `make demo`: a Changzhou-like campaign replayed from 2022-02-08 with simulated firms and
officials — transitions through the engine, daily sweeps, digests, review teams and certifications, mail
into the .eml folder — built from nothing at a database URL, ready to be served (api.demo serves it)."""

from __future__ import annotations

import datetime as dt
import heapq
import io
import itertools
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from deadlines.demo_supervision import SupervisionOffice
from deadlines.referrals import (
    acknowledge_referral,
    decide_referral,
    list_referrals,
    list_suggestions,
    propose_referral,
)
from deadlines.sweep import sweep
from notifications.digest import write_digests
from notifications.dispatch import dispatch_once
from states import Role, WorkflowError
from workflow.accounts import NewUser, create_user
from workflow.actors import Actor
from workflow.campaign import Campaign, sync_districts
from workflow.certificates import name_benchmark, record_prior_certificate
from workflow.clock import FixedClock
from workflow.context import Context
from workflow.db import make_engine, migrate
from workflow.directory import import_directory
from workflow.engine import fire
from workflow.evidence import store_evidence
from workflow.generator import write_directory
from workflow.guidance import assign_guide, list_guidance, record_visit
from workflow.models import ReferralStatus, ReviewAssignmentStatus
from workflow.pool import element_points, form_team, record_reviewer_score, record_team_result
from workflow.records import (
    FiveImplementations,
    decide_rectification,
    record_self_assessment,
    rectify_hazard,
    report_hazard,
    update_hazard,
)
from workflow.settings import Settings
from workflow.tables import APPLICATIONS, CERTIFICATIONS, ENTERPRISES, HAZARDS, REVIEW_ASSIGNMENTS
from workflow.targets import store_targets

PASSWORD = "dabiao-demo-2023"
START = dt.date(2022, 2, 8)  # the plan's date (常州市应急管理局 2022年2月8日); 动员部署阶段(2022年2月底前)
SHORT_NAMES = {
    "320481": "liyang",
    "320413": "jintan",
    "320412": "wujin",
    "320411": "xinbei",
    "320402": "tianning",
    "320404": "zhonglou",
    "320491": "jingkai",
}
HAZARDS_FOUND = [
    ("有限空间作业未落实审批制度", "general"),
    ("危化品仓库可燃气体报警装置失效", "major"),
    ("消防通道被物料堵塞", "general"),
    ("冲压设备光电保护装置缺失", "general"),
    ("粉尘涉爆区域未定期清扫", "major"),
    ("特种作业人员证书过期", "general"),
]
GUIDANCE_NOTES = [
    "现场指导双重预防机制建设，提出改进意见3条",
    "督导隐患排查治理台账规范化",
    "指导应急预案修订并观摩演练",
    "对照标杆企业要求逐项核查安全生产责任制落实",
]
FINDINGS = ["安全生产责任制未覆盖全员", "应急预案未按规定演练", "隐患排查台账记录不全", "设备设施检维修记录缺失"]


@dataclass
class Logins:
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # role, username, note

    def add(self, role: str, username: str, note: str) -> None:
        self.rows.append((role, username, note))


@dataclass(order=True)
class Step:
    day: dt.date
    order: int
    firm: int = field(compare=False)
    action: str = field(compare=False)
    data: dict[str, Any] = field(default_factory=dict, compare=False)


class Replay:
    """Simulated firms and officials acting on their days; the engine, sweeps and pool do the rest."""

    def __init__(self, engine: sa.Engine, campaign: Campaign, settings: Settings, *, seed: int, until: dt.date) -> None:
        self.engine, self.campaign, self.settings, self.until = engine, campaign, settings, until
        self.rng = random.Random(seed)
        # the dossier's own choices (re-assessments, supporting materials, office decisions) draw from their own
        # generator, so the campaign's replay keeps its course
        self.dossier_rng = random.Random(seed + 1)
        self.cert_rng = random.Random(seed + 8)  # certificate decisions, apart from the firms' own fates
        self.seed = seed
        self.queue: list[Step] = []
        self.counter = itertools.count()
        self.firms: dict[int, Any] = {}
        self.officials: dict[str, Actor] = {}
        self.reviewers: dict[int, Actor] = {}
        self.stats: dict[str, int] = {}
        self.clock = FixedClock.on(START)
        # the time of day of each step: in office hours, the same for the same seed, apart from the firms' fates
        self.time_rng = random.Random(seed + 21)
        self.stamped: dict[int, dt.datetime] = {}  # each firm's latest step today: its next one comes later
        self.rectified: set[int] = set()  # firms that rectified since their last self-assessment
        self.dossiers: set[int] = set()  # firms that uploaded their self-assessment report and application form

    # ---- scheduling ---------------------------------------------------------------------------

    def at(self, day: dt.date, firm: int, action: str, **data: Any) -> None:
        if day <= self.until:
            heapq.heappush(self.queue, Step(day, next(self.counter), firm, action, data))

    def later(self, day: dt.date, low: int, high: int) -> dt.date:
        return day + dt.timedelta(days=self.rng.randint(low, high))

    def plan(self) -> None:
        """Each firm's fate: when it is notified and starts, or that it never does."""
        rng = self.rng
        for firm in self.firms.values():
            notify = START + dt.timedelta(days=rng.randint(0, 20))  # each principal, by the end of February
            if rng.random() < 0.03:
                notify = dt.date(2022, 3, 1) + dt.timedelta(days=rng.randint(0, 30))  # late: listed to the district
            self.at(max(notify, START), firm.id, "notify")
            known = self.cert_rng.random()  # earlier certificates: some held, many recorded none, the rest unknown
            if known < 0.56:
                level = (1 if self.cert_rng.random() < 0.2 else 2) if known < 0.06 else None
                recorded = max(notify, START) + dt.timedelta(days=self.cert_rng.randint(1, 20))
                self.at(recorded, firm.id, "prior", level=level)
            if rng.random() < 0.01:
                self.at(dt.date(2022, 4, 1) + dt.timedelta(days=rng.randint(0, 400)), firm.id, "close")
                continue
            if firm.key_field:
                fate = rng.random()
                if fate < 0.80:
                    start = dt.date(2022, 3, 1) + dt.timedelta(days=rng.randint(0, 290))
                elif fate < 0.92:
                    start = dt.date(2023, 1, 5) + dt.timedelta(days=rng.randint(0, 120))  # after the milestone
                else:
                    continue  # never starts: non-participating, a referral candidate
            else:
                chance = 0.75 if firm.above_size else 0.45
                if rng.random() > chance:
                    continue
                # non-key above-size firms must start by 2023年底前: some leave it to the last months
                start = dt.date(2022, 3, 1) + dt.timedelta(days=rng.randint(0, 640 if firm.above_size else 480))
            self.at(start, firm.id, "start")

    # ---- acting -------------------------------------------------------------------------------

    def fire(self, firm: int, trigger: str, actor: Actor, data: dict[str, Any] | None = None) -> bool:
        with Session(self.engine) as session:
            try:
                fire(
                    session,
                    enterprise_id=firm,
                    trigger=trigger,
                    actor=actor,
                    context=Context(self.campaign, self.clock, self.settings),
                    payload=data,
                )
            except WorkflowError:
                self.stats["refused"] = self.stats.get("refused", 0) + 1
                return False
        self.stats[trigger] = self.stats.get(trigger, 0) + 1
        return True

    def district(self, firm: int) -> Actor:
        return self.officials[f"district:{self.firms[firm].district_code}"]

    def organiser(self, firm: int) -> Actor:
        return self.officials["center"] if self.firms[firm].key_field else self.district(firm)

    def enterprise(self, firm: int) -> Actor:
        row = self.firms[firm]
        return Actor(name=f"{row.principal}（{row.name}）", role=Role.enterprise, enterprise_id=firm)

    def working_time(self, day: dt.date, firm: int | None = None, *, afternoon: bool = False) -> dt.datetime:
        """A moment of office hours on `day` (08:30–11:45 and 13:30–16:00 for the firms' and offices' steps,
        16:00–17:30 for the offices' rounds after them), drawn from the seed; a firm's steps of one day keep
        their order."""
        rng = self.time_rng
        if afternoon:
            minute = rng.randint(16 * 60, 17 * 60 + 30)
        else:
            minute = rng.choice((rng.randint(8 * 60 + 30, 11 * 60 + 45), rng.randint(13 * 60 + 30, 16 * 60)))
        at = dt.datetime.combine(day, dt.time(minute // 60, minute % 60, rng.randint(0, 59)), self.clock.tz)
        if firm is not None:
            last = self.stamped.get(firm)
            if last is not None and last.date() == day and at <= last:
                at = last + dt.timedelta(minutes=rng.randint(3, 25))
            self.stamped[firm] = at
        return at

    def office_clock(self, day: dt.date) -> FixedClock:
        """The clock of an office's round after the day's steps (referrals, guidance)."""
        return FixedClock(self.working_time(day, afternoon=True), self.clock.tz)

    def act(self, step: Step) -> None:
        day, firm = step.day, step.firm
        handler: Callable[[dt.date, int, dict[str, Any]], None] = getattr(self, f"_{step.action}")
        handler(day, firm, step.data)

    def _notify(self, day: dt.date, firm: int, data: dict[str, Any]) -> None:
        self.fire(firm, "notify", self.district(firm), {"channel": data["channel"]} if data else None)
        if not data and not (self.firms[firm].email or "").strip() and self.rng.random() < 0.9:
            # no address: the notice is undeliverable (无法送达); most districts phone the principal soon after
            self.at(self.later(day, 3, 20), firm, "notify", channel="phone")

    def _close(self, day: dt.date, firm: int, data: dict[str, Any]) -> None:
        self.fire(firm, "close", self.district(firm), {"reason": "企业停产关闭"})

    def _start(self, day: dt.date, firm: int, data: dict[str, Any]) -> None:
        if self.fire(firm, "start_self_assessment", self.enterprise(firm)):
            self.at(self.later(day, 5, 30), firm, "assess")

    def _self_assess(self, firm: int, rng: random.Random | None = None) -> None:
        rng = rng or self.rng
        quality = min(1.0, max(0.45, rng.gauss(0.82, 0.1)))
        scores = {
            i.code: round(i.points * min(1.0, quality + rng.uniform(-0.1, 0.1)), 1) for i in self.campaign.outline_items
        }
        with Session(self.engine) as session:
            record_self_assessment(
                session,
                enterprise_id=firm,
                scores=scores,
                actor=self.enterprise(firm),
                context=Context(self.campaign, self.clock, self.settings),
            )

    def upload(self, firm: int, kind: str, name: str, hazard_id: int | None = None) -> int | None:
        """A small PDF of the firm's, kept under the data folder like any upload."""
        body = (
            b"%PDF-1.4\n1 0 obj<<>>endobj\n"
            + f"% demo {kind} firm {firm} hazard {hazard_id} {self.clock.now().isoformat()}\n".encode()
            + b"trailer<<>>\n%%EOF\n"
        )
        with Session(self.engine) as session:
            try:
                stored = store_evidence(
                    session,
                    enterprise_id=firm,
                    kind=kind,
                    filename=name,
                    stream=io.BytesIO(body),
                    actor=self.enterprise(firm),
                    data_dir=self.settings.data_dir,
                    max_bytes=self.settings.upload_max_bytes,
                    clock=self.clock,
                    hazard_id=hazard_id,
                )
            except WorkflowError:
                return None
        self.stats["uploads"] = self.stats.get("uploads", 0) + 1
        return int(stored["id"])

    def _assess(self, day: dt.date, firm: int, data: dict[str, Any]) -> None:
        self._self_assess(firm)
        if self.rng.random() < 0.45:
            self.at(day, firm, "find_hazards")
        else:
            self.at(max(self.later(day, 20, 120), self.campaign.phases.evaluation.start), firm, "submit")

    def _find_hazards(self, day: dt.date, firm: int, data: dict[str, Any]) -> None:
        count = self.rng.randint(1, 3)
        for description, severity in self.rng.sample(HAZARDS_FOUND, count):
            deadline = self.later(day, 20, 60)
            with Session(self.engine) as session:
                report_hazard(
                    session,
                    enterprise_id=firm,
                    description=description,
                    severity=severity,
                    implementations=FiveImplementations(
                        "安全科长",
                        "制定整改方案并落实",
                        float(self.rng.randint(2, 80) * 1000),
                        deadline,
                        "企业综合应急预案",
                    ),
                    actor=self.enterprise(firm),
                    clock=self.clock,
                    campaign=self.campaign,
                )
        if self.fire(firm, "report_hazards", self.enterprise(firm)):
            late = self.rng.random() < 0.2  # some firms miss their own hazard deadlines
            self.at(self.later(day, 70, 120) if late else self.later(day, 15, 50), firm, "rectify")

    def _hazards(self, firm: int, status: str) -> list[Any]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(sa.select(HAZARDS).where(HAZARDS.c.enterprise_id == firm, HAZARDS.c.status == status))
            )

    def _rectify_open(self, day: dt.date, firm: int) -> None:
        """Each open hazard: its five implementations, a rectification file, rectified."""
        for h in self._hazards(firm, "open"):
            deadline = h.deadline or min(day, h.reported_at.date() + dt.timedelta(days=300))
            five = FiveImplementations("安全科长", "按整改方案落实", 10000.0, deadline, "企业综合应急预案")
            try:
                with Session(self.engine) as session:
                    update_hazard(
                        session,
                        hazard_id=h.id,
                        implementations=five,
                        actor=self.enterprise(firm),
                        clock=self.clock,
                        campaign=self.campaign,
                    )
                evidence = self.upload(firm, "rectification", f"隐患{h.id}整改照片.pdf", hazard_id=h.id)
                with Session(self.engine) as session:
                    rectify_hazard(
                        session, hazard_id=h.id, evidence_id=evidence, actor=self.enterprise(firm), clock=self.clock
                    )
            except WorkflowError:
                self.stats["refused"] = self.stats.get("refused", 0) + 1

    def _decide_findings(self, firm: int) -> bool:
        """The office that raised the findings accepts the firm's rectifications, now and then sending one back
        with a note; True when one went back."""
        rejected = False
        for h in self._hazards(firm, "submitted"):
            accept = self.dossier_rng.random() >= 0.1
            note = "经核查，整改到位" if accept else "整改佐证不足，请补充整改前后对比照片"
            with Session(self.engine) as session:
                try:
                    decide_rectification(
                        session, hazard_id=h.id, accept=accept, note=note, actor=self.organiser(firm), clock=self.clock
                    )
                except WorkflowError:
                    continue
            key = "rectification_accepted" if accept else "rectification_rejected"
            self.stats[key] = self.stats.get(key, 0) + 1
            rejected = rejected or not accept
        return rejected

    def _rectify(self, day: dt.date, firm: int, data: dict[str, Any]) -> None:
        """The firm rectifies its open hazards; findings of an audit or a review go to the office that raised
        them, which decides at once in this replay (a rejected one is rectified again with a new file)."""
        self._rectify_open(day, firm)
        for _ in range(3):
            if not self._decide_findings(firm):
                break
            self._rectify_open(day, firm)
        self.rectified.add(firm)
        if self.fire(firm, "finish_rectification", self.enterprise(firm)):
            self.at(max(self.later(day, 10, 60), self.campaign.phases.evaluation.start), firm, "submit")

    def _submit(self, day: dt.date, firm: int, data: dict[str, Any]) -> None:
        """The dossier: a self-assessment taken after the last rectification, the self-assessment report and
        the application form, and sometimes supporting materials."""
        if firm in self.rectified:
            self._self_assess(firm, self.dossier_rng)
            self.rectified.discard(firm)
        if firm not in self.dossiers:
            self.upload(firm, "self_assessment_report", "自评报告.pdf")
            self.upload(firm, "application_form", "安全生产达标企业申请表.pdf")
            if self.dossier_rng.random() < 0.6:
                self.upload(firm, "supporting_material", "安全生产责任制文件.pdf")
            self.dossiers.add(firm)
        if self.fire(firm, "submit_application", self.enterprise(firm)):
            year_end = day >= self.campaign.phases.evaluation.end - dt.timedelta(days=45)
            # applications of the year's last weeks wait for the district into the new year (still open for it
            # when the evaluation phase ends, and escalated to it then)
            self.at(self.later(day, 50, 70) if year_end else self.later(day, 3, 25), firm, "verify")

    def _verify(self, day: dt.date, firm: int, data: dict[str, Any]) -> None:
        if self.rng.random() < 0.08:
            returned = {
                "reason": "申请材料不齐全，缺少安全生产责任制文件",
                "missing": ["supporting_material"],
            }
            if self.fire(firm, "return_application", self.district(firm), returned):
                self.upload(firm, "supporting_material", "安全生产责任制文件（补充）.pdf")
                self.at(self.later(day, 15, 40), firm, "submit")
        elif self.fire(firm, "verify", self.district(firm), self.verification()):
            self.at(self.later(day, 3, 20), firm, "audit")

    def verification(self) -> dict[str, Any]:
        """The district's opinion (核实意见) and the checklist items it ticked."""
        return {
            "opinion": "经核实，申请材料齐全，自评情况与企业实际相符",
            "checklist": [item.code for item in self.campaign.dossier.verification_checklist],
        }

    def _audit(self, day: dt.date, firm: int, data: dict[str, Any]) -> None:
        if self.rng.random() < 0.07:
            finding = self.rng.choice(FINDINGS)
            if self.fire(
                firm, "fail_audit", self.organiser(firm), {"reason": finding, "findings": [{"description": finding}]}
            ):
                self.at(self.later(day, 20, 60), firm, "rectify")
        elif self.fire(firm, "pass_audit", self.organiser(firm)):
            self.at(self.later(day, 1, 10), firm, "team")

    def _application(self, firm: int) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.max(APPLICATIONS.c.id)).where(APPLICATIONS.c.enterprise_id == firm)
                ).scalar_one()
            )

    def _team(self, day: dt.date, firm: int, data: dict[str, Any]) -> None:
        application = self._application(firm)
        with Session(self.engine) as session:
            try:
                form_team(
                    session,
                    application_id=application,
                    actor=self.organiser(firm),
                    context=Context(self.campaign, self.clock, self.settings),
                )
            except WorkflowError:
                return
        self.at(self.later(day, 5, 20), firm, "score", application=application)

    def _sheet(self, online: float, onsite: float) -> dict[str, dict[str, float]]:
        """A scoring sheet at about these percentages: each element's share of its points, to the campaign's
        decimals."""
        decimals = self.campaign.review.score_decimals
        return {
            code: {"online": round(points * online / 100, decimals), "on_site": round(points * onsite / 100, decimals)}
            for code, points in element_points(self.campaign).items()
        }

    def _score(self, day: dt.date, firm: int, data: dict[str, Any]) -> None:
        application = data["application"]
        with self.engine.connect() as conn:
            team = [
                r.reviewer_id
                for r in conn.execute(
                    sa.select(REVIEW_ASSIGNMENTS.c.reviewer_id).where(
                        REVIEW_ASSIGNMENTS.c.application_id == application,
                        REVIEW_ASSIGNMENTS.c.status == ReviewAssignmentStatus.active,
                    )
                )
            ]
        level = self.rng.gauss(78, 9)
        for reviewer in team:  # each member scores the sheet: every outline element, online and on site
            online = min(100.0, max(30.0, level + self.rng.uniform(-4, 4)))
            onsite = min(100.0, max(30.0, level + self.rng.uniform(-5, 5)))
            findings = [{"description": self.rng.choice(FINDINGS)}] if level < 62 else []
            with Session(self.engine) as session:
                record_reviewer_score(
                    session,
                    application_id=application,
                    actor=self.reviewers[reviewer],
                    sheet=self._sheet(online, onsite),
                    findings=findings,
                    context=Context(self.campaign, self.clock, self.settings),
                )
        with Session(self.engine) as session:
            try:
                record_team_result(
                    session,
                    application_id=application,
                    actor=self.organiser(firm),
                    context=Context(self.campaign, self.clock, self.settings),
                )
            except WorkflowError:
                return
        self.stats["record_review"] = self.stats.get("record_review", 0) + 1
        self.at(self.later(day, 3, 15), firm, "decide")

    def _decide(self, day: dt.date, firm: int, data: dict[str, Any]) -> None:
        if self.fire(firm, "certify", self.officials["city"]):
            self.at(day + dt.timedelta(days=self.cert_rng.randint(5, 20)), firm, "benchmark")
        elif self.fire(firm, "fail_review", self.officials["city"]):
            self.at(self.later(day, 20, 50), firm, "rectify")

    def _benchmark(self, day: dt.date, firm: int, data: dict[str, Any]) -> None:
        """The city names about half of the certified firms scoring at least 75 标杆 (its decision)."""
        with self.engine.connect() as conn:
            score = conn.execute(
                sa.select(CERTIFICATIONS.c.score).where(
                    CERTIFICATIONS.c.enterprise_id == firm, CERTIFICATIONS.c.revoked_at.is_(None)
                )
            ).scalar()
        if score is None or score < self.campaign.thresholds.benchmark or self.cert_rng.random() < 0.5:
            return
        with Session(self.engine) as session:
            name_benchmark(
                session,
                enterprise_id=firm,
                reason="评审得分高，隐患排查治理可作示范",
                actor=self.officials["city"],
                context=Context(self.campaign, self.clock, self.settings),
            )
        self.stats["benchmark_named"] = self.stats.get("benchmark_named", 0) + 1

    def _prior(self, day: dt.date, firm: int, data: dict[str, Any]) -> None:
        """The district records whether the firm holds an earlier level-1/2 standardization certificate."""
        level = data["level"]
        number = None if level is None else f"苏AQB{320000 + firm % 1000}{'I' * level}{2016 + firm % 5}{firm:05d}"
        issued = None if level is None else dt.date(2016 + firm % 5, 1 + firm % 12, 1 + firm % 28)
        with Session(self.engine) as session:
            record_prior_certificate(
                session,
                enterprise_id=firm,
                level=level or "none",
                number=number,
                issued_on=issued,
                actor=self.district(firm),
                context=Context(self.campaign, self.clock, self.settings),
            )
        self.stats["prior_certificate"] = self.stats.get("prior_certificate", 0) + 1

    # ---- the run ------------------------------------------------------------------------------

    def run(self, say: Callable[[str], None]) -> None:
        self.plan()
        supervision = SupervisionOffice(self, self.seed)
        day, began = START, time.perf_counter()
        last_report = began
        days = (self.until - START).days + 1
        while day <= self.until:
            self.clock.at = dt.datetime.combine(day, dt.time(8, 30), self.clock.tz)  # the office day begins
            while self.queue and self.queue[0].day <= day:
                step = heapq.heappop(self.queue)
                self.clock.at = self.working_time(day, step.firm)
                self.act(step)
            sweep(self.engine, context=Context(self.campaign, FixedClock.on(day, hour=23), self.settings), through=day)
            self.referral_office(day)
            self.guidance_office(day)
            supervision.day(day)
            if day.weekday() < 4 or day.weekday() == 6:  # digests go out on working-day mornings
                morning = FixedClock.on(day + dt.timedelta(days=1), hour=8)
                write_digests(self.engine, context=Context(self.campaign, morning, self.settings))
            now = time.perf_counter()
            if now - last_report > 3 or day == self.until:
                done = ((day - START).days + 1) / days
                left = (now - began) / done * (1 - done)
                say(f"  [{done:4.0%}] {day}  约还需 / left ~{duration(left)}  {self.summary()}")
                last_report = now
            day += dt.timedelta(days=1)

    def referral_office(self, day: dt.date) -> None:
        """The referral procedure, after the day's sweep: on Mondays each district weighs the sweep's
        suggestions of the past week and proposes most of them; on Thursdays the city decides the proposals
        (a confirmation on grounds that lapsed is refused, and the sweep withdraws the proposal); on Fridays
        the local governments acknowledge what was confirmed."""
        at = self.office_clock(day)
        weekday = day.weekday()
        if weekday == 0:
            for code in (d.code for d in self.campaign.districts):
                office = self.district_of(code)
                with self.engine.connect() as conn:
                    open_ = list_suggestions(conn, actor=office)
                for s in open_:
                    if (day - s.suggested_at.astimezone(at.tz).date()).days < 7 or self.rng.random() < 0.25:
                        continue
                    with Session(self.engine) as session:
                        try:
                            propose_referral(
                                session,
                                enterprise_id=s.enterprise_id,
                                grounds=s.grounds,
                                actor=office,
                                context=Context(self.campaign, at, self.settings),
                                note="经研判，建议移交属地政府",
                            )
                            self.stats["referral_proposed"] = self.stats.get("referral_proposed", 0) + 1
                        except WorkflowError:
                            self.stats["refused"] = self.stats.get("refused", 0) + 1
        elif weekday == 3:
            city = self.officials["city"]
            with self.engine.connect() as conn:
                proposals = list_referrals(conn, actor=city, campaign=self.campaign, status=ReferralStatus.proposed)
            for r in proposals:
                confirm = self.rng.random() < 0.8
                with Session(self.engine) as session:
                    try:
                        decide_referral(
                            session,
                            referral_id=r.id,
                            actor=city,
                            context=Context(self.campaign, at, self.settings),
                            confirm=confirm,
                            note="核实无误" if confirm else "暂缓移交，继续督促",
                        )
                        key = "referral_confirmed" if confirm else "referral_declined"
                        self.stats[key] = self.stats.get(key, 0) + 1
                    except WorkflowError:
                        self.stats["referral_refused"] = self.stats.get("referral_refused", 0) + 1
        elif weekday == 4:
            for code in (d.code for d in self.campaign.districts):
                government = self.officials[f"government:{code}"]
                with self.engine.connect() as conn:
                    confirmed = list_referrals(
                        conn, actor=government, campaign=self.campaign, status=ReferralStatus.confirmed
                    )
                for r in confirmed:
                    with Session(self.engine) as session:
                        acknowledge_referral(session, referral_id=r.id, actor=government, clock=at)

    def guidance_office(self, day: dt.date) -> None:
        """Benchmark candidates (派驻专家重点指导、监管人员重点督导): on the first of each month from October 2022
        each district sends an expert to one of its firms in the evaluation and records visits mid-month."""
        if day < dt.date(2022, 10, 1) or day.day not in (1, 15):
            return
        at = self.office_clock(day)
        for d in self.campaign.districts:
            office = self.district_of(d.code)
            if day.day == 1:
                with self.engine.connect() as conn:
                    candidate = conn.execute(
                        sa.select(ENTERPRISES.c.id)
                        .where(
                            ENTERPRISES.c.district_code == d.code,
                            ENTERPRISES.c.state.in_(("applied", "verified", "reviewed", "certified")),
                        )
                        .order_by(ENTERPRISES.c.id)
                        .offset(day.month % 3)
                        .limit(1)
                    ).scalar()
                if candidate is None:
                    continue
                kind = "expert" if self.rng.random() < 0.6 else "officer"
                person = f"{d.name}{'评定专家' if kind == 'expert' else '监管人员'}{self.rng.randint(1, 9)}号"
                with Session(self.engine) as session:
                    assign_guide(
                        session,
                        enterprise_id=candidate,
                        person=person,
                        kind=kind,
                        from_date=day,
                        actor=office,
                        clock=at,
                    )
                self.stats["guidance_assigned"] = self.stats.get("guidance_assigned", 0) + 1
            else:
                with self.engine.connect() as conn:
                    assignments = list_guidance(conn, actor=office)
                for a in assignments:
                    if a.from_date < day and self.rng.random() < 0.5:
                        with Session(self.engine) as session:
                            record_visit(
                                session,
                                assignment_id=a.id,
                                visited_on=day,
                                note=self.rng.choice(GUIDANCE_NOTES),
                                actor=office,
                                clock=at,
                            )
                        self.stats["guidance_visit"] = self.stats.get("guidance_visit", 0) + 1

    def district_of(self, code: str) -> Actor:
        return self.officials[f"district:{code}"]

    def summary(self) -> str:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(ENTERPRISES.c.state, sa.func.count()).group_by(ENTERPRISES.c.state)).all()
        counts: dict[str, int] = {str(state): int(n) for state, n in rows}
        order = ["mobilized", "self_assessing", "rectifying", "applied", "verified", "reviewed", "certified", "closed"]
        return " ".join(f"{s}={counts.get(s, 0)}" for s in order)


def duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def build_demo(
    *,
    url: str,
    settings: Settings,
    campaign: Campaign,
    firms: int,
    until: dt.date,
    seed: int,
    say: Callable[[str], None],
) -> Logins:
    """Create the demo database at `url` from nothing and replay the campaign up to `until`."""
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        sync_districts(conn, campaign)
    say(f"生成企业名录 / generating a directory of {firms} firms …")
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder) / "directory.csv"
        write_directory(directory, count=firms, seed=seed, campaign=campaign)
        import_directory(engine, directory, context=Context(campaign, FixedClock.on(START)))
    _stand_in_targets(engine, campaign)
    replay = Replay(engine, campaign, settings, seed=seed, until=until)
    logins = _accounts(engine, campaign, replay)
    with engine.connect() as conn:
        replay.firms = {r.id: r for r in conn.execute(sa.select(ENTERPRISES))}
    say(f"回放创建活动 / replaying the campaign from {START} to {until} …")
    started = time.perf_counter()
    replay.run(say)
    say(
        f"  回放用时 / replay took {duration(time.perf_counter() - started)}; actions: "
        + ", ".join(f"{k} {v}" for k, v in sorted(replay.stats.items()))
    )
    _enterprise_logins(engine, logins)
    engine.dispose()
    return logins


def _stand_in_targets(engine: sa.Engine, campaign: Campaign) -> None:
    """The campaign file's stand-in targets are for a city-sized directory; the demo's are scaled to its own
    directory (every firm of the group must start: 需全部开展创建工作), still marked as a stand-in."""
    e = ENTERPRISES
    group = sa.case((e.c.key_field.is_(True), "key"), else_="other")
    with engine.begin() as conn:
        counts = {
            (str(code), str(grp)): int(n)
            for code, grp, n in conn.execute(
                sa.select(e.c.district_code, group, sa.func.count())
                .where(sa.or_(e.c.key_field.is_(True), e.c.above_size.is_(True)))
                .group_by(e.c.district_code, group)
            )
        }
        store_targets(
            conn,
            figures=[
                (d.code, counts.get((d.code, "key"), 0), counts.get((d.code, "other"), 0)) for d in campaign.districts
            ],
            source="stand-in",
            imported_by="demo（按演示名录缩放的示例数值）",
            at=FixedClock.on(START).now(),
        )


def write_mail(*, url: str, settings: Settings, campaign: Campaign, until: dt.date) -> tuple[int, int]:
    """Send everything in the outbox — into the .eml folder when no SMTP server is set. Returns the messages
    written and, apart, those that had no recipient (nothing was written for them)."""
    engine = make_engine(url)
    sent = no_recipient = 0
    final = FixedClock.on(until + dt.timedelta(days=1), hour=0)
    batch = settings.model_copy(update={"dispatch_batch": 2000})
    while True:
        report = dispatch_once(engine, settings=batch, clock=final, campaign=campaign)
        sent += report.sent
        no_recipient += report.no_recipient
        if report.claimed == 0:
            break
    engine.dispose()
    return sent, no_recipient


# The offices' officers as the demo's accounts name them (synthetic names; the history shows "office · person").
OFFICERS = ("王建国", "李静", "张卫东", "刘芳", "陈志强", "杨丽", "赵文斌", "黄敏", "周立新", "吴海燕")


def _accounts(engine: sa.Engine, campaign: Campaign, replay: Replay) -> Logins:
    logins = Logins()
    clock = FixedClock.on(START)

    def add(username: str, role: Role, name: str, **kw: Any) -> int:
        with Session(engine) as session:
            return create_user(
                session,
                new=NewUser(
                    username=username,
                    password=PASSWORD,
                    role=role,
                    display_name=name,
                    email=f"{username}@demo.example.com",
                    **kw,
                ),
                clock=clock,
            )

    people = itertools.cycle(OFFICERS)
    uid = add("city", Role.city_bureau, next(people))
    replay.officials["city"] = Actor("city", Role.city_bureau, user_id=uid)
    logins.add("city_bureau 市应急管理局", "city", "city dashboard, certification queue")
    uid = add("center", Role.support_center, next(people))
    replay.officials["center"] = Actor("center", Role.support_center, user_id=uid)
    logins.add("support_center 市应急保障中心", "center", "online audits of key-field firms, review teams")
    for d in campaign.districts:
        short = SHORT_NAMES.get(d.code, d.code)
        uid = add(short, Role.district_bureau, next(people), district_code=d.code)
        replay.officials[f"district:{d.code}"] = Actor(short, Role.district_bureau, district_code=d.code, user_id=uid)
        uid = add(f"gov-{short}", Role.local_government, d.local_government, district_code=d.code)
        replay.officials[f"government:{d.code}"] = Actor(
            f"gov-{short}", Role.local_government, district_code=d.code, user_id=uid
        )
    logins.add("district_bureau 武进区应急管理局", "wujin", "also liyang, jintan, xinbei, tianning, zhonglou, jingkai")
    logins.add("local_government 武进区人民政府", "gov-wujin", "referrals of its area")
    for n in range(1, 31):
        username = f"expert{n:02d}"
        uid = add(
            username,
            Role.reviewer,
            f"评定专家{n:02d}",
            organisation="江苏省安全生产评价中心",
            trained_on=dt.date(2022, 3, 15),
        )
        replay.reviewers[uid] = Actor(username, Role.reviewer, user_id=uid)
    logins.add("reviewer 评定专家", "expert01", "assigned applications and scoring (expert01 … expert30)")
    return logins


def _enterprise_logins(engine: sa.Engine, logins: Logins) -> None:
    """Accounts for two firms of 武进区: one certified, one still working."""
    clock = FixedClock.on(START)
    with engine.connect() as conn:
        picks = []
        for state in ("certified", "rectifying", "self_assessing"):
            row = conn.execute(
                sa.select(ENTERPRISES.c.id, ENTERPRISES.c.name)
                .where(ENTERPRISES.c.state == state, ENTERPRISES.c.district_code == "320412")
                .order_by(ENTERPRISES.c.id)
                .limit(1)
            ).first()
            if row is not None:
                picks.append((state, row))
    for n, (state, row) in enumerate(picks[:2], start=1):
        username = f"firm{n}"
        with Session(engine) as session:
            create_user(
                session,
                new=NewUser(
                    username=username,
                    password=PASSWORD,
                    role=Role.enterprise,
                    display_name=row.name,
                    enterprise_id=row.id,
                ),
                clock=clock,
            )
        logins.add(f"enterprise 企业（{state}）", username, row.name)
