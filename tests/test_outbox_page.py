"""The outbox page in words: the kind of mail by name, the recipient office or firm by name, why a message did
not go out in plain language, truthful counts (a message nobody can receive is 无法送达, never sent), and the
city bureau's 重新发送 — recorded, and the same service as `dabiao outbox retry`."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from tests.api_helpers import ELSEWHERE, HOME, World
from tests.test_pages_access import Browser
from workflow.tables import OUTBOX, OUTBOX_RETRIES


def mail(world: World, key: str, **values: Any) -> int:
    row = {
        "dedupe_key": key,
        "kind": "application_received",
        "audience": "enterprise",
        "enterprise_id": world.firms["home_key"],
        "district_code": HOME,
        "to_address": None,
        "lang": "zh-CN",
        "context": {},
        "status": "failed",
        "attempts": 1,
        "created_at": world.clock.now(),
    } | values
    with world.engine.begin() as conn:
        result = conn.execute(sa.insert(OUTBOX).values(**row))
        assert result.inserted_primary_key is not None
        return int(result.inserted_primary_key[0])


@pytest.fixture
def mails(world: World) -> dict[str, int]:
    return {
        "bad_address": mail(
            world,
            "a",
            to_address="not an address",
            last_error="invalid recipient address 'not an address': The email address is not valid.",
        ),
        "refused": mail(
            world,
            "b",
            kind="deadline_overdue",
            audience="district_bureau",
            enterprise_id=None,
            to_address="wujin@example.com",
            last_error="550 5.1.1 mailbox unavailable (gave up after 8 attempts)",
        ),
        "down": mail(
            world,
            "c",
            kind="district_digest",
            audience="district_bureau",
            enterprise_id=None,
            status="pending",
            last_error="cannot reach smtp://mail.example.com:25: [Errno 111] Connection refused",
        ),
        "nobody": mail(
            world,
            "d",
            kind="mobilization_notice",
            enterprise_id=world.firms["home_other"],
            status="no_recipient",
            last_error="no recipient: the firm has no e-mail address in the directory",
        ),
        "sent": mail(world, "e", status="sent", to_address="boss@example.com", sent_at=world.clock.now()),
        "elsewhere": mail(
            world, "f", enterprise_id=world.firms["away_key"], district_code=ELSEWHERE, last_error="550 no"
        ),
    }


def row_of(html: str, outbox_id: int) -> str:
    start = html.index(f'data-outbox="{outbox_id}"')
    return html[start : html.index("</tr>", start)]


def test_the_outbox_speaks_in_words(world: World, mails: dict[str, int]) -> None:
    html = Browser(world, "city").get("/outbox").text
    assert "application_received" not in html and "在命令行中重试" not in html
    assert f"#{world.firms['home_key']}" not in html

    bad = row_of(html, mails["bad_address"])
    assert "达标申请已提交" in bad and "收件地址无效" in bad and "常州&lt;武进&gt;&amp;&#34;化工&#34;有限公司" in bad
    refused = row_of(html, mails["refused"])
    assert "逾期通知" in refused and "武进区应急管理局" in refused and "邮件服务器拒收" in refused
    assert "550" not in refused
    down = row_of(html, mails["down"])
    assert "辖区每日汇总" in down and "无法连接邮件服务器" in down and "Errno" not in down
    nobody = row_of(html, mails["nobody"])
    assert "无法送达" in nobody and "企业名录中没有该企业的电子邮箱" in nobody
    assert f'data-outbox="{mails["sent"]}"' not in html

    # the counts: three failed (two here, one in another district), one undeliverable, one waiting; the sent
    # message is none of them, and the undeliverable one is not counted as sent
    def count(page: str, status: str) -> str:
        start = page.index(f'data-status="{status}"')
        return page[start : page.index("</div>", start)]

    assert ">3<" in count(html, "failed") and ">1<" in count(html, "no_recipient") and ">1<" in count(html, "pending")

    district = Browser(world, "wujin").get("/outbox").text
    assert f'data-outbox="{mails["elsewhere"]}"' not in district  # another district's mail
    assert ">2<" in count(district, "failed")
    assert "重新发送" not in district  # the retry is the city bureau's

    english = Browser(world, "city").get("/outbox?lang=en").text
    assert "Invalid recipient address" in row_of(english, mails["bad_address"])
    assert "Application received" in row_of(english, mails["bad_address"])


def test_the_city_retries_a_message_and_the_retry_is_recorded(world: World, mails: dict[str, int]) -> None:
    city = Browser(world, "city")
    assert "重新发送" in row_of(city.get("/outbox").text, mails["bad_address"])
    answer = city.post(f"/outbox/{mails['refused']}/retry")
    assert answer.status_code == 303 and answer.headers["location"] == "/outbox"
    with world.engine.connect() as conn:
        row = conn.execute(sa.select(OUTBOX).where(OUTBOX.c.id == mails["refused"])).one()
        [retry] = conn.execute(sa.select(OUTBOX_RETRIES)).all()
    assert (row.status, row.attempts) == ("pending", 0)
    assert (retry.outbox_id, retry.retried_by, retry.was_status) == (mails["refused"], "city", "failed")
    assert "550 5.1.1" in (retry.was_error or "")

    sent = city.post(f"/outbox/{mails['sent']}/retry")
    assert sent.status_code == 409 and "已于" in sent.text and "发出" in sent.text
    no_token = city.client.post(f"/outbox/{mails['nobody']}/retry")
    assert no_token.status_code in (400, 403)
    assert Browser(world, "wujin").post(f"/outbox/{mails['nobody']}/retry").status_code == 403
    assert Browser(world, "center").post(f"/outbox/{mails['nobody']}/retry").status_code == 403
    with world.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(OUTBOX_RETRIES)).scalar_one() == 1
        status = conn.execute(sa.select(OUTBOX.c.status).where(OUTBOX.c.id == mails["nobody"])).scalar_one()
    assert status == "no_recipient"


def test_the_retry_record_is_append_only(world: World, mails: dict[str, int]) -> None:
    Browser(world, "city").post(f"/outbox/{mails['bad_address']}/retry")
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), world.engine.begin() as conn:
        conn.execute(sa.update(OUTBOX_RETRIES).values(retried_by="someone else"))
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), world.engine.begin() as conn:
        conn.execute(sa.delete(OUTBOX_RETRIES))
