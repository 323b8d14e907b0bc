"""The engine against a real database (SQLite and PostgreSQL): paths, thresholds, side paths,
atomicity, scope and concurrency."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from states import GuardFailed, InvalidInput, InvalidTransition, NotAllowed, OutOfScope, Role, VersionConflict
from tests.factories import OPINION, Driver, actor_for, clock, complete_five, make_firm
from workflow import effects
from workflow.actors import Actor
from workflow.audit import verify_chain
from workflow.campaign import Campaign
from workflow.context import Context
from workflow.engine import fire
from workflow.records import FiveImplementations, decide_rectification, rectify_hazard, update_hazard
from workflow.tables import APPLICATIONS, CERTIFICATIONS, ENTERPRISES, EVENTS, HAZARDS, OUTBOX


def rows(engine: sa.Engine, table: sa.Table, **where: Any) -> list[sa.Row[Any]]:
    query = sa.select(table).where(*(table.c[k] == v for k, v in where.items()))
    with engine.connect() as conn:
        return list(conn.execute(query.order_by(table.c[table.primary_key.columns.keys()[0]])).all())


def firm_row(engine: sa.Engine, firm_id: int) -> sa.Row[Any]:
    return rows(engine, ENTERPRISES, id=firm_id)[0]


@pytest.mark.parametrize("key_field", [True, False], ids=["key-field", "non-key"])
def test_a_firm_walks_the_whole_path_to_certified(engine: sa.Engine, campaign: Campaign, key_field: bool) -> None:
    firm = make_firm(engine, key_field=key_field)
    d = Driver(engine, campaign, firm)
    d.fire("notify", Role.district_bureau)
    d.fire("start_self_assessment", Role.enterprise)
    d.self_assess()
    hazard = d.hazard()
    d.fire("report_hazards", Role.enterprise)
    assert d.rectify(hazard) == "rectified"  # the firm's own hazard: closed by the firm
    d.fire("finish_rectification", Role.enterprise)
    d.dossier()
    materials = {"materials": [{"sha256": "a" * 64, "name": "设备台账.pdf", "kind": "supporting_material"}]}
    with pytest.raises(InvalidInput, match=r"these materials were not uploaded for this firm: 设备台账\.pdf"):
        d.fire("submit_application", Role.enterprise, materials)
    d.fire("submit_application", Role.enterprise)
    d.fire("verify", Role.district_bureau, OPINION)
    auditor = Role.support_center if key_field else Role.district_bureau
    d.fire("pass_audit", auditor)
    d.review(82.5)  # the server draws a team of three; each scores the sheet; the team's result moves the firm
    result = d.fire("certify", Role.city_bureau)

    assert result.to_state == "certified"
    # 达标 only: 标杆 is the city's decision; no eligibility while nobody recorded an earlier certificate
    assert result.record["level"] == "compliant" and result.record["eligible_level"] is None
    firm_now = firm_row(engine, firm)
    # nine transitions; the draw and three members' scores; the self-assessment, two hazard records and three uploads
    assert (firm_now.state, firm_now.version, firm_now.event_count) == ("certified", 20, 19)
    events = rows(engine, EVENTS, enterprise_id=firm)
    assert [e.trigger for e in events] == [
        "notify",
        "start_self_assessment",
        "self_assessment_recorded",
        "hazard_reported",
        "report_hazards",
        "evidence_uploaded",  # the rectification file
        "hazard_rectified",
        "finish_rectification",
        "evidence_uploaded",  # the self-assessment report
        "evidence_uploaded",  # the application form
        "submit_application",
        "verify",
        "pass_audit",
        "review_draw_team",
        "review_scored",
        "review_scored",
        "review_scored",
        "record_review",
        "certify",
    ]
    assert [e.to_state for e in events][-1] == "certified"
    assert [e.role for e in events if e.trigger == "pass_audit"] == [auditor.value]
    assert [e.role for e in events if e.trigger == "review_scored"] == ["reviewer"] * 3
    kinds = [m.kind for m in rows(engine, OUTBOX, enterprise_id=firm)]
    assert kinds == ["mobilization_notice", "application_received", "audit_outcome"] + ["reviewer_assignment"] * 3 + [
        "certification"
    ]
    cert = rows(engine, CERTIFICATIONS, enterprise_id=firm)[0]
    assert (cert.level, cert.score, cert.eligible_level) == ("compliant", 82.5, None)
    app = rows(engine, APPLICATIONS, enterprise_id=firm)[0]
    assert app.status == "certified"
    assert [(m["name"], m["kind"]) for m in app.materials] == [
        ("自评报告.pdf", "self_assessment_report"),
        ("申请表.pdf", "application_form"),
    ]
    assert (app.verification_opinion, app.verification_checklist) == (
        "材料齐全，与企业实际相符",
        ["self_assessment_report", "application_form"],
    )
    with engine.connect() as conn:
        assert verify_chain(conn).ok


def test_the_event_log_names_who_did_what(engine: sa.Engine, campaign: Campaign) -> None:
    firm = make_firm(engine)
    d = Driver(engine, campaign, firm)
    d.to_reviewed(70)
    events = rows(engine, EVENTS, enterprise_id=firm)
    assert [(e.seq, e.trigger, e.role, e.from_state, e.to_state) for e in events] == [
        (1, "notify", "district_bureau", "mobilized", "mobilized"),
        (2, "start_self_assessment", "enterprise", "mobilized", "self_assessing"),
        (3, "self_assessment_recorded", "enterprise", "self_assessing", "self_assessing"),
        (4, "evidence_uploaded", "enterprise", "self_assessing", "self_assessing"),
        (5, "evidence_uploaded", "enterprise", "self_assessing", "self_assessing"),
        (6, "submit_application", "enterprise", "self_assessing", "applied"),
        (7, "verify", "district_bureau", "applied", "verified"),
        (8, "pass_audit", "district_bureau", "verified", "verified"),
        (9, "review_draw_team", "district_bureau", "verified", "verified"),
        (10, "review_scored", "reviewer", "verified", "verified"),
        (11, "review_scored", "reviewer", "verified", "verified"),
        (12, "review_scored", "reviewer", "verified", "verified"),
        (13, "record_review", "district_bureau", "verified", "reviewed"),
    ]
    assert events[0].prev_hash == "0" * 64
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(events))
    result = events[12].payload
    assert (result["score"], result["application_id"], result["online_score"], result["onsite_score"]) == (
        70,
        1,
        70,
        70,
    )
    # how the team's score was combined: the campaign's rule over the three members' sheets
    assert result["combination"]["rule"] == "mean" and len(result["combination"]["members"]) == 3
    assert events[8].payload["team"] == sorted(events[8].payload["team"]) and len(events[8].payload["team"]) == 3
    assert all(e.at == dt.datetime(2022, 7, 1, 4, 0, tzinfo=dt.UTC) for e in events)


@pytest.mark.parametrize(
    ("score", "eligible"),
    # the plan: 评分达到90分以上，方可新申报一级标准化企业；企业评分达到75分以上，方可新申报二级标准化企业
    [(60.0, None), (74.9, None), (75.0, 2), (89.9, 2), (90.0, 1), (100.0, 1)],
)
def test_certification_records_compliant_and_eligibility_follows_the_thresholds(
    engine: sa.Engine, campaign: Campaign, score: float, eligible: int | None
) -> None:
    firm = make_firm(engine, key_field=True)
    with engine.begin() as conn:  # recorded as holding no earlier level-1/2 certificate
        conn.execute(
            sa.update(ENTERPRISES)
            .where(ENTERPRISES.c.id == firm)
            .values(prior_certificate_recorded_at=dt.datetime.now(dt.UTC))
        )
    d = Driver(engine, campaign, firm)
    d.to_reviewed(score)
    result = d.fire("certify", Role.city_bureau)
    assert (result.record["level"], result.record["eligible_level"]) == ("compliant", eligible)


def test_a_firm_with_an_earlier_certificate_gets_no_new_eligibility(engine: sa.Engine, campaign: Campaign) -> None:
    firm = make_firm(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.update(ENTERPRISES)
            .where(ENTERPRISES.c.id == firm)
            .values(prior_certificate_level=2, prior_certificate_recorded_at=dt.datetime.now(dt.UTC))
        )
    d = Driver(engine, campaign, firm)
    d.to_reviewed(95)
    record = d.fire("certify", Role.city_bureau).record
    assert (record["level"], record["score"], record["eligible_level"]) == ("compliant", 95.0, None)


def test_a_review_below_60_cannot_be_certified_and_its_findings_become_hazards(
    engine: sa.Engine, campaign: Campaign
) -> None:
    firm = make_firm(engine, key_field=True)
    d = Driver(engine, campaign, firm)
    d.to_applied()
    d.fire("verify", Role.district_bureau, OPINION)
    d.fire("pass_audit", Role.support_center)
    d.review(
        59.9,
        findings=[
            {"description": "储罐区防火堤破损", "severity": "major"},
            {"description": "特种作业人员无证上岗"},
        ],
    )
    with pytest.raises(GuardFailed, match="below 60"):
        d.fire("certify", Role.city_bureau)
    d.fire("fail_review", Role.support_center)
    assert d.state() == "rectifying"
    hazards = rows(engine, HAZARDS, enterprise_id=firm)
    assert [(h.description, h.severity, h.source, h.status) for h in hazards] == [
        ("储罐区防火堤破损", "major", "review", "open"),
        ("特种作业人员无证上岗", "general", "review", "open"),
    ]
    # the firm must fill in the five implementations and rectify before it may go on
    with pytest.raises(GuardFailed, match="2 hazard"):
        d.fire("finish_rectification", Role.enterprise)
    enterprise = actor_for(engine, Role.enterprise, firm)
    with Session(engine) as s, pytest.raises(InvalidInput, match="five implementations"):
        rectify_hazard(s, hazard_id=hazards[0].id, evidence_sha256="b" * 64, actor=enterprise, clock=d.clock)
    for h in hazards:
        with Session(engine) as s:
            update_hazard(s, hazard_id=h.id, implementations=complete_five(), actor=enterprise, clock=d.clock)
        # a review's finding awaits the acceptance of the office that raised it
        assert d.rectify(h.id) == "submitted"
    with pytest.raises(GuardFailed, match="2 hazard\\(s\\) still open: #1“储罐区防火堤破损”、#2“特种作业人员无证上岗”"):
        d.fire("finish_rectification", Role.enterprise)
    for h in hazards:
        with Session(engine) as s:
            decide_rectification(
                s,
                hazard_id=h.id,
                accept=True,
                note="现场复核已整改",
                actor=actor_for(engine, Role.support_center, firm),
                clock=d.clock,
            )
    assert [h.status for h in rows(engine, HAZARDS, enterprise_id=firm)] == ["accepted", "accepted"]
    d.fire("finish_rectification", Role.enterprise)
    d.fire("submit_application", Role.enterprise)
    assert [a.status for a in rows(engine, APPLICATIONS, enterprise_id=firm)] == ["review_failed", "applied"]
    assert [m.kind for m in rows(engine, OUTBOX, enterprise_id=firm)][-2:] == [
        "review_outcome",
        "application_received",
    ]


def test_a_returned_application_goes_back_to_self_assessment_with_its_reason(
    engine: sa.Engine, campaign: Campaign
) -> None:
    firm = make_firm(engine)
    d = Driver(engine, campaign, firm)
    d.to_applied()
    with pytest.raises(GuardFailed, match="reason is required"):
        d.fire("return_application", Role.district_bureau)
    with pytest.raises(InvalidInput, match="unknown items responsibility_system"):
        d.fire("return_application", Role.district_bureau, {"reason": "x", "missing": ["responsibility_system"]})
    d.fire(
        "return_application",
        Role.district_bureau,
        {"reason": "缺少安全生产责任制文件", "missing": ["supporting_material", "application_form"]},
    )
    assert d.state() == "self_assessing"
    app = rows(engine, APPLICATIONS, enterprise_id=firm)[-1]
    assert (app.status, app.outcome_reason, app.missing) == (
        "returned",
        "缺少安全生产责任制文件",
        ["supporting_material", "application_form"],
    )
    mail = rows(engine, OUTBOX, enterprise_id=firm)[-1]
    assert (mail.kind, mail.context["reason"], mail.context["missing"], mail.to_address) == (
        "application_returned",
        "缺少安全生产责任制文件",
        ["佐证材料", "申请表"],
        "safety@example.com",
    )


def test_a_failed_audit_sends_the_firm_to_rectify(engine: sa.Engine, campaign: Campaign) -> None:
    firm = make_firm(engine, key_field=True)
    d = Driver(engine, campaign, firm)
    d.to_applied()
    d.fire("verify", Role.district_bureau, OPINION)
    with pytest.raises(NotAllowed):  # key-field audits belong to the support center
        d.fire("fail_audit", Role.district_bureau, {"reason": "x"})
    d.fire(
        "fail_audit",
        Role.support_center,
        {"reason": "应急预案未备案", "findings": [{"description": "应急预案未备案"}]},
    )
    assert d.state() == "rectifying"
    assert [h.source for h in rows(engine, HAZARDS, enterprise_id=firm)] == ["audit"]


def test_review_cannot_be_recorded_before_the_audit_passed(engine: sa.Engine, campaign: Campaign) -> None:
    d = Driver(engine, campaign, make_firm(engine))
    d.to_applied()
    d.fire("verify", Role.district_bureau, OPINION)
    with pytest.raises(InvalidTransition, match="after the online audit passed"):
        d.review(80)
    # and no person fires the review result directly, whatever the state
    with pytest.raises(NotAllowed, match="comes only from the review team"):
        d.fire("record_review", Role.district_bureau, {"score": 80})


def test_revoking_a_certificate_for_a_major_hazard(engine: sa.Engine, campaign: Campaign) -> None:
    firm = make_firm(engine)
    d = Driver(engine, campaign, firm)
    d.to_reviewed(80)
    d.fire("certify", Role.city_bureau)
    d.fire(
        "revoke",
        Role.city_bureau,
        {"reason": "发生较大事故", "findings": [{"description": "动火作业未审批", "severity": "major"}]},
    )
    assert d.state() == "rectifying"
    cert = rows(engine, CERTIFICATIONS, enterprise_id=firm)[0]
    assert cert.revoke_reason == "发生较大事故" and cert.revoked_at is not None


def test_closing_needs_a_reason_and_is_final(engine: sa.Engine, campaign: Campaign) -> None:
    firm = make_firm(engine)
    d = Driver(engine, campaign, firm)
    d.fire("close", Role.district_bureau, {"reason": "企业已搬迁"})
    assert firm_row(engine, firm).closed_reason == "企业已搬迁"
    with pytest.raises(Exception, match="cannot start_self_assessment from closed"):
        d.fire("start_self_assessment", Role.enterprise)


def test_applications_only_inside_the_evaluation_window(engine: sa.Engine, campaign: Campaign) -> None:
    firm = make_firm(engine)
    early = Driver(engine, campaign, firm, day=dt.date(2022, 5, 31))
    early.fire("start_self_assessment", Role.enterprise)
    early.self_assess()
    early.dossier()
    with pytest.raises(GuardFailed, match="from 2022-06-01 to 2023-12-31"):
        early.fire("submit_application", Role.enterprise)
    late = Driver(engine, campaign, firm, day=dt.date(2024, 1, 1))
    with pytest.raises(GuardFailed) as refused:
        late.fire("submit_application", Role.enterprise)
    assert refused.value.guard == "within_evaluation_window"
    Driver(engine, campaign, firm, day=dt.date(2022, 6, 1)).fire("submit_application", Role.enterprise)


def test_an_application_needs_hazards_rectified_with_all_five_implementations(
    engine: sa.Engine, campaign: Campaign
) -> None:
    d = Driver(engine, campaign, make_firm(engine))
    d.fire("start_self_assessment", Role.enterprise)
    d.self_assess()
    d.hazard(FiveImplementations(responsible_person="李四", measures="加装护栏"))
    with pytest.raises(GuardFailed) as refused:
        d.fire("report_hazards", Role.enterprise)
    assert refused.value.guard == "five_implementations_complete"
    with pytest.raises(GuardFailed) as refused:
        d.fire("submit_application", Role.enterprise)
    assert refused.value.guard == "no_open_hazards"


def test_a_refused_fire_writes_nothing(engine: sa.Engine, campaign: Campaign) -> None:
    firm = make_firm(engine)
    d = Driver(engine, campaign, firm)
    with pytest.raises(GuardFailed):
        d.fire("close", Role.district_bureau, {"reason": ""})
    assert firm_row(engine, firm).version == 1
    assert rows(engine, EVENTS) == [] and rows(engine, OUTBOX) == []


def test_a_failure_half_way_through_a_fire_leaves_no_trace(
    engine: sa.Engine, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    firm = make_firm(engine)
    d = Driver(engine, campaign, firm)
    d.to_applied()
    d.fire("verify", Role.district_bureau, OPINION)

    def explode(ctx: effects.Context) -> effects.Effect:
        effects._hazards_from(ctx, [{"description": "写到一半", "severity": "general"}], "audit")
        raise RuntimeError("disk full")

    monkeypatch.setitem(effects.EFFECTS, "fail_audit", explode)
    before = firm_row(engine, firm)
    with pytest.raises(RuntimeError):
        d.fire("fail_audit", Role.district_bureau, {"reason": "x"})
    assert firm_row(engine, firm) == before
    assert rows(engine, HAZARDS) == []
    assert len(rows(engine, EVENTS)) == 7  # four transitions, the self-assessment and two uploads


def test_unknown_payload_fields_are_refused_by_name(engine: sa.Engine, campaign: Campaign) -> None:
    d = Driver(engine, campaign, make_firm(engine))
    with pytest.raises(InvalidInput, match="fields not accepted for notify: score"):
        d.fire("notify", Role.district_bureau, {"score": 5})


def test_officials_act_only_inside_their_scope(engine: sa.Engine, campaign: Campaign) -> None:
    firm = make_firm(engine, district="320412")
    other_firm = make_firm(engine, district="320412")
    outsiders = [
        Actor("新北区应急局", Role.district_bureau, district_code="320411"),
        Actor("另一企业", Role.enterprise, enterprise_id=other_firm),
        Actor("评审专家", Role.reviewer),
    ]
    for actor in outsiders:
        with Session(engine) as s, pytest.raises(OutOfScope):
            fire(s, enterprise_id=firm, trigger="notify", actor=actor, context=Context(campaign, clock()))
    with Session(engine) as s, pytest.raises(NotAllowed):
        fire(
            s,
            enterprise_id=firm,
            trigger="notify",
            actor=Actor("企业", Role.enterprise, enterprise_id=firm),
            context=Context(campaign, clock()),
        )
    assert firm_row(engine, firm).version == 1


def test_a_stale_version_is_a_conflict(engine: sa.Engine, campaign: Campaign) -> None:
    firm = make_firm(engine)
    d = Driver(engine, campaign, firm)
    d.fire("notify", Role.district_bureau, expected_version=1)
    with pytest.raises(VersionConflict, match="version 2, not 1"):
        d.fire("start_self_assessment", Role.enterprise, expected_version=1)
    assert d.fire("start_self_assessment", Role.enterprise, expected_version=2).version == 3


def test_two_sessions_firing_at_once_one_wins_the_other_conflicts(engine: sa.Engine, campaign: Campaign) -> None:
    for _ in range(5):
        firm = make_firm(engine)
        d = Driver(engine, campaign, firm)
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def attempt(
            trigger: str,
            role: Role,
            d: Driver = d,
            barrier: threading.Barrier = barrier,
            outcomes: list[str] = outcomes,
        ) -> None:
            barrier.wait()
            try:
                d.fire(trigger, role, {"reason": "企业停产"} if trigger == "close" else None, expected_version=1)
                outcomes.append("won")
            except VersionConflict:
                outcomes.append("conflict")

        threads = [
            threading.Thread(target=attempt, args=("start_self_assessment", Role.enterprise)),
            threading.Thread(target=attempt, args=("close", Role.district_bureau)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["conflict", "won"]
        assert firm_row(engine, firm).version == 2
        assert len(rows(engine, EVENTS, enterprise_id=firm)) == 1
