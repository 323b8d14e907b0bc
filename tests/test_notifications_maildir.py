"""Without SMTP settings mail becomes .eml files in the mail folder: named so a person finds them, written
atomically, rewritten (not duplicated) when the same message goes out again, and readable by a mail program."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from api.cli import main
from notifications.dispatch import JOURNAL, dispatch_once
from states import Role
from tests.factories import Driver, clock, make_firm
from tests.smtp_helpers import MAIL_FROM, maildir_settings
from workflow.campaign import Campaign
from workflow.tables import ENTERPRISES, OUTBOX


@pytest.fixture(autouse=True)
def _fresh_journal() -> None:
    JOURNAL.clear()


def read_eml(path: Path) -> EmailMessage:
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_messages_become_eml_files_a_mail_program_opens(engine: sa.Engine, campaign: Campaign, tmp_path: Path) -> None:
    firm = make_firm(engine, name="常州“龙城”<精细化工> & Co", email="anquan@longcheng.example.com")
    Driver(engine, campaign, firm).fire("notify", Role.district_bureau)
    folder = tmp_path / "mail"

    report = dispatch_once(engine, settings=maildir_settings(folder), clock=clock(), campaign=campaign)

    assert report.sent == 1 and report.channel == f"mail folder {folder}"
    with engine.connect() as conn:
        row = conn.execute(sa.select(OUTBOX)).one()
    [path] = folder.iterdir()
    assert path.name == f"2022-07-01-{row.id:06d}-mobilization_notice.eml"
    mail = read_eml(path)
    assert mail["From"] == MAIL_FROM and mail["To"] == "anquan@longcheng.example.com"
    assert mail["Subject"] == "【达标创建】请常州“龙城”<精细化工> & Co启动安全生产达标企业创建"
    assert mail["Message-ID"] == row.message_id
    assert mail["Date"].datetime == dt.datetime(2022, 7, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert mail.get_content_type() == "multipart/alternative"
    text, html = mail.get_body(("plain",)), mail.get_body(("html",))
    assert text is not None and html is not None
    assert "企业名称：常州“龙城”<精细化工> & Co" in text.get_content()
    assert "常州“龙城”&lt;精细化工&gt; &amp; Co" in html.get_content()
    assert row.status == "sent"


def test_the_same_message_is_rewritten_not_duplicated(engine: sa.Engine, campaign: Campaign, tmp_path: Path) -> None:
    firm = make_firm(engine, email="twice@example.com")
    Driver(engine, campaign, firm).fire("notify", Role.district_bureau)
    folder = tmp_path / "mail"
    settings = maildir_settings(folder)
    dispatch_once(engine, settings=settings, clock=clock(), campaign=campaign)
    [first] = folder.iterdir()
    message_id = read_eml(first)["Message-ID"]

    with engine.begin() as conn:  # as a dispatcher that died before recording would leave it, lease long gone
        conn.execute(sa.update(OUTBOX).values(status="pending", sent_at=None))
    at = clock()
    at.advance(dt.timedelta(hours=1))
    again = dispatch_once(engine, settings=settings, clock=at, campaign=campaign)

    assert again.sent == 1
    assert [p.name for p in folder.iterdir()] == [first.name]  # no temporary files left, no second file
    assert read_eml(first)["Message-ID"] == message_id


def test_an_unwritable_folder_leaves_messages_waiting(engine: sa.Engine, campaign: Campaign, tmp_path: Path) -> None:
    firm = make_firm(engine, email="later@example.com")
    Driver(engine, campaign, firm).fire("notify", Role.district_bureau)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the mail folder should be")

    report = dispatch_once(engine, settings=maildir_settings(blocked), clock=clock(), campaign=campaign)

    assert report.retrying == 1 and "cannot write" in (report.channel_error or "")
    with engine.connect() as conn:
        row = conn.execute(sa.select(OUTBOX)).one()
    assert row.status == "pending" and "cannot write" in row.last_error


def test_the_embedded_default_is_a_mail_folder_in_the_working_directory(
    engine: sa.Engine, db_url: str, campaign: Campaign, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("DABIAO_SMTP_HOST", "DABIAO_MAIL_DIR"):
        monkeypatch.delenv(name, raising=False)
    firm = make_firm(engine, email="default@example.com")
    with engine.begin() as conn:
        conn.execute(sa.update(ENTERPRISES).values(lang="en"))
    Driver(engine, campaign, firm).fire("notify", Role.district_bureau)
    with engine.begin() as conn:  # due now by the wall clock the command uses
        conn.execute(sa.update(OUTBOX).values(next_attempt_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["--database-url", db_url, "dispatch"])
    assert result.exit_code == 0, result.output
    assert "sent 1" in result.output and "mail folder mail" in result.output
    [path] = (tmp_path / "mail").iterdir()
    mail = read_eml(path)
    assert mail["Content-Language"] == "en"
    assert mail["Subject"].startswith("[Compliance campaign]")
