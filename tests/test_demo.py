"""`make demo` at a small size: the replay moves firms along the path, mail lands in the .eml folder, the
audit chain holds, and the logins it prints work."""

from __future__ import annotations

import datetime as dt
import email
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main
from api.demo import PASSWORD
from workflow.audit import verify_chain
from workflow.clock import FixedClock
from workflow.settings import Settings
from workflow.tables import APPLICATIONS, ENTERPRISES, ESCALATIONS, EVIDENCE_FILES, HAZARDS, OUTBOX


def test_a_small_demo_replays_the_campaign(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = CliRunner().invoke(
        main,
        ["demo", "--firms", "120", "--until", "2023-01-20", "--folder", str(folder), "--no-serve"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "password for every account: " + PASSWORD in result.output
    assert "messages written to" in result.output
    engine = sa.create_engine(f"sqlite:///{folder / 'dabiao.db'}")
    with engine.connect() as conn:
        states = dict(conn.execute(sa.select(ENTERPRISES.c.state, sa.func.count()).group_by(ENTERPRISES.c.state)).all())
        escalated = conn.execute(sa.select(sa.func.count()).select_from(ESCALATIONS)).scalar_one()
        mail = dict(conn.execute(sa.select(OUTBOX.c.status, sa.func.count()).group_by(OUTBOX.c.status)).all())
        assert verify_chain(conn).ok
    assert sum(states.values()) == 120
    assert states.get("certified", 0) > 0 and states.get("mobilized", 0) > 0  # some done, some not started
    assert escalated > 0  # key-field firms that missed 2022-12-31 were escalated
    assert mail.get("sent", 0) > 0 and "failed" not in mail and "pending" not in mail, mail
    _every_certified_firm_has_its_dossier_and_evidence(engine, folder / "data")
    mails = sorted((folder / "mail").glob("*.eml"))
    assert mails, "no mail in the .eml folder"
    first = email.message_from_bytes(mails[0].read_bytes())
    assert first["Message-ID"] and first["Subject"]
    settings = Settings(database_url=f"sqlite:///{folder / 'dabiao.db'}", mail_dir=folder / "mail")
    client = TestClient(create_app(settings=settings, clock=FixedClock.on(dt.date(2023, 1, 20))))
    for username in ("city", "center", "wujin", "expert01"):
        signed = client.post("/api/auth/token", data={"username": username, "password": PASSWORD})
        assert signed.status_code == 200, (username, signed.text)
    token = client.post("/api/auth/token", data={"username": "wujin", "password": PASSWORD}).json()["access_token"]
    listed = client.get("/api/enterprises", headers={"Authorization": f"Bearer {token}"}).json()
    assert listed["total"] > 0 and {item["district_code"] for item in listed["items"]} == {"320412"}
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
