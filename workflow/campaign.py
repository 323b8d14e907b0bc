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


class ReviewRules(_Strict):
    team_size: int = Field(ge=1, le=15)
    team_score: Literal["mean", "median"] = "mean"
    online_weight: float = Field(ge=0, le=1)


class District(_Strict):
    code: str = Field(pattern=r"^\d{6}$")
    name: str
    name_en: str
    aliases: tuple[str, ...] = ()
    weight: float = Field(gt=0)
    target_key_field: int = Field(ge=0)
    target_other: int = Field(ge=0)
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


class Campaign(_Strict):
    campaign: CampaignInfo
    phases: Phases
    milestones: tuple[Milestone, ...] = Field(min_length=1)
    thresholds: Thresholds
    review: ReviewRules
    districts: tuple[District, ...] = Field(min_length=1)
    sectors: tuple[Sector, ...] = Field(min_length=1)
    outline: tuple[OutlineElement, ...] = Field(min_length=1)

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
