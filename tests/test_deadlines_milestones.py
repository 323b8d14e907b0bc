"""Every deadline rule over firms of every kind × every state × the days around every milestone of the plan:
who hears what. The expected answers are the table below, written from the plan (and, for the numbers the
plan does not give — reminder days and ladder days — from the local settings it names), never read from
the campaign file.

Each checkpoint is one first (full) sweep on a database holding one firm per (kind, state): a full sweep
writes every escalation step reached so far and the one reminder the firm is nearest to, so the answer for a
day does not depend on the days before it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from notifications.render import Renderer
from tests.deadline_helpers import forget_sweeps, sweep_on
from tests.factories import make_firm
from workflow.campaign import Campaign
from workflow.tables import APPLICATIONS, ENTERPRISES, ESCALATIONS, OUTBOX

D = dt.date

# ---- the plan -------------------------------------------------------------------------------------
MOBILIZATION_END = D(2022, 2, 28)  # 动员部署阶段(2022年2月底前)
KEY_FIELD_START = D(2022, 12, 31)  # 2022年底前，全市重点监管领域企业需全部开展创建工作
ABOVE_SIZE_START = D(2023, 12, 31)  # 2023年底前，全市非重点监管领域的规模以上企业需全部开展创建工作
CREATION_END = D(2023, 10, 31)  # 创建提升阶段(2022年3月至2023年10月)
EVALUATION_END = D(2023, 12, 31)  # 考评验收阶段(2022年6月至2023年12月)

# ---- local settings (the plan gives no numbers) ---------------------------------------------------
REMIND_WITHIN = 30  # the earliest reminder, days before a firm's own date (then 7 and 1)
FIRM_LADDER = {"firm": 1, "district": 8, "city": 31}  # days overdue: the firm's own start duty
MOBILIZATION_LADDER = {"district": 1, "city": 15}  # a firm not notified when mobilization ends

# The officials' time limits (`sla_*`): the applications below were handed in, verified, audited or
# reviewed long before every checkpoint, so each limit has climbed its whole ladder — to officials only.
LONG_AGO = dt.datetime(2021, 12, 1, 4, tzinfo=dt.UTC)
SLA_STEPS = {
    "applied": ("sla_verification", ("district", "city")),
    "verified": ("sla_online_audit", ("district", "city")),
    "audited": ("sla_review", ("district", "city")),
    "reviewed": ("sla_certification", ("city",)),
}

KINDS = {  # kind: (key_field, above_size)
    "key": (True, True),
    "above": (False, True),
    "small": (False, False),
}
STATES = (
    "unnotified",
    "mobilized",
    "self_assessing",
    "rectifying",
    "applied",
    "verified",
    "audited",
    "reviewed",
    "certified",
    "closed",
)
# The office holding an open application when evaluation ends (属地核实; 重点监管领域…市应急保障中心…线上审核…
# 组织评审组; 非重点监管领域企业由辖市(区)应急管理部门…组织评审组; 市应急管理局…确定达标企业名单).
HOLDER = {
    ("key", "applied"): "district",
    ("above", "applied"): "district",
    ("small", "applied"): "district",
    ("key", "verified"): "center",
    ("above", "verified"): "district",
    ("small", "verified"): "district",
    ("key", "audited"): "center",
    ("above", "audited"): "district",
    ("small", "audited"): "district",
    ("key", "reviewed"): "city",
    ("above", "reviewed"): "city",
    ("small", "reviewed"): "city",
}


@dataclass(frozen=True)
class Duty:
    rule: str
    day: dt.date
    reminder: str | None  # the mail kind that reminds the firm before the day, if any
    ladder: dict[str, int]  # days overdue → step; a "firm" step also mails the firm an overdue notice


def duties(kind: str, state: str) -> list[Duty]:
    """What the plan makes each firm (or the office holding it) owe, by kind and state."""
    out: list[Duty] = []
    if state == "closed":
        return out
    if state == "unnotified":  # 对照工业企业名录清单对企业主要负责人逐个通知: every firm of the directory
        out.append(Duty("mobilization", MOBILIZATION_END, None, MOBILIZATION_LADDER))
    if state in ("unnotified", "mobilized"):  # has not started: only key-field and non-key above-size must
        if kind == "key":
            out.append(Duty("key_field_started", KEY_FIELD_START, "deadline_reminder", FIRM_LADDER))
        elif kind == "above":
            out.append(Duty("above_size_started", ABOVE_SIZE_START, "deadline_reminder", FIRM_LADDER))
    if state in ("self_assessing", "rectifying"):  # 自愿申请、诚信上报: a nudge, never overdue
        out.append(Duty("creation_end", CREATION_END, "creation_reminder", {}))
    if (kind, state) in HOLDER:
        out.append(Duty("evaluation_end", EVALUATION_END, None, {HOLDER[kind, state]: 1}))
    return out


Heard = frozenset[tuple[str, ...]]


def expected(kind: str, state: str, day: dt.date) -> Heard:
    heard: set[tuple[str, ...]] = set()
    for duty in duties(kind, state):
        left = (duty.day - day).days
        if duty.reminder and 0 <= left <= REMIND_WITHIN:
            heard.add(("mail", duty.reminder, "enterprise"))
        for step, after in duty.ladder.items():
            if -left >= after:
                heard.add(("escalation", duty.rule, step))
                if step == "firm":
                    heard.add(("mail", "deadline_overdue", "enterprise"))
    if state in SLA_STEPS:
        rule, steps = SLA_STEPS[state]
        heard |= {("escalation", rule, step) for step in steps}
    return frozenset(heard)


def around(day: dt.date) -> list[dt.date]:
    """The day before, the day, the day after and a week after."""
    return [day + dt.timedelta(days=n) for n in (-1, 0, 1, 7)]


CHECKPOINTS = sorted({d for m in (MOBILIZATION_END, KEY_FIELD_START, CREATION_END, EVALUATION_END) for d in around(m)})


def directory(engine: sa.Engine) -> dict[int, tuple[str, str]]:
    """One firm per (kind, state), put straight into that state with the record it implies."""
    firms: dict[int, tuple[str, str]] = {}
    for kind, (key_field, above_size) in KINDS.items():
        for state in STATES:
            firm_id = make_firm(engine, key_field=key_field, above_size=above_size, name=f"常州{kind}{state}有限公司")
            firms[firm_id] = (kind, state)
            row = "mobilized" if state in ("unnotified", "audited") else state
            row = "verified" if state == "audited" else row
            with engine.begin() as conn:
                conn.execute(
                    sa.update(ENTERPRISES)
                    .where(ENTERPRISES.c.id == firm_id)
                    .values(state=row, notified_at=None if state == "unnotified" else LONG_AGO)
                )
                if state in ("applied", "verified", "audited", "reviewed", "certified"):
                    conn.execute(
                        sa.insert(APPLICATIONS).values(
                            enterprise_id=firm_id,
                            status=row,
                            materials=[],
                            submitted_at=LONG_AGO,
                            verified_at=None if state == "applied" else LONG_AGO,
                            audit_passed_at=LONG_AGO if state in ("audited", "reviewed", "certified") else None,
                            reviewed_at=LONG_AGO if state in ("reviewed", "certified") else None,
                            decided_at=LONG_AGO if state == "certified" else None,
                        )
                    )
    return firms


def heard(engine: sa.Engine) -> dict[int, set[tuple[str, ...]]]:
    out: dict[int, set[tuple[str, ...]]] = {}
    with engine.connect() as conn:
        for r in conn.execute(sa.select(OUTBOX.c.enterprise_id, OUTBOX.c.kind, OUTBOX.c.audience)):
            out.setdefault(r.enterprise_id, set()).add(("mail", r.kind, r.audience))
        for r in conn.execute(sa.select(ESCALATIONS.c.enterprise_id, ESCALATIONS.c.rule, ESCALATIONS.c.step)):
            out.setdefault(r.enterprise_id, set()).add(("escalation", r.rule, r.step))
    return out


def test_the_table_has_every_kind_state_and_milestone() -> None:
    """The expectations are not empty where the plan sets a duty (a table that says nothing cannot fail)."""
    assert expected("key", "mobilized", D(2023, 1, 1)) >= {("mail", "deadline_overdue", "enterprise")}
    assert ("mail", "deadline_overdue", "enterprise") not in expected("above", "mobilized", D(2023, 11, 7))
    assert expected("above", "mobilized", D(2024, 1, 1)) >= {("escalation", "above_size_started", "firm")}
    assert expected("small", "mobilized", D(2024, 1, 7)) == frozenset()
    assert expected("small", "rectifying", D(2023, 10, 30)) == {("mail", "creation_reminder", "enterprise")}
    assert ("escalation", "evaluation_end", "center") in expected("key", "audited", D(2024, 1, 1))
    assert len(CHECKPOINTS) == 16


def test_every_rule_over_every_kind_state_and_milestone(engine: sa.Engine, campaign: Campaign) -> None:
    firms = directory(engine)
    renderer = Renderer(campaign=campaign)
    wrong: list[str] = []
    for day in CHECKPOINTS:
        forget_sweeps(engine)
        sweep_on(engine, campaign, day)
        got = heard(engine)
        for firm_id, (kind, state) in firms.items():
            want = expected(kind, state, day)
            have = frozenset(got.get(firm_id, set()))
            if have != want:
                wrong.append(f"{day} {kind}/{state}: missing {sorted(want - have)}, unexpected {sorted(have - want)}")
        # no mail ever tells a firm it is overdue before its own date, and the nudge never says overdue
        with engine.connect() as conn:
            mails = conn.execute(sa.select(OUTBOX).where(OUTBOX.c.audience == "enterprise")).all()
        for mail in mails:
            if mail.kind == "deadline_overdue":
                assert dt.date.fromisoformat(str(mail.context["deadline"])[:10]) < day, mail.context
            if mail.kind == "creation_reminder":
                for lang in ("zh-CN", "en"):
                    text = renderer.render(mail.kind, lang, dict(mail.context)).text
                    assert "逾期" not in text and "overdue" not in text.lower(), text
    assert not wrong, "\n".join(wrong)


def test_an_open_application_follows_the_office_that_holds_it(engine: sa.Engine, campaign: Campaign) -> None:
    """After evaluation ends, an application verified by the district moves to the support center's desk:
    the district's escalation resolves and the center gets its own."""
    firm_id = make_firm(engine, key_field=True)
    with engine.begin() as conn:
        conn.execute(sa.update(ENTERPRISES).where(ENTERPRISES.c.id == firm_id).values(state="applied"))
        app_id = conn.execute(
            sa.insert(APPLICATIONS).values(
                enterprise_id=firm_id,
                status="applied",
                materials=[],
                submitted_at=dt.datetime(2023, 12, 20, tzinfo=dt.UTC),
            )
        ).inserted_primary_key[0]
    sweep_on(engine, campaign, D(2024, 1, 1))
    with engine.begin() as conn:
        conn.execute(
            sa.update(APPLICATIONS)
            .where(APPLICATIONS.c.id == app_id)
            .values(status="verified", verified_at=dt.datetime(2024, 1, 1, 6, tzinfo=dt.UTC))
        )
    sweep_on(engine, campaign, D(2024, 1, 2))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(ESCALATIONS.c.step, ESCALATIONS.c.status).where(ESCALATIONS.c.rule == "evaluation_end")
        ).all()
    assert sorted((r.step, r.status) for r in rows) == [("center", "open"), ("district", "resolved")]


def test_escalations_left_by_the_old_creation_end_rule_are_resolved(engine: sa.Engine, campaign: Campaign) -> None:
    """A database that escalated firms for not applying by the end of creation: the first sweep on the
    corrected rules resolves those escalations (the rule now only reminds)."""
    firm_id = make_firm(engine, key_field=False)
    with engine.begin() as conn:
        conn.execute(sa.update(ENTERPRISES).where(ENTERPRISES.c.id == firm_id).values(state="self_assessing"))
        conn.execute(
            sa.insert(ESCALATIONS).values(
                dedupe_key=f"creation_end:enterprise:{firm_id}:district",
                rule="creation_end",
                subject_kind="enterprise",
                subject_id=firm_id,
                enterprise_id=firm_id,
                district_code="320412",
                step="district",
                deadline=CREATION_END,
                days_overdue=8,
                status="open",
                detail={},
                created_at=dt.datetime(2023, 11, 8, tzinfo=dt.UTC),
            )
        )
    sweep_on(engine, campaign, D(2023, 11, 9))
    with engine.connect() as conn:
        assert conn.execute(sa.select(ESCALATIONS.c.status)).scalars().all() == ["resolved"]
