"""Who acts, and what each role may see: `Actor`, one scope predicate per kind of record (a SQL expression
for WHERE clauses) and `require`, the one check that a record is in an actor's scope.

The roles' scopes, from the plan (DESIGN.md, roles):
- city bureau (市应急管理局) and support center (市应急保障中心): every record;
- district bureau (辖市(区)应急管理局): the records of its own district only;
- enterprise: its own firm's records only;
- reviewer (评定人员库成员): the applications it is assigned to (active or done) and their evidence, and its
  own assignments — no firm list, no hazards;
- local government (属地政府): only referrals of its area that the city confirmed (将达标无望的重点监管领域
  企业名单按流程报送属地政府) and the firms named in them — nothing else of those firms.

A predicate says where a record may be seen; which role may *do* what with it is the role rule of each
service (NotAllowed), checked after or besides the scope (OutOfScope, which the front doors answer like
NotFound so a record outside the scope is never revealed)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from states import NotFound, OutOfScope, Role
from workflow.tables import (
    APPLICATIONS,
    CERTIFICATIONS,
    ENTERPRISES,
    ESCALATIONS,
    EVIDENCE_FILES,
    GUIDANCE_ASSIGNMENTS,
    HAZARDS,
    REFERRAL_SUGGESTIONS,
    REFERRALS,
    REVIEW_ASSIGNMENTS,
    REVIEW_DRAWS,
    REVIEWER_REPORTS,
    SELF_ASSESSMENTS,
)

# Referral statuses the local government sees: what the city confirmed (and it then acknowledged).
DELIVERED_REFERRALS = ("confirmed", "acknowledged")
# Assignments whose reviewer still reads the application (one who stepped aside or was removed does not).
READING_ASSIGNMENTS = ("active", "done")


@dataclass(frozen=True)
class Actor:
    """Who fires: a name for the audit log, a role, and the scope the role is held in."""

    name: str
    role: Role
    district_code: str | None = None  # district bureau, local government
    enterprise_id: int | None = None  # enterprise
    user_id: int | None = None

    @classmethod
    def administrator(cls, role: Role, firm: sa.Row[Any], name: str = "admin (command line)") -> Actor:
        """An administrator acting in `role` with the firm inside its scope (the command line)."""
        return cls(name=name, role=role, district_code=firm.district_code, enterprise_id=firm.id)


def _district(actor: Actor) -> str:
    return actor.district_code or ""


def _reads_application(actor: Actor, application_id: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """The reviewer is on the application's team and still reads it."""
    return (
        sa.select(REVIEW_ASSIGNMENTS.c.id)
        .where(
            REVIEW_ASSIGNMENTS.c.application_id == application_id,
            REVIEW_ASSIGNMENTS.c.reviewer_id == (actor.user_id or -1),
            REVIEW_ASSIGNMENTS.c.status.in_(READING_ASSIGNMENTS),
        )
        .exists()
    )


def _referred(actor: Actor, enterprise_id: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """The firm is named in a confirmed referral of the local government's area."""
    return (
        sa.select(REFERRALS.c.id)
        .where(
            REFERRALS.c.enterprise_id == enterprise_id,
            REFERRALS.c.district_code == _district(actor),
            REFERRALS.c.status.in_(DELIVERED_REFERRALS),
        )
        .exists()
    )


def firm_records(actor: Actor, enterprise_id: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """The records of a firm (hazards, applications, evidence, certificates, self-assessments …) the actor
    may see, as a WHERE clause on a column holding the firm's id. Not the local government's, nor a
    reviewer's (whose way in is the application it reviews)."""
    match actor.role:
        case Role.city_bureau | Role.support_center:
            return sa.true()
        case Role.district_bureau:
            return enterprise_id.in_(sa.select(ENTERPRISES.c.id).where(ENTERPRISES.c.district_code == _district(actor)))
        case Role.enterprise:
            return enterprise_id == (actor.enterprise_id or -1)
        case _:
            return sa.false()


def firm_scope(actor: Actor) -> sa.ColumnElement[bool]:
    """The firms an actor may see, as a WHERE clause on `enterprises`."""
    match actor.role:
        case Role.city_bureau | Role.support_center:
            return sa.true()
        case Role.district_bureau:
            return ENTERPRISES.c.district_code == _district(actor)
        case Role.enterprise:
            return ENTERPRISES.c.id == (actor.enterprise_id or -1)
        case Role.local_government:
            return _referred(actor, ENTERPRISES.c.id)
        case _:
            return sa.false()  # reviewers see applications assigned to them, not firms


def in_scope(actor: Actor, firm: Any) -> bool:
    """`firm_scope` judged on a firm row already loaded (the engine's hot path, no query): exact for every
    role but the local government, whose firms are named by referrals — it fires nothing and reads firms
    only through `require`/`firm_scope`, so here it sees none."""
    match actor.role:
        case Role.city_bureau | Role.support_center:
            return True
        case Role.district_bureau:
            return actor.district_code is not None and actor.district_code == firm.district_code
        case Role.enterprise:
            return actor.enterprise_id is not None and actor.enterprise_id == firm.id
        case _:
            return False


def application_scope(actor: Actor) -> sa.ColumnElement[bool]:
    """Applications: those of the firms in scope; for a reviewer, those it is assigned to."""
    if actor.role is Role.reviewer:
        return _reads_application(actor, APPLICATIONS.c.id)
    return firm_records(actor, APPLICATIONS.c.enterprise_id)


def evidence_scope(actor: Actor) -> sa.ColumnElement[bool]:
    """Evidence files: those of the firms in scope; for a reviewer, those of a firm whose application it reads."""
    if actor.role is Role.reviewer:
        return (
            sa.select(APPLICATIONS.c.id)
            .where(
                APPLICATIONS.c.enterprise_id == EVIDENCE_FILES.c.enterprise_id,
                _reads_application(actor, APPLICATIONS.c.id),
            )
            .exists()
        )
    return firm_records(actor, EVIDENCE_FILES.c.enterprise_id)


def _district_records(actor: Actor, district_code: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """Office records kept per district (escalations, suggestions, reports, guidance): the city and the
    center see all, a district bureau its own, nobody else any."""
    match actor.role:
        case Role.city_bureau | Role.support_center:
            return sa.true()
        case Role.district_bureau:
            return district_code == _district(actor)
        case _:
            return sa.false()


def referral_scope(actor: Actor) -> sa.ColumnElement[bool]:
    """Referrals: the offices as for district records; the local government the confirmed ones of its area."""
    if actor.role is Role.local_government:
        return sa.and_(REFERRALS.c.district_code == _district(actor), REFERRALS.c.status.in_(DELIVERED_REFERRALS))
    return _district_records(actor, REFERRALS.c.district_code)


def review_assignment_scope(actor: Actor) -> sa.ColumnElement[bool]:
    """Review assignments: a reviewer its own; the offices those of applications of their firms."""
    if actor.role is Role.reviewer:
        return REVIEW_ASSIGNMENTS.c.reviewer_id == (actor.user_id or -1)
    if actor.role is Role.enterprise:
        return sa.false()  # who reviews a firm is not the firm's to know before the review
    return (
        sa.select(APPLICATIONS.c.id)
        .where(
            APPLICATIONS.c.id == REVIEW_ASSIGNMENTS.c.application_id,
            firm_records(actor, APPLICATIONS.c.enterprise_id),
        )
        .exists()
    )


def review_draw_scope(actor: Actor) -> sa.ColumnElement[bool]:
    """Review draws (the server's random draws of a team): the offices of the firm's scope, and the members
    of the team (who may check the draw that chose them)."""
    if actor.role is Role.reviewer:
        return _reads_application(actor, REVIEW_DRAWS.c.application_id)
    if actor.role in (Role.enterprise, Role.local_government):
        return sa.false()
    return (
        sa.select(APPLICATIONS.c.id)
        .where(
            APPLICATIONS.c.id == REVIEW_DRAWS.c.application_id,
            firm_records(actor, APPLICATIONS.c.enterprise_id),
        )
        .exists()
    )


def guidance_scope(actor: Actor) -> sa.ColumnElement[bool]:
    """Guidance of benchmark candidates: the city bureau all, a district bureau its own (the center runs no
    guidance register)."""
    if actor.role is Role.support_center:
        return sa.false()
    return _district_records(actor, GUIDANCE_ASSIGNMENTS.c.district_code)


# One predicate per kind of record, and the table it is judged on.
SCOPES: dict[str, tuple[sa.Table, Callable[[Actor], sa.ColumnElement[bool]]]] = {
    "firm": (ENTERPRISES, firm_scope),
    "application": (APPLICATIONS, application_scope),
    "hazard": (HAZARDS, lambda a: firm_records(a, HAZARDS.c.enterprise_id)),
    "self_assessment": (SELF_ASSESSMENTS, lambda a: firm_records(a, SELF_ASSESSMENTS.c.enterprise_id)),
    "evidence": (EVIDENCE_FILES, evidence_scope),
    "certification": (CERTIFICATIONS, lambda a: firm_records(a, CERTIFICATIONS.c.enterprise_id)),
    "escalation": (ESCALATIONS, lambda a: _district_records(a, ESCALATIONS.c.district_code)),
    "referral": (REFERRALS, referral_scope),
    "referral_suggestion": (REFERRAL_SUGGESTIONS, lambda a: _district_records(a, REFERRAL_SUGGESTIONS.c.district_code)),
    "review_assignment": (REVIEW_ASSIGNMENTS, review_assignment_scope),
    "review_draw": (REVIEW_DRAWS, review_draw_scope),
    "reviewer_report": (REVIEWER_REPORTS, lambda a: _district_records(a, REVIEWER_REPORTS.c.district_code)),
    "guidance": (GUIDANCE_ASSIGNMENTS, guidance_scope),
}

_WORDS = {
    "firm": ("企业", "enterprise"),
    "application": ("申请", "application"),
    "hazard": ("隐患", "hazard"),
    "self_assessment": ("自评", "self-assessment"),
    "evidence": ("材料", "evidence"),
    "certification": ("认定", "certification"),
    "escalation": ("督办事项", "escalation"),
    "referral": ("移交记录", "referral"),
    "referral_suggestion": ("移交建议", "referral suggestion"),
    "review_assignment": ("评审任务", "review assignment"),
    "review_draw": ("抽取记录", "review draw"),
    "reviewer_report": ("违规报告", "misconduct report"),
    "guidance": ("帮扶记录", "guidance assignment"),
}


def scope(actor: Actor, kind: str) -> sa.ColumnElement[bool]:
    """The WHERE clause of the records of `kind` the actor may see."""
    return SCOPES[kind][1](actor)


def visible(conn: sa.Connection, actor: Actor, kind: str, record_id: int) -> bool:
    table, predicate = SCOPES[kind]
    key = table.c.id
    return conn.execute(sa.select(key).where(key == record_id, predicate(actor))).first() is not None


def require(conn: sa.Connection, actor: Actor, kind: str, record_id: int) -> sa.Row[Any]:
    """The record of `kind` with this id, if the actor may see it: NotFound when there is none, OutOfScope
    (answered like NotFound) when it lies outside the actor's scope."""
    table, predicate = SCOPES[kind]
    zh, en = _WORDS[kind]
    row = conn.execute(sa.select(table).where(table.c.id == record_id)).first()
    if row is None:
        raise NotFound(f"找不到该{zh} / no such {en}: {record_id}")
    if conn.execute(sa.select(table.c.id).where(table.c.id == record_id, predicate(actor))).first() is None:
        raise OutOfScope(f"找不到该{zh} / no such {en}: {record_id}")
    return row


def auditable_by(actor: Actor) -> sa.ColumnElement[bool]:
    """Which firms' audits and reviews this official runs (a WHERE clause on `enterprises`): key fields the
    support center (重点监管领域企业…市应急保障中心线上审核), the rest the district bureau."""
    match actor.role:
        case Role.support_center:
            return ENTERPRISES.c.key_field.is_(True)
        case Role.district_bureau:
            return sa.and_(ENTERPRISES.c.key_field.is_(False), ENTERPRISES.c.district_code == _district(actor))
        case _:
            return sa.false()


def require_firm(conn: sa.Connection, actor: Actor, firm: Any) -> Any:
    """The firm row already loaded, if the actor may see it (OutOfScope otherwise): judged on the row, and
    for the local government on its referrals."""
    if in_scope(actor, firm):
        return firm
    if actor.role is Role.local_government and visible(conn, actor, "firm", firm.id):
        return firm
    raise OutOfScope(f"找不到该企业 / no such enterprise: {firm.id}")


def district_in_scope(actor: Actor, district_code: str) -> bool:
    """Whether the actor may look at a whole district (its dashboard, its inspection plan): the city and the
    center any, a district bureau and a local government their own."""
    match actor.role:
        case Role.city_bureau | Role.support_center:
            return True
        case Role.district_bureau | Role.local_government:
            return actor.district_code is not None and actor.district_code == district_code
        case _:
            return False


def require_firm_records(actor: Actor, firm: Any) -> Any:
    """The firm row already loaded, if the actor may see its records (hazards, applications, evidence …):
    OutOfScope otherwise (`firm_records`; the local government sees none)."""
    if not in_scope(actor, firm):
        raise OutOfScope(f"找不到该企业 / no such enterprise: {firm.id}")
    return firm
