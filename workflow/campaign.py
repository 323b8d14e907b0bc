"""The campaign file (TOML): districts, fields, phases, milestones, thresholds and the creation outline.

Loaded and validated once; a bad file is refused naming the exact key that is wrong.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, model_validator


class CampaignInvalid(Exception):
    """The campaign file is unreadable or breaks a rule; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CampaignInfo(_Strict):
    id: str = Field(min_length=1)
    name: str
    name_en: str
    city: str
    city_en: str
    timezone: str = "Asia/Shanghai"
    city_bureau_email: EmailStr
    support_center_email: EmailStr


class Phase(_Strict):
    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> Phase:
        if self.end < self.start:
            raise ValueError("end is before start")
        return self

    def contains(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


class Phases(_Strict):
    mobilization: Phase
    creation: Phase
    evaluation: Phase


class Milestone(_Strict):
    id: str
    name: str
    name_en: str
    applies_to: Literal["key_field", "non_key_above_size"]
    date: dt.date


class Thresholds(_Strict):
    compliant: float = Field(ge=0, le=100)
    benchmark: float = Field(ge=0, le=100)
    level1_eligible: float = Field(ge=0, le=100)
    level2_eligible: float = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if not self.compliant <= self.benchmark:
            raise ValueError("benchmark must not be below compliant")
        if not self.level2_eligible <= self.level1_eligible:
            raise ValueError("level1_eligible must not be below level2_eligible")
        return self


MAX_RESULT_FINDINGS = 200  # findings a team's result (and any transition) carries at most


class ReviewRules(_Strict):
    """How a review team works. The plan names a team reviewing online and on site (组织评审组…进行线上和线下
    现场评审) but gives none of these numbers: every one is a local setting (本地设置)."""

    team_size: int = Field(ge=1, le=15)
    team_score: Literal["mean", "median"] = "mean"
    online_weight: float = Field(ge=0, le=1)
    score_decimals: int = Field(default=1, ge=0, le=2)  # decimals a sheet's score may carry
    findings_per_member: int = Field(default=20, ge=0, le=MAX_RESULT_FINDINGS)
    finding_length: int = Field(default=500, ge=1, le=2000)  # characters per finding

    @model_validator(mode="after")
    def _findings_fit(self) -> ReviewRules:
        if self.team_size * self.findings_per_member > MAX_RESULT_FINDINGS:
            raise ValueError(
                f"team_size × findings_per_member must not exceed {MAX_RESULT_FINDINGS} (the team's result)"
            )
        return self


class ChecklistItem(_Strict):
    code: str = Field(pattern=r"^[a-z_]+$")
    name: str
    name_en: str


class DossierRules(_Strict):
    """Local settings for a firm's record and dossier (the plan names the materials, not these numbers)."""

    hazard_deadline_max_days: int = Field(default=365, ge=1, le=3650)  # latest deadline after the report day
    verification_checklist: tuple[ChecklistItem, ...] = ()  # what the district may tick when it verifies


class District(_Strict):
    code: str = Field(pattern=r"^\d{6}$")
    name: str
    name_en: str
    aliases: tuple[str, ...] = ()
    weight: float = Field(gt=0)
    # firms that must have *started* (附件2); None until figures are entered (see Targets)
    start_target_key_field: int | None = Field(default=None, ge=0)
    start_target_other: int | None = Field(default=None, ge=0)
    bureau_email: EmailStr
    local_government: str
    local_government_email: EmailStr


class Sector(_Strict):
    code: str = Field(pattern=r"^[a-z_]+$")
    name: str
    key_field: bool
    weight: float = Field(ge=0)


class OutlineItem(_Strict):
    code: str
    name: str
    name_en: str
    points: float = Field(gt=0)


class OutlineElement(_Strict):
    code: str
    name: str
    name_en: str
    items: tuple[OutlineItem, ...] = Field(min_length=1)


OFFICIAL_TARGETS = "附件2"  # the plan's attachment 2; any other source is shown as 示例数值，非官方


class Targets(_Strict):
    """Where the districts' figures come from. The plan: 2022年底前，全市重点监管领域企业需全部开展创建工作；
    2023年底前，全市非重点监管领域的规模以上企业需全部开展创建工作（具体创建目标任务见附件2） — targets for
    firms *starting* the work, key-field and other (non-key above-size) firms. `source = "附件2"` only for the
    official figures; anything else (e.g. "stand-in") is a stand-in, shown as such."""

    kind: Literal["started"] = "started"
    source: str = Field(min_length=1, max_length=40)

    @property
    def official(self) -> bool:
        return self.source == OFFICIAL_TARGETS


class Campaign(_Strict):
    campaign: CampaignInfo
    phases: Phases
    milestones: tuple[Milestone, ...] = Field(min_length=1)
    thresholds: Thresholds
    review: ReviewRules
    districts: tuple[District, ...] = Field(min_length=1)
    targets: Targets | None = None  # None: no figures in the file (the dashboard says 目标未录入)
    sectors: tuple[Sector, ...] = Field(min_length=1)
    outline: tuple[OutlineElement, ...] = Field(min_length=1)
    deadlines: Deadlines
    supervision: Supervision
    dossier: DossierRules = DossierRules()
    certificates: CertificateRules = Field(default_factory=lambda: CertificateRules())

    @model_validator(mode="after")
    def _consistent(self) -> Campaign:
        for what, codes in (
            ("districts", [d.code for d in self.districts]),
            ("sectors", [s.code for s in self.sectors]),
            ("outline items", [i.code for i in self.outline_items]),
        ):
            dupes = sorted({c for c in codes if codes.count(c) > 1})
            if dupes:
                raise ValueError(f"{what}: duplicate code {', '.join(dupes)}")
        total = sum(i.points for i in self.outline_items)
        if abs(total - 100) > 1e-6:
            raise ValueError(f"outline: points add up to {total:g}, not 100")
        figures = [d.code for d in self.districts if (d.start_target_key_field, d.start_target_other) != (None, None)]
        if figures and self.targets is None:
            raise ValueError("districts carry start targets: say where they come from in [targets] source")
        if self.targets is not None and len(figures) != len(self.districts):
            missing = sorted({d.code for d in self.districts} - set(figures))
            raise ValueError(f"[targets]: districts without start targets: {', '.join(missing)}")
        return self

    @property
    def outline_items(self) -> list[OutlineItem]:
        return [item for element in self.outline for item in element.items]

    @cached_property
    def _district_index(self) -> dict[str, District]:
        index: dict[str, District] = {}
        for d in self.districts:
            for key in (d.code, d.name, d.name_en.lower(), *d.aliases):
                index[key] = d
        return index

    @cached_property
    def _sector_index(self) -> dict[str, Sector]:
        return {key: s for s in self.sectors for key in (s.code, s.name)}

    def district(self, name_or_code: str) -> District | None:
        key = name_or_code.strip()
        return self._district_index.get(key) or self._district_index.get(key.lower())

    def sector(self, name_or_code: str) -> Sector | None:
        key = name_or_code.strip()
        return self._sector_index.get(key) or self._sector_index.get(key.lower())

    @property
    def key_sectors(self) -> list[str]:
        return [s.code for s in self.sectors if s.key_field]


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_campaign(data: dict[str, object], *, source: str = "campaign") -> Campaign:
    try:
        return Campaign.model_validate(data)
    except ValidationError as exc:
        problems = [f"{_location(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise CampaignInvalid(f"{source}: " + "; ".join(problems)) from None


def load_campaign(path: Path) -> Campaign:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CampaignInvalid(f"{path}: campaign file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise CampaignInvalid(f"{path}: not valid TOML ({exc})") from None
    return parse_campaign(data, source=str(path))


def sync_districts(conn: sa.Connection, campaign: Campaign) -> None:
    """Make the districts table match the campaign file (insert new, rename changed)."""
    from workflow.models import District as DistrictRow

    table = DistrictRow.__table__  # type: ignore[attr-defined]
    existing = {row.code: row for row in conn.execute(sa.select(table))}
    for d in campaign.districts:
        row = existing.get(d.code)
        if row is None:
            conn.execute(sa.insert(table).values(code=d.code, name=d.name, name_en=d.name_en))
        elif (row.name, row.name_en) != (d.name, d.name_en):
            conn.execute(sa.update(table).where(table.c.code == d.code).values(name=d.name, name_en=d.name_en))


# ---- deadlines, escalation and graded supervision -----------------------------------------------


class Ladder(_Strict):
    """Days overdue at which each step of the escalation ladder is taken; a missing step is skipped.
    `holder` sends the case to the office that holds the subject that day (district bureau, support
    center or city bureau, as the rule says) instead of climbing; it stands alone."""

    firm: int | None = Field(default=None, ge=1)
    district: int | None = Field(default=None, ge=1)
    city: int | None = Field(default=None, ge=1)
    holder: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _climbs(self) -> Ladder:
        days = [d for d in (self.firm, self.district, self.city) if d is not None]
        if self.holder is not None and days:
            raise ValueError("holder stands alone: leave out firm, district and city")
        if not days and self.holder is None:
            raise ValueError("the ladder needs at least one step")
        if days != sorted(set(days)):
            raise ValueError("each step must come later than the one below it (firm < district < city)")
        return self

    def steps(self) -> list[tuple[str, int]]:
        """(step, days overdue) from the bottom of the ladder up."""
        pairs = (("holder", self.holder), ("firm", self.firm), ("district", self.district), ("city", self.city))
        return [(step, days) for step, days in pairs if days is not None]


class DeadlineRule(_Strict):
    enabled: bool = True
    ladder: Ladder | None = None  # None: reminders only, nobody is ever told the subject is overdue
    reminder_days: tuple[int, ...] = ()  # before the deadline, to the firm; empty for officials' duties

    @model_validator(mode="after")
    def _reminders(self) -> DeadlineRule:
        if any(d < 1 for d in self.reminder_days) or len(set(self.reminder_days)) != len(self.reminder_days):
            raise ValueError("reminder_days must be distinct whole days of at least 1")
        if self.ladder is None and not self.reminder_days:
            raise ValueError("a rule needs a ladder or reminder_days")
        return self

    def steps(self) -> list[tuple[str, int]]:
        return [] if self.ladder is None else self.ladder.steps()


class ServiceLevel(DeadlineRule):
    days: int = Field(ge=1)  # days an official has once the step became due


class DeadlineRules(_Strict):
    mobilization: DeadlineRule  # firms not notified when mobilization ends (listed to the district)
    milestones: DeadlineRule  # key-field / non-key above-size firms still `mobilized` after their milestone
    creation_end: DeadlineRule  # started firms not yet applied: reminded before creation ends, never overdue
    evaluation_end: DeadlineRule  # applications still open when evaluation ends: to the office holding them
    hazard_deadline: DeadlineRule  # each hazard's own deadline (五落实 时限)
    sla_verification: ServiceLevel  # district bureau verifies (核实) after submission
    sla_online_audit: ServiceLevel  # online audit (线上审核) after verification
    sla_review: ServiceLevel  # review score recorded after the audit passed
    sla_certification: ServiceLevel  # city bureau certifies after the review


class ReferralRules(_Strict):
    """When a key-field firm counts as having no hope of compliance (proposed by its district)."""

    non_participating_after_days: int = Field(ge=0)  # days past its milestone, still `mobilized`
    failed_reviews: int = Field(ge=1)  # reviews failed
    major_hazard_overdue_days: int = Field(ge=0)  # a major hazard open more than this many days past deadline


class Deadlines(_Strict):
    rules: DeadlineRules
    referral: ReferralRules


# A firm's grade comes from its own duties only (the plan: 把企业创建情况作为分级分类监管的重要依据), strictest
# first: confirmed as having no hope of compliance (referred), required to start and past its deadline
# without starting (non_participating: 对未开展达标创建的企业加大检查频率), not started but not (yet) required
# (not_started), started (on_track), certified (compliant), benchmark.
SupervisionGrade = Literal["referred", "non_participating", "not_started", "on_track", "compliant", "benchmark"]


class PenaltyBand(_Strict):
    """处罚尺度 for a grade: a band an inspector reads (从重 / 一般 / 从轻) and a factor on the discretionary range."""

    band: str = Field(min_length=1)
    band_en: str = Field(min_length=1)
    factor: float = Field(gt=0, le=2)


class Supervision(_Strict):
    """Graded supervision (分级分类监管): inspections a year and a penalty scale (处罚尺度) for each grade.
    The plan asks for both (有针对性地确定执法检查频次和处罚尺度) but sets no numbers: they are local settings
    (`source = "local"`) until official ones are entered. Inspections a year must divide 12 so they fall on
    whole months."""

    source: Literal["local", "official"] = "local"
    inspections_per_year: dict[SupervisionGrade, int]
    penalty_scale: dict[SupervisionGrade, PenaltyBand]

    @model_validator(mode="after")
    def _whole_months(self) -> Supervision:
        for name, table in (("inspections_per_year", self.inspections_per_year), ("penalty_scale", self.penalty_scale)):
            missing = sorted(set(SupervisionGrade.__args__) - set(table))  # type: ignore[attr-defined]
            if missing:
                raise ValueError(f"{name}: missing {', '.join(missing)}")
        for grade, n in self.inspections_per_year.items():
            if n not in (1, 2, 3, 4, 6, 12):
                raise ValueError(f"inspections_per_year.{grade}: {n} does not divide 12 (use 1, 2, 3, 4, 6 or 12)")
        return self

    @property
    def local(self) -> bool:
        return self.source == "local"

    def interval_months(self, grade: str) -> int:
        return 12 // self.inspections_per_year[grade]  # type: ignore[index]


class CertificateRules(_Strict):
    """Certificate numbers and validity: local settings (the plan gives neither)."""

    number_prefix: str = Field(default="CZDB", pattern=r"^[A-Z][A-Z0-9]{1,9}$")  # CZDB-2023-000123
    validity_years: int = Field(default=3, ge=1, le=10)


Campaign.model_rebuild()
