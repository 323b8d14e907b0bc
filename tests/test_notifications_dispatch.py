"""Outbox dispatch end to end: a real aiosmtpd server on loopback receives what transitions and sweeps wrote,
in the recipient's language; outages, refusals, crashes between sending and recording, and the lease."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import ssl
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from aiosmtpd.smtp import AuthResult, LoginPassword
from click.testing import CliRunner

import notifications.dispatch as dispatch_module
from api.cli import main
from notifications.channels import BadSmtpSettings
from notifications.dispatch import JOURNAL, backoff_delay, dispatch_once, lease_for
from notifications.message import message_id_for
from states import Role
from tests.factories import Driver, clock, make_firm
from tests.smtp_helpers import MAIL_FROM, running_smtp
from workflow.campaign import Campaign
from workflow.clock import SHANGHAI, FixedClock
from workflow.settings import Settings
from workflow.tables import ENTERPRISES, OUTBOX

MAIL_DOMAIN = "changzhou.example.com"


@pytest.fixture(autouse=True)
def _fresh_journal() -> None:
    JOURNAL.clear()  # what this process remembers of earlier tests' sends is not this test's business


def set_lang(engine: sa.Engine, firm_id: int, lang: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(ENTERPRISES).where(ENTERPRISES.c.id == firm_id).values(lang=lang))


def add_outbox(engine: sa.Engine, *, at: dt.datetime, **values: Any) -> int:
    row = {
        "audience": "enterprise",
        "lang": "zh-CN",
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": at,
        "created_at": at,
        "context": {},
        **values,
    }
    with engine.begin() as conn:
        result = conn.execute(sa.insert(OUTBOX).values(**row))
        assert result.inserted_primary_key is not None
        return int(result.inserted_primary_key[0])


def reminder(engine: sa.Engine, firm_id: int, *, at: dt.datetime, n: int = 1, **context: Any) -> int:
    """An outbox row as the deadline sweep writes it (no address: the firm's is looked up when sending)."""
    return add_outbox(
        engine,
        at=at,
        dedupe_key=f"reminder:key_field_start:enterprise:{firm_id}:{n}",
        kind="deadline_reminder",
        enterprise_id=firm_id,
        district_code="320412",
        context={
            "rule": "key_field_start",
            "deadline": "2022-12-31",
            "days_left": 7,
            "enterprise_name": "常州武进精细化工有限公司",
            "uscc": "91320412MA1XXXXXX0",
            "district_name": "武进区",
            **context,
        },
    )


def outbox_row(engine: sa.Engine, outbox_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.select(OUTBOX).where(OUTBOX.c.id == outbox_id)).one()


def rows_by_status(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {s: int(n) for s, n in conn.execute(sa.select(OUTBOX.c.status, sa.func.count()).group_by("status"))}


# ---- arrival ------------------------------------------------------------------------------------


def test_a_transition_mails_each_firm_in_its_own_language(engine: sa.Engine, campaign: Campaign) -> None:
    english = make_firm(engine, name="Changzhou Wujin Fine Chemicals Co., Ltd.", email="ehs@wujin-chem.example.com")
    chinese = make_firm(engine, name="常州武进精细化工有限公司", email="anquan@wujin-chem.example.com")
    set_lang(engine, english, "en")
    Driver(engine, campaign, english).fire("notify", Role.district_bureau)
    Driver(engine, campaign, chinese).fire("notify", Role.district_bureau)

    with running_smtp() as smtp:
        report = dispatch_once(engine, settings=smtp.settings(), clock=clock(), campaign=campaign)

    assert (report.claimed, report.sent) == (2, 2)
    [en] = smtp.inbox.to("ehs@wujin-chem.example.com")
    assert en.mail_from == MAIL_FROM
    assert en.message["To"] == "ehs@wujin-chem.example.com"
    assert en.message["Content-Language"] == "en"
    assert en.subject == (
        "[Compliance campaign] Changzhou Wujin Fine Chemicals Co., Ltd.: "
        "please start the safety-production compliance campaign"
    )
    assert "Dear 张三," in en.text() and "District: Wujin" in en.text()
    assert "Notified: 1 July 2022 12:00" in en.text()
    assert "Changzhou Wujin Fine Chemicals Co., Ltd." in en.html()

    [zh] = smtp.inbox.to("anquan@wujin-chem.example.com")
    assert zh.message["Content-Language"] == "zh-CN"
    assert zh.subject == "【达标创建】请常州武进精细化工有限公司启动安全生产达标企业创建"
    assert "张三同志：" in zh.text() and "所属辖区：武进区" in zh.text()

    with engine.connect() as conn:
        sent = conn.execute(sa.select(OUTBOX).where(OUTBOX.c.enterprise_id == english)).one()
    assert sent.status == "sent" and sent.sent_at == clock().now()
    assert en.message_id == sent.message_id == message_id_for(sent.dedupe_key, MAIL_DOMAIN)


def test_a_sweep_reminder_reaches_the_firm_from_the_directory(engine: sa.Engine, campaign: Campaign) -> None:
    firm = make_firm(engine, key_field=True, email="safety@changzhou-chem.example.com")
    now = clock().now()
    outbox_id = reminder(engine, firm, at=now)

    with running_smtp() as smtp:
        dispatch_once(engine, settings=smtp.settings(), clock=clock(), campaign=campaign)

    [mail] = smtp.inbox.messages
    assert mail.rcpt_tos == ("safety@changzhou-chem.example.com",)
    assert mail.subject == "【达标创建】提醒：“重点监管领域企业启动创建”还有7天截止（常州武进精细化工有限公司）"
    assert "期限为2022年12月31日，距截止还有 7 天" in mail.text()
    row = outbox_row(engine, outbox_id)
    assert row.status == "sent"
    assert row.to_address == "safety@changzhou-chem.example.com"  # where it went, kept with the row


def test_officials_get_the_campaign_mailboxes_and_a_firm_without_email_is_recorded(
    engine: sa.Engine, campaign: Campaign
) -> None:
    now = clock().now()
    silent = make_firm(engine, email=None)
    no_address = reminder(engine, silent, at=now)
    to_bureau = add_outbox(
        engine,
        at=now,
        dedupe_key="overdue:district:1",
        kind="deadline_overdue",
        audience="district_bureau",
        district_code="320412",
        context={
            "rule": "sla_verification",
            "deadline": "2022-06-20",
            "days_overdue": 11,
            "enterprise_name": "常州武进机械有限公司",
            "uscc": "91320412MA1YYYYYY1",
            "district_name": "武进区",
        },
    )
    to_city = add_outbox(
        engine,
        at=now,
        dedupe_key="overdue:city:1",
        kind="deadline_overdue",
        audience="city_bureau",
        lang="en",
        context={
            "rule": "sla_certification",
            "deadline": "2022-06-20",
            "days_overdue": 1,
            "enterprise_name": "Wujin Machinery",
            "uscc": "91320412MA1YYYYYY1",
            "district_name": "武进区",
        },
    )

    with running_smtp() as smtp:
        report = dispatch_once(engine, settings=smtp.settings(), clock=clock(), campaign=campaign)

    assert (report.sent, report.no_recipient) == (2, 1)
    [bureau] = smtp.inbox.to("yjj@wujin.example.com")
    assert bureau.message["To"].addresses[0].display_name == "武进区应急管理局"
    assert bureau.subject == "【达标创建】逾期上报：常州武进机械有限公司“辖市（区）应急管理局核实时限”已逾期11天"
    assert bureau.text().startswith("武进区应急管理局：")
    [city] = smtp.inbox.to(campaign.campaign.city_bureau_email)
    assert city.text().startswith("To the city emergency management bureau of Changzhou,")
    assert "is now 1 day overdue" in city.text()

    missing = outbox_row(engine, no_address)
    assert missing.status == "no_recipient"
    assert "no e-mail address" in missing.last_error
    assert {outbox_row(engine, i).status for i in (to_bureau, to_city)} == {"sent"}


# ---- failures -----------------------------------------------------------------------------------


def test_server_down_messages_wait_then_arrive_exactly_once(engine: sa.Engine, campaign: Campaign) -> None:
    firms = [make_firm(engine, email=f"firm{n}@example.com") for n in range(3)]
    now = clock().now()
    ids = [reminder(engine, firm, at=now) for firm in firms]
    at = clock()

    with running_smtp(started=False) as smtp:  # nobody listens on the port yet
        settings = smtp.settings()
        down = dispatch_once(engine, settings=settings, clock=at, campaign=campaign)
        assert (down.sent, down.retrying) == (0, 3)
        assert "cannot reach smtp://127.0.0.1" in (down.channel_error or "")
        for outbox_id in ids:
            row = outbox_row(engine, outbox_id)
            assert row.status == "pending" and row.attempts == 1
            assert "cannot reach" in row.last_error
            assert now + dt.timedelta(seconds=30) <= row.next_attempt_at <= now + dt.timedelta(seconds=60)

        assert dispatch_once(engine, settings=settings, clock=at, campaign=campaign).claimed == 0  # they wait

        smtp.start()
        at.advance(dt.timedelta(seconds=61))
        up = dispatch_once(engine, settings=settings, clock=at, campaign=campaign)
        again = dispatch_once(engine, settings=settings, clock=at, campaign=campaign)

    assert up.sent == 3 and again.claimed == 0
    assert sorted(m.rcpt_tos[0] for m in smtp.inbox.messages) == [f"firm{n}@example.com" for n in range(3)]
    assert set(smtp.inbox.copies_by_message_id().values()) == {1}
    assert all(outbox_row(engine, i).attempts == 2 for i in ids)


def test_a_failed_recording_after_sending_does_not_send_again(
    engine: sa.Engine, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    firm = make_firm(engine, email="once@example.com")
    outbox_id = reminder(engine, firm, at=clock().now())
    at = clock()

    def database_gone(*args: Any, **kwargs: Any) -> None:
        raise sa.exc.OperationalError("UPDATE outbox", {}, Exception("server closed the connection"))

    with running_smtp() as smtp:
        settings = smtp.settings()
        monkeypatch.setattr(dispatch_module, "_record", database_gone)
        with pytest.raises(sa.exc.OperationalError):
            dispatch_once(engine, settings=settings, clock=at, campaign=campaign)
        monkeypatch.undo()
        assert len(smtp.inbox.messages) == 1
        assert outbox_row(engine, outbox_id).status == "sending"  # the server has it; the database does not know

        at.advance(lease_for(settings) * 2)  # long past the lease: the row is up for grabs again
        report = dispatch_once(engine, settings=settings, clock=at, campaign=campaign)

    assert report.recovered == 1 and report.claimed == 0
    assert smtp.inbox.copies_by_message_id() == {outbox_row(engine, outbox_id).message_id: 1}
    row = outbox_row(engine, outbox_id)
    assert row.status == "sent" and row.sent_at == clock().now()


def test_after_a_real_crash_the_resend_carries_the_same_message_id(
    engine: sa.Engine, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process killed between the server's 250 and our commit leaves nothing behind to tell: delivery is at
    least once, and the second copy is recognisable as the same message."""
    firm = make_firm(engine, email="twice@example.com")
    outbox_id = reminder(engine, firm, at=clock().now())
    at = clock()

    def killed(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt  # stands in for the process dying

    with running_smtp() as smtp:
        settings = smtp.settings()
        monkeypatch.setattr(dispatch_module, "_record", killed)
        with pytest.raises(KeyboardInterrupt):
            dispatch_once(engine, settings=settings, clock=at, campaign=campaign)
        monkeypatch.undo()
        JOURNAL.clear()  # a new process remembers nothing

        not_yet = dispatch_once(engine, settings=settings, clock=at, campaign=campaign)
        at.advance(lease_for(settings) + dt.timedelta(seconds=1))
        retaken = dispatch_once(engine, settings=settings, clock=at, campaign=campaign)

    assert not_yet.claimed == 0  # inside the lease nobody touches it
    assert retaken.sent == 1
    row = outbox_row(engine, outbox_id)
    assert row.status == "sent" and row.attempts == 2
    assert smtp.inbox.copies_by_message_id() == {row.message_id: 2}


def test_a_refused_address_fails_alone_and_try_later_is_retried(engine: sa.Engine, campaign: Campaign) -> None:
    now = clock().now()
    good, bad, busy = (make_firm(engine, email=f"{who}@example.com") for who in ("good", "bad", "busy"))
    ids = {who: reminder(engine, firm, at=now) for who, firm in (("good", good), ("bad", bad), ("busy", busy))}
    at = clock()

    with running_smtp() as smtp:
        smtp.inbox.refuse["bad@example.com"] = "550 5.1.1 <bad@example.com>: mailbox unavailable"
        smtp.inbox.refuse["busy@example.com"] = "451 4.3.0 greylisted, try again later"
        settings = smtp.settings()
        first = dispatch_once(engine, settings=settings, clock=at, campaign=campaign)
        assert (first.sent, first.failed, first.retrying) == (1, 1, 1)

        bad_row, busy_row = outbox_row(engine, ids["bad"]), outbox_row(engine, ids["busy"])
        assert bad_row.status == "failed" and bad_row.last_error.startswith("550")
        assert busy_row.status == "pending" and busy_row.last_error.startswith("451")

        del smtp.inbox.refuse["busy@example.com"]
        at.advance(dt.timedelta(seconds=61))
        second = dispatch_once(engine, settings=settings, clock=at, campaign=campaign)

    assert (second.claimed, second.sent) == (1, 1)  # the failed one is not tried again
    assert sorted(m.rcpt_tos[0] for m in smtp.inbox.messages) == ["busy@example.com", "good@example.com"]
    assert outbox_row(engine, ids["busy"]).status == "sent"


def test_a_malformed_address_fails_that_message_only(engine: sa.Engine, campaign: Campaign) -> None:
    now = clock().now()
    broken = add_outbox(
        engine, at=now, dedupe_key="x:1", kind="application_received", to_address="not an address", enterprise_id=None
    )
    fine = reminder(engine, make_firm(engine, email="fine@example.com"), at=now)
    with running_smtp() as smtp:
        dispatch_once(engine, settings=smtp.settings(), clock=clock(), campaign=campaign)
    assert outbox_row(engine, broken).status == "failed"
    assert "invalid recipient address" in outbox_row(engine, broken).last_error
    assert outbox_row(engine, fine).status == "sent"
    assert [m.rcpt_tos for m in smtp.inbox.messages] == [("fine@example.com",)]


def test_after_the_last_attempt_a_message_fails_is_listed_and_can_be_retried(
    engine: sa.Engine, db_url: str, campaign: Campaign
) -> None:
    firm = make_firm(engine, email="greylisted@example.com")
    outbox_id = reminder(engine, firm, at=clock().now())
    at = clock()

    with running_smtp() as smtp:
        smtp.inbox.refuse["greylisted@example.com"] = "451 4.7.1 try again later"
        settings = smtp.settings(outbox_max_attempts=3, outbox_backoff_seconds=10)
        for _ in range(3):
            dispatch_once(engine, settings=settings, clock=at, campaign=campaign)
            at.advance(dt.timedelta(hours=1))
        row = outbox_row(engine, outbox_id)
        assert row.status == "failed" and row.attempts == 3
        assert "gave up after 3 attempts" in row.last_error

        runner = CliRunner()
        listed = runner.invoke(main, ["--database-url", db_url, "outbox", "list", "--status", "failed", "--json"])
        assert listed.exit_code == 0, listed.output
        [entry] = json.loads(listed.output)
        assert (entry["id"], entry["kind"], entry["to_address"]) == (outbox_id, "deadline_reminder", row.to_address)
        assert "451 4.7.1" in entry["last_error"]

        retried = runner.invoke(main, ["--database-url", db_url, "outbox", "retry", str(outbox_id)])
        assert retried.exit_code == 0, retried.output
        assert "queued again (was failed)" in retried.output
        row = outbox_row(engine, outbox_id)
        assert (row.status, row.attempts) == ("pending", 0)

        del smtp.inbox.refuse["greylisted@example.com"]
        report = dispatch_once(engine, settings=settings, clock=FixedClock(row.next_attempt_at), campaign=campaign)

    assert report.sent == 1 and len(smtp.inbox.messages) == 1
    again = CliRunner().invoke(main, ["--database-url", db_url, "outbox", "retry", str(outbox_id)])
    assert again.exit_code == 1 and "was sent" in again.output


def test_retry_all_failed_puts_every_failed_message_back(engine: sa.Engine, db_url: str) -> None:
    now = clock().now()
    failed = [
        add_outbox(engine, at=now, dedupe_key=f"f:{n}", kind="application_received", status="failed") for n in range(3)
    ]
    sent = add_outbox(engine, at=now, dedupe_key="s:1", kind="application_received", status="sent", sent_at=now)
    result = CliRunner().invoke(main, ["--database-url", db_url, "outbox", "retry", "--all-failed"])
    assert result.exit_code == 0, result.output
    assert [outbox_row(engine, i).status for i in failed] == ["pending"] * 3
    assert outbox_row(engine, sent).status == "sent"


def test_backoff_doubles_with_jitter_up_to_the_maximum() -> None:
    settings = Settings(outbox_backoff_seconds=60, outbox_backoff_max_seconds=600)
    low = [backoff_delay(n, settings=settings, rng=lambda: 0.0).total_seconds() for n in range(1, 7)]
    high = [backoff_delay(n, settings=settings, rng=lambda: 1.0).total_seconds() for n in range(1, 7)]
    assert high == [60, 120, 240, 480, 600, 600]
    assert low == [30, 60, 120, 240, 300, 300]
    assert backoff_delay(1000, settings=settings, rng=lambda: 1.0).total_seconds() == 600


@dataclass
class SteppingClock:
    """Each look at the clock finds it `step` later: a batch that takes longer than its lease."""

    at: dt.datetime
    step: dt.timedelta
    tz: ZoneInfo = field(default=SHANGHAI)

    def now(self) -> dt.datetime:
        current = self.at
        self.at += self.step
        return current


def test_rows_are_handed_back_unsent_when_the_lease_runs_out(engine: sa.Engine, campaign: Campaign) -> None:
    now = clock().now()
    ids = [reminder(engine, make_firm(engine, email=f"slow{n}@example.com"), at=now) for n in range(3)]
    with running_smtp() as smtp:
        settings = smtp.settings()
        slow = SteppingClock(now, lease_for(settings))
        report = dispatch_once(engine, settings=settings, clock=slow, campaign=campaign)
    assert (report.claimed, report.released, report.sent) == (3, 3, 0)
    assert smtp.inbox.messages == []
    for outbox_id in ids:
        row = outbox_row(engine, outbox_id)
        assert (row.status, row.attempts, row.claimed_by) == ("pending", 0, None)


# ---- SMTP options -------------------------------------------------------------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate for the STARTTLS server")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_starttls_and_login_from_the_settings(
    engine: sa.Engine, campaign: Campaign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts our test certificate, and only it
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"dabiao", b"s3cret")
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself

    now = clock().now()
    first = reminder(engine, make_firm(engine, email="tls@example.com"), at=now)
    with running_smtp(tls_context=server_tls, require_starttls=True, authenticator=authenticator) as smtp:
        wrong = smtp.settings(smtp_starttls=True, smtp_user="dabiao", smtp_password="wrong")
        refused = dispatch_once(engine, settings=wrong, clock=clock(), campaign=campaign)
        assert refused.retrying == 1 and "login refused" in (refused.channel_error or "")
        assert outbox_row(engine, first).status == "pending"

        right = smtp.settings(smtp_starttls=True, smtp_user="dabiao", smtp_password="s3cret")
        at = clock()
        at.advance(dt.timedelta(minutes=5))
        accepted = dispatch_once(engine, settings=right, clock=at, campaign=campaign)

    assert accepted.sent == 1
    assert [m.rcpt_tos for m in smtp.inbox.messages] == [("tls@example.com",)]


def test_implicit_tls_and_starttls_together_are_refused_before_anything_is_claimed(
    engine: sa.Engine, db_url: str, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox_id = reminder(engine, make_firm(engine), at=clock().now())
    contradictory = Settings(smtp_host="127.0.0.1", smtp_tls=True, smtp_starttls=True)
    with pytest.raises(BadSmtpSettings, match="exclude each other"):
        dispatch_once(engine, settings=contradictory, clock=clock(), campaign=campaign)
    assert outbox_row(engine, outbox_id).status == "pending"

    monkeypatch.setenv("DABIAO_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("DABIAO_SMTP_TLS", "true")
    monkeypatch.setenv("DABIAO_SMTP_STARTTLS", "true")
    result = CliRunner().invoke(main, ["--database-url", db_url, "dispatch"])
    assert result.exit_code == 1 and "exclude each other" in result.output


def test_the_dispatch_command_sends_and_prints_counts(
    engine: sa.Engine, db_url: str, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    firm = make_firm(engine, email="cli@example.com")
    reminder(engine, firm, at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    with running_smtp() as smtp:
        monkeypatch.setenv("DABIAO_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("DABIAO_SMTP_PORT", str(smtp.port))
        result = CliRunner().invoke(main, ["--database-url", db_url, "dispatch"])
    assert result.exit_code == 0, result.output
    assert "sent 1, retrying 0, failed 0, no recipient 0" in result.output
    assert f"smtp://127.0.0.1:{smtp.port}" in result.output
    assert [m.rcpt_tos for m in smtp.inbox.messages] == [("cli@example.com",)]


def test_a_row_left_sending_on_its_last_attempt_fails_instead_of_going_round_again(
    engine: sa.Engine, campaign: Campaign
) -> None:
    now = clock().now()
    outbox_id = reminder(engine, make_firm(engine, email="last@example.com"), at=now)
    with engine.begin() as conn:  # a dispatcher died mid-send on attempt 8 of 8, long ago
        conn.execute(
            sa.update(OUTBOX)
            .where(OUTBOX.c.id == outbox_id)
            .values(status="sending", attempts=8, claimed_by="gone:1:x", claimed_until=now - dt.timedelta(hours=1))
        )
    with running_smtp() as smtp:
        report = dispatch_once(engine, settings=smtp.settings(outbox_max_attempts=8), clock=clock(), campaign=campaign)
    assert (report.claimed, report.failed) == (1, 1)
    assert smtp.inbox.messages == []
    row = outbox_row(engine, outbox_id)
    assert row.status == "failed" and "gave up after 8 attempts" in row.last_error
