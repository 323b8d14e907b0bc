"""Training sessions and briefings of the district bureaus (通过专项培训、企业宣讲，提升企业自主创建能力): date,
topic, the firms that attended and how many of their people; what a firm attended; and, per district, the
trained firms against its directory with a simple comparison of when trained and untrained firms started."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from states import InvalidInput, NotAllowed, NotFound, OutOfScope, Role
from workflow.actors import Actor, in_scope
from workflow.campaign import Campaign
from workflow.clock import Clock, today
from workflow.db import write_unit
from workflow.engine import load_firm, record_event
from workflow.tables import ENTERPRISES, TRAINING_ATTENDANCES, TRAININGS

KIND_LABELS: dict[str, tuple[str, str]] = {
    "training": ("专项培训", "training session"),
    "briefing": ("企业宣讲", "briefing"),
}
KINDS = tuple(KIND_LABELS)
RECORDERS = (Role.district_bureau,)
MAX_FIRMS = 2000


def record_training(
    session: Session,
    *,
    kind: str,
    held_on: dt.date,
    topic: str,
    attendees: Mapping[int, int],
    actor: Actor,
    campaign: Campaign,
    clock: Clock,
) -> dict[str, Any]:
    """A district bureau records a training session or briefing with the firms of its district that attended
    (firm id → people); each attendance is an event in that firm's chain."""
    if actor.role not in RECORDERS or not actor.district_code:
        raise NotAllowed("培训与宣讲由辖区应急管理部门记录 / district bureaus record training sessions and briefings")
    if kind not in KINDS:
        raise InvalidInput(
            f"类别须为 training（专项培训）或 briefing（企业宣讲） / kind must be one of {', '.join(KINDS)}"
        )
    text = (topic or "").strip()
    if not text:
        raise InvalidInput("请填写培训主题 / the session needs a topic")
    if len(text) > 200:
        raise InvalidInput("培训主题超过200字 / the topic is longer than 200 characters")
    day = today(clock)
    began = campaign.phases.mobilization.start
    if not began <= held_on <= day:
        raise InvalidInput(
            f"日期 {held_on} 须在 {began} 至今天 {day} 之间 / "
            f"the date {held_on} must be between {began} and today {day}"
        )
    if not attendees:
        raise InvalidInput("请至少选择一家参加的企业 / name at least one firm that attended")
    if len(attendees) > MAX_FIRMS:
        raise InvalidInput(f"一次最多记录 {MAX_FIRMS} 家企业 / at most {MAX_FIRMS} firms per session")
    for firm_id, people in attendees.items():
        if isinstance(people, bool) or not isinstance(people, int) or not 1 <= people <= 1000:
            raise InvalidInput(
                f"企业 {firm_id} 的参加人数须为 1 至 1000 / firm {firm_id}: people must be between 1 and 1000"
            )
    with write_unit(session) as conn:
        firms = {
            r.id: r
            for r in conn.execute(
                sa.select(ENTERPRISES.c.id, ENTERPRISES.c.name, ENTERPRISES.c.district_code).where(
                    ENTERPRISES.c.id.in_(list(attendees))
                )
            )
        }
        outside = [str(f) for f in attendees if f not in firms or firms[f].district_code != actor.district_code]
        if outside:
            raise NotFound(
                f"本辖区没有这些企业：{'、'.join(outside)} / no such firms in this district: {', '.join(outside)}"
            )
        now = clock.now()
        inserted = conn.execute(
            sa.insert(TRAININGS).values(
                district_code=actor.district_code,
                kind=kind,
                held_on=held_on,
                topic=text,
                recorded_by=actor.name,
                recorded_at=now,
            )
        )
        assert inserted.inserted_primary_key is not None
        training_id = int(inserted.inserted_primary_key[0])
        conn.execute(
            sa.insert(TRAINING_ATTENDANCES),
            [{"training_id": training_id, "enterprise_id": f, "people": p} for f, p in sorted(attendees.items())],
        )
        for firm_id, people in sorted(attendees.items()):
            record_event(
                conn,
                enterprise_id=firm_id,
                kind=f"{kind}_attended",
                actor=actor,
                at=now,
                payload={
                    "training_id": training_id,
                    "kind": kind,
                    "held_on": held_on.isoformat(),
                    "topic": text,
                    "people": people,
                },
            )
    return {
        "id": training_id,
        "kind": kind,
        "held_on": held_on,
        "topic": text,
        "firms": len(attendees),
        "people": sum(attendees.values()),
    }


def attendees_from_lines(conn: sa.Connection, *, lines: list[str], actor: Actor) -> dict[int, int]:
    """Firms typed one a line as a credit code (统一社会信用代码), optionally followed by `:people` (1 if not);
    refuses, by name, codes that are not firms of the actor's district."""
    wanted: dict[str, int] = {}
    for line in lines:
        code, _, people = line.replace("：", ":").partition(":")
        code = code.strip().upper()
        if not code:
            continue
        count = people.strip()
        if count and not count.isdigit():
            raise InvalidInput(f"“{line}”的人数须为数字 / “{line}”: people must be a number")
        wanted[code] = wanted.get(code, 0) + (int(count) if count else 1)
    if not wanted:
        raise InvalidInput("请至少填写一家参加的企业 / name at least one firm that attended")
    found = {
        r.uscc: r
        for r in conn.execute(
            sa.select(ENTERPRISES.c.id, ENTERPRISES.c.uscc, ENTERPRISES.c.district_code).where(
                ENTERPRISES.c.uscc.in_(list(wanted))
            )
        )
    }
    unknown = [c for c in wanted if c not in found or found[c].district_code != actor.district_code]
    if unknown:
        raise InvalidInput(
            f"本辖区没有这些企业：{'、'.join(unknown)} / no such firms in this district: {', '.join(unknown)}"
        )
    return {found[c].id: n for c, n in wanted.items()}


def trainings_of(conn: sa.Connection, *, enterprise_id: int, actor: Actor) -> list[dict[str, Any]]:
    """The sessions and briefings a firm attended, newest first."""
    firm = load_firm(conn, enterprise_id=enterprise_id)
    if not in_scope(actor, firm):
        raise OutOfScope(f"找不到该企业 / no such enterprise: {enterprise_id}")
    rows = conn.execute(
        sa.select(TRAININGS, TRAINING_ATTENDANCES.c.people)
        .join(TRAINING_ATTENDANCES, TRAINING_ATTENDANCES.c.training_id == TRAININGS.c.id)
        .where(TRAINING_ATTENDANCES.c.enterprise_id == enterprise_id)
        .order_by(TRAININGS.c.held_on.desc(), TRAININGS.c.id.desc())
    )
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "kind_label": KIND_LABELS[r.kind][0],
            "kind_label_en": KIND_LABELS[r.kind][1],
            "held_on": r.held_on,
            "topic": r.topic,
            "people": r.people,
        }
        for r in rows
    ]


def _scope_district(actor: Actor, district: str | None) -> str | None:
    if actor.role is Role.district_bureau:
        if district is not None and district != actor.district_code:
            raise OutOfScope(f"找不到该辖区 / no such district: {district}")
        return actor.district_code
    if actor.role not in (Role.city_bureau, Role.support_center):
        raise NotAllowed("培训记录由应急管理部门查看 / training records are for the bureaus")
    return district


def list_trainings(conn: sa.Connection, *, actor: Actor, district: str | None = None) -> list[dict[str, Any]]:
    """The sessions of a district (its bureau) or of the city, newest first, with firms and people."""
    code = _scope_district(actor, district)
    firms = sa.func.count(TRAINING_ATTENDANCES.c.enterprise_id)
    people = sa.func.coalesce(sa.func.sum(TRAINING_ATTENDANCES.c.people), 0)
    query = (
        sa.select(TRAININGS, firms.label("firms"), people.label("people"))
        .join(TRAINING_ATTENDANCES, TRAINING_ATTENDANCES.c.training_id == TRAININGS.c.id)
        .group_by(*TRAININGS.c)
        .order_by(TRAININGS.c.held_on.desc(), TRAININGS.c.id.desc())
    )
    if code:
        query = query.where(TRAININGS.c.district_code == code)
    return [
        {
            "id": r.id,
            "district_code": r.district_code,
            "kind": r.kind,
            "kind_label": KIND_LABELS[r.kind][0],
            "kind_label_en": KIND_LABELS[r.kind][1],
            "held_on": r.held_on,
            "topic": r.topic,
            "firms": int(r.firms),
            "people": int(r.people),
            "recorded_by": r.recorded_by,
        }
        for r in conn.execute(query)
    ]


@dataclass(frozen=True)
class StartGroup:
    """Firms of one group (trained or not): how many, how many have started, and their mean start day."""

    firms: int
    started: int
    mean_start: dt.date | None

    @property
    def share_started(self) -> float | None:
        return self.started / self.firms if self.firms else None


@dataclass(frozen=True)
class TrainingReach:
    directory: int  # open firms of the district (or city)
    trained: int  # of them, firms that attended at least one session or briefing
    sessions: int
    people: int
    trained_group: StartGroup
    untrained_group: StartGroup

    @property
    def share(self) -> float | None:
        return self.trained / self.directory if self.directory else None

    @property
    def earlier_by_days(self) -> int | None:
        """How many days earlier, on average, trained firms started than the others (negative: later)."""
        a, b = self.trained_group.mean_start, self.untrained_group.mean_start
        return (b - a).days if a and b else None


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value).date()
    assert isinstance(value, dt.date)
    return value


def training_reach(conn: sa.Connection, *, actor: Actor, district: str | None = None) -> TrainingReach:
    """Trained firms against the directory, and whether trained firms started earlier: the share of each group
    that has left `mobilized` and the mean day it did (a simple comparison, not a causal claim)."""
    code = _scope_district(actor, district)
    E = ENTERPRISES
    trained = sa.exists(sa.select(1).where(TRAINING_ATTENDANCES.c.enterprise_id == E.c.id))
    where: list[sa.ColumnElement[bool]] = [E.c.state != "closed"]
    if code:
        where.append(E.c.district_code == code)
    groups: dict[bool, StartGroup] = {}
    for flag in (True, False):
        cond = trained if flag else ~trained
        firms = int(conn.execute(sa.select(sa.func.count()).where(*where, cond)).scalar_one())
        starts = [
            _as_date(v)
            for v in conn.execute(
                sa.select(E.c.left_mobilized_at).where(*where, cond, E.c.left_mobilized_at.is_not(None))
            ).scalars()
        ]
        mean = None
        if starts:
            base = min(starts)
            mean = base + dt.timedelta(days=round(sum((d - base).days for d in starts) / len(starts)))
        groups[flag] = StartGroup(firms=firms, started=len(starts), mean_start=mean)
    session_query = sa.select(sa.func.count()).select_from(TRAININGS)
    people_query = sa.select(sa.func.coalesce(sa.func.sum(TRAINING_ATTENDANCES.c.people), 0)).join(
        TRAININGS, TRAININGS.c.id == TRAINING_ATTENDANCES.c.training_id
    )
    if code:
        session_query = session_query.where(TRAININGS.c.district_code == code)
        people_query = people_query.where(TRAININGS.c.district_code == code)
    return TrainingReach(
        directory=groups[True].firms + groups[False].firms,
        trained=groups[True].firms,
        sessions=int(conn.execute(session_query).scalar_one()),
        people=int(conn.execute(people_query).scalar_one()),
        trained_group=groups[True],
        untrained_group=groups[False],
    )
