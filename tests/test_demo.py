"""`make demo` at a small size: the replay moves firms along the path, mail lands in the .eml folder, the
audit chain holds, and the logins it prints work."""

from __future__ import annotations

import datetime as dt
import email
import re
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main
from api.demo import PASSWORD
from deadlines.supervision import grade_expression
from workflow.audit import verify_chain
from workflow.campaign import load_campaign
from workflow.clock import SHANGHAI, FixedClock
from workflow.settings import DEFAULT_CAMPAIGN, Settings
from workflow.tables import (
    APPLICATIONS,
    CERTIFICATIONS,
    DISTRICT_TARGETS,
    ENTERPRISES,
    ESCALATIONS,
    EVENTS,
    EVIDENCE_FILES,
    HAZARDS,
    OUTBOX,
    REFERRALS,
)

D = dt.date


def test_a_small_demo_replays_the_campaign(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = CliRunner().invoke(
        main,
        ["demo", "--firms", "120", "--until", "2024-01-05", "--folder", str(folder), "--no-serve"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "password for every account: " + PASSWORD in result.output
    written = int(re.search(r"(\d+) messages written to", result.output).group(1))  # type: ignore[union-attr]
    engine = sa.create_engine(f"sqlite:///{folder / 'dabiao.db'}")
    with engine.connect() as conn:
        states = dict(conn.execute(sa.select(ENTERPRISES.c.state, sa.func.count()).group_by(ENTERPRISES.c.state)).all())
        escalated = conn.execute(sa.select(sa.func.count()).select_from(ESCALATIONS)).scalar_one()
        mail = dict(conn.execute(sa.select(OUTBOX.c.status, sa.func.count()).group_by(OUTBOX.c.status)).all())
        assert verify_chain(conn).ok
        overdue = conn.execute(
            sa.select(OUTBOX.c.context, OUTBOX.c.created_at, ENTERPRISES.c.key_field, ENTERPRISES.c.above_size)
            .join(ENTERPRISES, ENTERPRISES.c.id == OUTBOX.c.enterprise_id)
            .where(OUTBOX.c.kind == "deadline_overdue")
        ).all()
        waiting = (
            conn.execute(
                sa.select(ENTERPRISES.c.id).where(ENTERPRISES.c.state.in_(("applied", "verified", "reviewed")))
            )
            .scalars()
            .all()
        )
        grade = grade_expression(load_campaign(DEFAULT_CAMPAIGN), D(2024, 1, 5)).label("grade")
        graded = {r.id: r.grade for r in conn.execute(sa.select(ENTERPRISES.c.id, grade))}
        unreachable = conn.execute(
            sa.select(ENTERPRISES.c.id, ENTERPRISES.c.notified_at).where(
                sa.or_(ENTERPRISES.c.email.is_(None), ENTERPRISES.c.email == "")
            )
        ).all()
        notices = conn.execute(
            sa.select(EVENTS.c.enterprise_id, EVENTS.c.payload).where(EVENTS.c.trigger == "notify")
        ).all()
        benchmark = conn.execute(sa.select(CERTIFICATIONS.c.score).where(CERTIFICATIONS.c.level == "benchmark")).all()
        named = conn.execute(sa.select(sa.func.count()).where(EVENTS.c.trigger == "benchmark_named")).scalar_one()
        prior = conn.execute(
            sa.select(sa.func.count()).where(ENTERPRISES.c.prior_certificate_recorded_at.is_not(None))
        ).scalar_one()
        # referrals follow the firm: no proposal waits on a firm that has moved on from non-participation
        stale = conn.execute(
            sa.select(sa.func.count())
            .select_from(REFERRALS.join(ENTERPRISES, ENTERPRISES.c.id == REFERRALS.c.enterprise_id))
            .where(
                REFERRALS.c.status == "proposed",
                REFERRALS.c.grounds == "non_participating",
                ENTERPRISES.c.state != "mobilized",
            )
        ).scalar_one()
        assert stale == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(DISTRICT_TARGETS)).scalar_one() == 7
        targets = {r.source for r in conn.execute(sa.select(DISTRICT_TARGETS.c.source))}
        scaled = {
            r.district_code: (r.key_field_started, r.other_started) for r in conn.execute(sa.select(DISTRICT_TARGETS))
        }
        e = ENTERPRISES.c
        directory = conn.execute(
            sa.select(
                e.district_code,
                sa.func.sum(sa.case((e.key_field.is_(True), 1), else_=0)),
                sa.func.sum(sa.case((sa.and_(e.key_field.is_(False), e.above_size.is_(True)), 1), else_=0)),
            ).group_by(e.district_code)
        ).all()
    assert all(score >= 75 for (score,) in benchmark) and named == len(benchmark)  # the city names 标杆 from 75
    assert prior > 0  # districts recorded earlier certificates (or that there are none)
    assert targets == {"stand-in"}  # scaled to the demo's directory, still marked as a stand-in
    # 2022年底前，全市重点监管领域企业需全部开展创建工作; 2023年底前…规模以上企业需全部开展创建工作: every firm of
    # the demo's directory in the group is the target, not the city's stand-in figure
    assert {code: scaled[code] for code, *_ in directory} == {code: (key, other) for code, key, other in directory}
    assert sum(states.values()) == 120
    # the plan's milestones: a non-key firm's only dated duty is to start by 2023-12-31 (above size only);
    # hazard deadlines are the firm's own (五落实 · 期限) and come after the date they name
    for context, created_at, key_field, above_size in overdue:
        day = created_at.replace(tzinfo=dt.UTC).astimezone(SHANGHAI).date()
        assert D.fromisoformat(context["deadline"][:10]) < day, context
        if not key_field and context["rule"] != "hazard_deadline":
            assert day >= D(2024, 1, 1) and above_size and context["rule"] == "above_size_started", context
    assert any(c["rule"] == "above_size_started" for c, *_ in overdue)  # the demo reaches 2024
    # a firm waiting on a bureau is never graded as a non-participant
    assert waiting and {graded[firm] for firm in waiting} == {"on_track"}
    # a notice without an address reaches nobody: only another channel (the district phoning) notifies
    by_mail_only = {r.enterprise_id for r in notices if r.payload.get("channel", "mail") == "mail"}
    phoned = {r.enterprise_id for r in notices if r.payload.get("channel") == "phone"}
    assert unreachable and all((r.notified_at is not None) == (r.id in phoned) for r in unreachable)
    assert {r.id for r in unreachable} & by_mail_only
    assert states.get("certified", 0) > 0 and states.get("mobilized", 0) > 0  # some done, some not started
    assert escalated > 0  # key-field firms that missed 2022-12-31 were escalated
    assert mail.get("sent", 0) > 0 and "failed" not in mail and "pending" not in mail, mail
    _every_certified_firm_has_its_dossier_and_evidence(engine, folder / "data")
    mails = sorted((folder / "mail").glob("*.eml"))
    assert mails and len(mails) == written == mail["sent"], (len(mails), written)  # counts the files written
    # a message without an address is written nowhere: counted apart, as undeliverable (无法送达)
    undeliverable = int(re.search(r"无法送达 (\d+) 封", result.output).group(1))  # type: ignore[union-attr]
    assert undeliverable == mail["no_recipient"] > 0
    first = email.message_from_bytes(mails[0].read_bytes())
    assert first["Message-ID"] and first["Subject"]
    settings = Settings(database_url=f"sqlite:///{folder / 'dabiao.db'}", mail_dir=folder / "mail", cookie_secure=False)
    client = TestClient(create_app(settings=settings, clock=FixedClock.on(dt.date(2024, 1, 5))))
    for username in ("city", "center", "wujin", "expert01"):
        signed = client.post("/api/auth/token", data={"username": username, "password": PASSWORD})
        assert signed.status_code == 200, (username, signed.text)
    token = client.post("/api/auth/token", data={"username": "wujin", "password": PASSWORD}).json()["access_token"]
    listed = client.get("/api/enterprises", headers={"Authorization": f"Bearer {token}"}).json()
    gov = client.post("/api/auth/token", data={"username": "gov-wujin", "password": PASSWORD}).json()["access_token"]
    seen = client.get("/api/referrals", headers={"Authorization": f"Bearer {gov}"}).json()
    assert {r["status"] for r in seen} <= {"confirmed", "acknowledged"}  # only what the city confirmed
    assert listed["total"] > 0 and {item["district_code"] for item in listed["items"]} == {"320412"}
    # supervision carried out: most of the monthly plans done, some missed; training sessions held
    city = client.post("/api/auth/token", data={"username": "city", "password": PASSWORD}).json()["access_token"]
    planned = done = 0
    for month in ("2023-09", "2023-10", "2023-11", "2023-12"):  # the months the demo carries out
        figures = client.get(
            "/api/inspections/report", params={"month": month}, headers={"Authorization": f"Bearer {city}"}
        ).json()["total"]
        planned, done = planned + figures["planned"], done + figures["done"]
    assert planned > 0 and 0.7 < done / planned < 1, (done, planned)
    sessions = client.get("/api/trainings", headers={"Authorization": f"Bearer {city}"}).json()
    assert {s["kind"] for s in sessions} == {"training", "briefing"}
    engine.dispose()


def _every_certified_firm_has_its_dossier_and_evidence(engine: sa.Engine, data: Path) -> None:
    """Certified firms applied with a self-assessment report and an application form, closed every hazard with a
    rectification file for it, and had the findings of audits and reviews accepted by the office: all on disk."""
    with engine.connect() as conn:
        certified = conn.execute(
            sa.select(APPLICATIONS.c.enterprise_id, APPLICATIONS.c.materials).where(
                APPLICATIONS.c.status == "certified"
            )
        ).all()
        assert certified
        files = {f.id: f for f in conn.execute(sa.select(EVIDENCE_FILES))}
        hazards = conn.execute(
            sa.select(HAZARDS).where(HAZARDS.c.enterprise_id.in_([firm for firm, _ in certified]))
        ).all()
    for firm, materials in certified:
        kinds = {m["kind"] for m in materials}
        assert {"self_assessment_report", "application_form"} <= kinds, (firm, materials)
        for m in materials:
            f = files[m["evidence_id"]]
            assert f.enterprise_id == firm and (data / "evidence" / f.sha256[:2] / f.sha256).is_file()
    assert hazards, "no certified demo firm ever had a hazard"
    for h in hazards:
        assert h.status == ("rectified" if h.source == "self" else "accepted"), (h.id, h.source, h.status)
        f = files[h.rectification_evidence_id]
        assert (f.kind, f.hazard_id, f.enterprise_id) == ("rectification", h.id, h.enterprise_id)
        assert (data / "evidence" / f.sha256[:2] / f.sha256).is_file()
