"""Small factory helpers: firms, actors and a firm taken along the path, built through the engine."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import random
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from states import Role
from workflow import uscc
from workflow.accounts import NewUser, actor_of, create_user
from workflow.actors import Actor
from workflow.campaign import Campaign
from workflow.clock import FixedClock
from workflow.context import Context
from workflow.engine import FireResult, fire, load_firm
from workflow.evidence import store_evidence
from workflow.pool import form_team, record_reviewer_score, record_team_result
from workflow.records import FiveImplementations, record_self_assessment, rectify_hazard, report_hazard
from workflow.tables import ENTERPRISES, USERS

_counter = itertools.count(1)
IN_EVALUATION = dt.date(2022, 7, 1)
# a small valid PDF, as the uploads of a test firm's dossier and rectifications
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
EVIDENCE_DIR = Path(tempfile.mkdtemp(prefix="dabiao-factories-"))
# what a district writes when it verifies an application (核实意见)
OPINION = {"opinion": "材料齐全，与企业实际相符", "checklist": ["self_assessment_report", "application_form"]}


def upload(
    engine: sa.Engine,
    firm_id: int,
    kind: str,
    *,
    hazard_id: int | None = None,
    name: str | None = None,
    at: FixedClock | None = None,
    data_dir: Path = EVIDENCE_DIR,
) -> dict[str, Any]:
    """A file the firm uploads through the service (a PDF unique to the call)."""
    body = PDF + f"% {kind} {firm_id} {hazard_id} {next(_counter)}\n".encode()
    with Session(engine) as session:
        return store_evidence(
            session,
            enterprise_id=firm_id,
            kind=kind,
            filename=name or f"{kind}.pdf",
            stream=io.BytesIO(body),
            actor=actor_for(engine, Role.enterprise, firm_id),
            data_dir=data_dir,
            max_bytes=10 * 1024 * 1024,
            clock=at or clock(),
            hazard_id=hazard_id,
        )


def dossier(engine: sa.Engine, firm_id: int, *, at: FixedClock | None = None, data_dir: Path = EVIDENCE_DIR) -> None:
    """The files an application needs: a self-assessment report and an application form."""
    upload(engine, firm_id, "self_assessment_report", name="自评报告.pdf", at=at, data_dir=data_dir)
    upload(engine, firm_id, "application_form", name="申请表.pdf", at=at, data_dir=data_dir)


def rectify(
    engine: sa.Engine, firm_id: int, hazard_id: int, *, at: FixedClock | None = None, data_dir: Path = EVIDENCE_DIR
) -> str:
    """The firm uploads a rectification file for the hazard and rectifies it with that file."""
    evidence = upload(
        engine, firm_id, "rectification", hazard_id=hazard_id, name="整改照片.pdf", at=at, data_dir=data_dir
    )
    with Session(engine) as session:
        return rectify_hazard(
            session,
            hazard_id=hazard_id,
            evidence_id=evidence["id"],
            actor=actor_for(engine, Role.enterprise, firm_id),
            clock=at or clock(),
        )


def make_firm(
    engine: sa.Engine,
    *,
    district: str = "320412",
    key_field: bool = False,
    above_size: bool = True,
    name: str | None = None,
    email: str | None = "safety@example.com",
    at: dt.datetime | None = None,
) -> int:
    n = next(_counter)
    at = at or dt.datetime(2022, 1, 10, tzinfo=dt.UTC)
    code = uscc.make(random.Random(n * 7919), division=district)
    with engine.begin() as conn:
        result = conn.execute(
            sa.insert(ENTERPRISES).values(
                uscc=code,
                name=name or f"常州测试{n}机械有限公司",
                district_code=district,
                sector="chemical" if key_field else "machinery",
                key_field=key_field,
                above_size=above_size,
                principal="张三",
                phone="13900000000",
                email=email,
                state="mobilized",
                version=1,
                state_since=at,
                created_at=at,
                updated_at=at,
            )
        )
        assert result.inserted_primary_key is not None
        return int(result.inserted_primary_key[0])


def actor_for(engine: sa.Engine, role: Role, firm_id: int) -> Actor:
    with engine.connect() as conn:
        firm = load_firm(conn, enterprise_id=firm_id)
    return Actor(name=f"test {role.value}", role=role, district_code=firm.district_code, enterprise_id=firm.id)


def clock(day: dt.date = IN_EVALUATION) -> FixedClock:
    return FixedClock.on(day)


def full_scores(campaign: Campaign, fraction: float = 0.8) -> dict[str, float]:
    return {item.code: round(item.points * fraction, 2) for item in campaign.outline_items}


def sheet_for(campaign: Campaign, total: float, on_site: float | None = None) -> dict[str, dict[str, float]]:
    """A scoring sheet whose online part adds up to exactly `total` (and the on-site part to `on_site`, by
    default the same): each outline element gets its share, in steps the campaign's decimals allow."""
    step = 10**campaign.review.score_decimals
    elements = [(e.code, round(sum(i.points for i in e.items) * step)) for e in campaign.outline]

    def spread(value: float) -> dict[str, float]:
        units, full = round(value * step), sum(points for _, points in elements)
        assert 0 <= units <= full, value
        shares = {code: points * units // full for code, points in elements}
        left = units - sum(shares.values())
        for code, points in elements:  # the rest, one unit at a time, where there is room
            while left and shares[code] < points:
                shares[code] += 1
                left -= 1
        return {code: shares[code] / step for code, _ in elements}

    online, site = spread(total), spread(total if on_site is None else on_site)
    return {code: {"online": online[code], "on_site": site[code]} for code, _ in elements}


POOL_SIZE = 5


def pool_reviewers(engine: sa.Engine, count: int = POOL_SIZE) -> list[Actor]:
    """Trained reviewers in the evaluator pool (created once per database)."""
    out = []
    for n in range(1, count + 1):
        username = f"pool_expert{n}"
        with engine.connect() as conn:
            user_id = conn.execute(sa.select(USERS.c.id).where(USERS.c.username == username)).scalar()
        if user_id is None:
            with Session(engine) as session:
                user_id = create_user(
                    session,
                    new=NewUser(
                        username=username,
                        password="correct horse battery",
                        role=Role.reviewer,
                        display_name=f"评定专家{n}",
                        organisation="常州安全评价中心",
                        trained_on=dt.date(2022, 3, 1),
                        email=f"{username}@example.com",
                    ),
                    clock=clock(),
                )
        out.append(Actor(name=username, role=Role.reviewer, user_id=int(user_id)))
    return out


def application_of(engine: sa.Engine, firm_id: int) -> int:
    from workflow.tables import APPLICATIONS

    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.max(APPLICATIONS.c.id)).where(APPLICATIONS.c.enterprise_id == firm_id)
            ).scalar_one()
        )


def complete_five() -> FiveImplementations:
    return FiveImplementations("李四", "更换防爆电机", 5000.0, dt.date(2022, 8, 1), "车间应急预案")


class Driver:
    """Fires triggers on one firm as the right role, as a test would click through the path."""

    def __init__(self, engine: sa.Engine, campaign: Campaign, firm_id: int, day: dt.date = IN_EVALUATION) -> None:
        self.engine, self.campaign, self.firm_id, self.clock = engine, campaign, firm_id, clock(day)

    def fire(self, trigger: str, role: Role, payload: dict[str, Any] | None = None, **kw: Any) -> FireResult:
        with Session(self.engine) as session:
            return fire(
                session,
                enterprise_id=self.firm_id,
                trigger=trigger,
                actor=actor_for(self.engine, role, self.firm_id),
                context=Context(self.campaign, self.clock),
                payload=payload,
                **kw,
            )

    def self_assess(self, fraction: float = 0.8) -> float:
        with Session(self.engine) as session:
            _, total = record_self_assessment(
                session,
                enterprise_id=self.firm_id,
                scores=full_scores(self.campaign, fraction),
                actor=actor_for(self.engine, Role.enterprise, self.firm_id),
                context=Context(self.campaign, self.clock),
            )
        return total

    def hazard(self, five: FiveImplementations | None = None, severity: str = "general") -> int:
        with Session(self.engine) as session:
            return report_hazard(
                session,
                enterprise_id=self.firm_id,
                description="反应釜区域可燃气体报警器失效",
                implementations=five or complete_five(),
                actor=actor_for(self.engine, Role.enterprise, self.firm_id),
                severity=severity,
                clock=self.clock,
                campaign=self.campaign,
            )

    def dossier(self) -> None:
        dossier(self.engine, self.firm_id, at=self.clock)

    def rectify(self, hazard_id: int) -> str:
        return rectify(self.engine, self.firm_id, hazard_id, at=self.clock)

    def state(self) -> str:
        with self.engine.connect() as conn:
            return str(load_firm(conn, enterprise_id=self.firm_id).state)

    def to_applied(self) -> None:
        self.fire("notify", Role.district_bureau)
        self.fire("start_self_assessment", Role.enterprise)
        self.self_assess()
        self.dossier()
        self.fire("submit_application", Role.enterprise)

    def auditor(self) -> Role:
        with self.engine.connect() as conn:
            key = load_firm(conn, enterprise_id=self.firm_id).key_field
        return Role.support_center if key else Role.district_bureau

    def review(self, score: float, findings: list[dict[str, Any]] | None = None) -> FireResult:
        """The review team's result, the only way to `reviewed`: the server draws the team, every member
        scores a sheet adding up to `score` (online and on site), the organiser records the team's result."""
        application = application_of(self.engine, self.firm_id)
        pool_reviewers(self.engine)  # at least these; the draw takes from everyone eligible
        with self.engine.connect() as conn:
            members = {int(u.id): actor_of(u) for u in conn.execute(sa.select(USERS).where(USERS.c.role == "reviewer"))}
        organiser = actor_for(self.engine, self.auditor(), self.firm_id)
        with Session(self.engine) as session:
            team = form_team(
                session, application_id=application, actor=organiser, context=Context(self.campaign, self.clock)
            )
        for n, reviewer in enumerate(team["reviewer_ids"]):
            with Session(self.engine) as session:
                record_reviewer_score(
                    session,
                    application_id=application,
                    actor=members[reviewer],
                    sheet=sheet_for(self.campaign, score),
                    findings=(findings or []) if n == 0 else [],
                    context=Context(self.campaign, self.clock),
                )
        with Session(self.engine) as session:
            return record_team_result(
                session, application_id=application, actor=organiser, context=Context(self.campaign, self.clock)
            )

    def to_reviewed(self, score: float) -> None:
        self.to_applied()
        self.fire("verify", Role.district_bureau, OPINION)
        self.fire("pass_audit", self.auditor())
        self.review(score)
