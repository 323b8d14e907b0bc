"""The firm page as a bureau's daily tool: scores written one way everywhere, the history in words (records
of the chain by their names, office and person instead of logins), the 消息 tab showing only the firm's own
notices, a returned application answered at the top of the page, and destructive actions confirmed with the
firm's name on the page and the API alike."""

from __future__ import annotations

import ast
import datetime as dt
import html
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from api.pages.i18n import Formats
from notifications.outbox import firm_messages
from notifications.render import Renderer
from states import GUARDS, NotFound, Role
from states.numbers import score_text
from tests.api_helpers import ELSEWHERE, HOME, World
from tests.factories import Driver
from tests.test_pages_access import Browser
from tests.test_pages_forms import upload
from workflow.accounts import NewUser, create_user
from workflow.actors import Actor
from workflow.clock import SHANGHAI
from workflow.labels import RECORD_KINDS
from workflow.models import ReviewDrawKind
from workflow.tables import ENTERPRISES, OUTBOX
from workflow.trainings import KINDS as TRAINING_KINDS

ROOT = Path(__file__).resolve().parents[1]


def words(page: str) -> str:
    """A page's text as a reader sees it: tags out, entities decoded, spaces collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


# ---- scores: one decimal, half up (四舍五入), the same on pages, in mail and in refusals -----------------

SCORES = [  # (stored, shown)
    (89.13, "89.1"),  # a team's weighted mean, stored with two decimals
    (89.0, "89.0"),  # never "89" in mail and "89.0" on the page
    (60, "60.0"),
    (74.95, "75.0"),  # half up, not the float's 74.9499…
    (89.35, "89.4"),
    (89.25, "89.3"),  # half up, not half even
    (100, "100.0"),
    (0, "0.0"),
]


@pytest.mark.parametrize(("stored", "shown"), SCORES)
def test_a_score_reads_the_same_on_pages_in_mail_and_in_refusals(stored: float, shown: str) -> None:
    assert score_text(stored) == shown
    assert Formats(lang="zh-CN", tz=SHANGHAI).score(stored) == shown
    assert Formats(lang="en", tz=SHANGHAI).score(stored) == shown
    mail = Renderer()._text.from_string("{{ s|score }}").render(s=stored)
    assert mail == shown
    facts = SimpleNamespace(review_score=stored, pass_score=95.0)
    reason = GUARDS["review_passed"].reason(facts)
    assert reason.startswith(f"评审得分 {shown} 未达到 95 分")


def test_no_score_is_a_dash() -> None:
    assert score_text(None) == "–" and Formats(lang="zh-CN", tz=SHANGHAI).score(None) == "–"


# ---- the history in words -------------------------------------------------------------------------

RECORD_NAMES = {  # kind → the name the history shows (zh)
    "self_assessment_recorded": "自评已保存",
    "hazard_reported": "登记隐患",
    "hazard_rectified": "隐患整改完成",
    "rectification_accepted": "整改验收通过",
    "evidence_uploaded": "上传文件",
    "review_draw_team": "已随机抽取评审组",
    "reviewer_recused": "评定人员回避",
    "training_attended": "参加专项培训",
    "inspection_onsite": "现场检查",
    "guidance_visit": "帮扶走访",
    "benchmark_named": "已列入标杆企业名单",
    "referral_confirmed": "确认移交属地政府",
}


@pytest.mark.parametrize(("kind", "name"), sorted(RECORD_NAMES.items()))
def test_a_record_of_the_chain_has_its_name_in_both_languages(kind: str, name: str) -> None:
    assert Formats(lang="zh-CN", tz=SHANGHAI).trigger(kind) == name
    english = Formats(lang="en", tz=SHANGHAI).trigger(kind)
    assert english != kind and not re.search(r"[\u4e00-\u9fff]", english)


# the functions that hand their `kind=` to `record_event` (workflow/pool.py: a reviewer leaving a team)
PASS_KIND_ON = {"record_event", "_leave_and_replace"}


def _recorded_kinds() -> set[str]:
    """Every record kind the code writes: the literal `kind=` (or both literals of `a if c else b`) of each call
    of `record_event` or of a function passing it on, and the kinds built from a code (`review_draw_<kind>`,
    `<training>_attended`, `inspection_<kind>`, `guidance_visit`)."""
    kinds: set[str] = set()
    for path in [*ROOT.glob("workflow/*.py"), *ROOT.glob("deadlines/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            if getattr(node.func, "id", getattr(node.func, "attr", "")) not in PASS_KIND_ON:
                continue
            for keyword in node.keywords:
                if keyword.arg != "kind":
                    continue
                value = keyword.value
                branches = [value.body, value.orelse] if isinstance(value, ast.IfExp) else [value]
                kinds |= {str(b.value) for b in branches if isinstance(b, ast.Constant)}
    kinds |= {f"review_draw_{k.value}" for k in ReviewDrawKind}
    kinds |= {f"{k}_attended" for k in TRAINING_KINDS}
    kinds |= {"inspection_onsite", "inspection_online", "guidance_visit"}
    return kinds


def test_every_record_the_code_writes_has_a_name() -> None:
    missing = sorted(k for k in _recorded_kinds() if k not in RECORD_KINDS)
    assert missing == []
    assert {"hazard_reported", "referral_withdrawn", "reviewer_disqualified", "guidance_assigned"} <= _recorded_kinds()


def _officer(world: World, username: str, name: str, district: str) -> None:
    with Session(world.engine) as session:
        create_user(
            session,
            new=NewUser(
                username=username,
                password="correct horse battery",
                role=Role.district_bureau,
                display_name=name,
                district_code=district,
            ),
            clock=world.clock,
        )


def test_the_history_names_office_and_person_and_the_records_by_their_names(world: World) -> None:
    firm_id = world.firms["home_other"]
    _officer(world, "wj-zhang", "张某", HOME)
    assert world.fire(firm_id, "notify", "wj-zhang").status_code == 200
    assert world.fire(firm_id, "start_self_assessment", "firm_other").status_code == 200
    firm = Browser(world, "firm_other")
    assert upload(firm, firm_id, "报告.pdf", "self_assessment_report").status_code == 303
    page = Browser(world, "wujin").get(f"/firms/{firm_id}").text
    history = words(page.split('id="history"')[1])
    assert "发送动员通知 武进区应急管理局 · 张某" in history  # not the login wj-zhang
    assert "wj-zhang" not in history
    name = _firm_name(world, firm_id)
    assert f"启动创建、开始自评 已动员 → 自评中 {name}" in history  # the firm's account shows as the firm
    assert "上传文件" in history and "报告.pdf" in history


def _firm_name(world: World, firm_id: int) -> str:
    with world.engine.connect() as conn:
        return str(conn.execute(sa.select(ENTERPRISES.c.name).where(ENTERPRISES.c.id == firm_id)).scalar_one())


# ---- the 消息 tab: the firm's own notices, for itself and the offices in scope --------------------------


def _mail(world: World, firm_id: int, kind: str, audience: str, status: str, context: dict[str, Any]) -> None:
    with world.engine.begin() as conn:
        conn.execute(
            sa.insert(OUTBOX).values(
                dedupe_key=f"test:{firm_id}:{kind}:{audience}",
                kind=kind,
                audience=audience,
                enterprise_id=firm_id,
                to_address="boss@example.com" if status == "sent" else None,
                status=status,
                context=context,
                created_at=dt.datetime(2022, 6, 1, 2, 30, tzinfo=dt.UTC),
            )
        )


def test_the_messages_tab_shows_a_firms_own_notices_and_never_another_firms(world: World) -> None:
    mine, other, away = world.firms["home_key"], world.firms["home_other"], world.firms["away_key"]
    for firm_id in (other, away):
        assert world.fire(firm_id, "notify", "city").status_code == 200  # a mobilization notice to each firm
    Driver(world.engine, world.campaign, mine).to_applied()  # notified, applied …
    returned = world.fire(mine, "return_application", "wujin", {"reason": "材料不全", "missing": []})
    assert returned.status_code == 200  # … and returned: three notices to the firm
    with world.engine.begin() as conn:  # the return could not be delivered
        conn.execute(sa.update(OUTBOX).where(OUTBOX.c.kind == "application_returned").values(status="no_recipient"))
    _mail(world, mine, "deadline_overdue", "district_bureau", "sent", {"rule": "key_field_started"})  # to the office
    renderer = Renderer(campaign=world.campaign)

    def seen(actor: Actor, firm_id: int) -> list[tuple[int, str]]:
        with world.engine.connect() as conn:
            total, items = firm_messages(conn, actor=actor, enterprise_id=firm_id, renderer=renderer)
        assert total == len(items)
        with world.engine.connect() as conn:
            ids = {
                int(i): int(e)
                for i, e in conn.execute(
                    sa.select(OUTBOX.c.id, OUTBOX.c.enterprise_id).where(OUTBOX.c.id.in_([m.id for m in items]))
                )
            }
        return [(ids[m.id], m.kind) for m in items]

    firm = Actor("firm", Role.enterprise, enterprise_id=mine)
    assert seen(firm, mine) == [
        (mine, "application_returned"),
        (mine, "application_received"),
        (mine, "mobilization_notice"),
    ]
    with pytest.raises(NotFound):
        seen(firm, other)  # another firm's messages are not its to see
    wujin = Actor("wujin", Role.district_bureau, district_code=HOME)
    assert {e for e, _ in seen(wujin, mine)} == {mine}
    with pytest.raises(NotFound):
        seen(Actor("liyang", Role.district_bureau, district_code=ELSEWHERE), mine)
    assert {e for e, _ in seen(Actor("city", Role.city_bureau), away)} == {away}

    page = Browser(world, "firm").get(f"/firms/{mine}/messages")
    assert page.status_code == 200
    text = words(page.text)
    assert "无法送达（没有电子邮箱）" in text and "application_returned" not in text
    assert _firm_name(world, other) not in text
    assert Browser(world, "firm").get(f"/firms/{other}/messages").status_code == 404
    assert Browser(world, "liyang").get(f"/firms/{mine}/messages").status_code == 404


# ---- a returned application at the top; destructive actions confirmed with the name ---------------------


def test_a_returned_firm_reads_why_and_what_is_missing_before_it_may_submit_again(world: World) -> None:
    firm_id = world.firms["home_key"]
    Driver(world.engine, world.campaign, firm_id).to_applied()
    returned = world.fire(
        firm_id, "return_application", "wujin", {"reason": "佐证材料不清晰", "missing": ["supporting_material"]}
    )
    assert returned.status_code == 200
    firm = Browser(world, "firm")
    page = firm.get(f"/firms/{firm_id}").text
    top = page.split('id="next"')[1].split('id="status"')[0]
    assert "申请已被退回" in top and "佐证材料不清晰" in top and "佐证材料" in top and "尚未补正" in top
    assert f'action="/firms/{firm_id}/transitions/submit_application"' not in page  # not offered as if nothing happened
    assert "先补正：佐证材料" in top
    assert upload(firm, firm_id, "照片.pdf", "supporting_material").status_code == 303
    page = firm.get(f"/firms/{firm_id}").text
    assert f'action="/firms/{firm_id}/transitions/submit_application"' in page
    assert "重新提交达标申请" in page and "已于" in page


def test_closing_a_firm_needs_its_name_on_the_page_and_the_api(world: World) -> None:
    firm_id = world.firms["home_other"]
    name = _firm_name(world, firm_id)
    district = Browser(world, "wujin")
    page = district.get(f"/firms/{firm_id}").text
    panel = page.split('id="action-close"')[1].split("</form>")[0]
    assert "danger" in page.split('id="action-close"')[0].rsplit("<form", 1)[1]
    assert 'name="confirm_name"' in panel and "关闭（停产、搬迁）的理由（必填）" in panel
    assert page.count("理由（必填）") == page.count('name="reason"')  # each reason box its own label

    def close(**data: str) -> Any:
        version = world.firm(firm_id, "city")["version"]
        return district.post(f"/firms/{firm_id}/transitions/close", data={"version": str(version), **data})

    wrong = close(reason="企业已搬迁", confirm_name="常州市别的公司")
    assert wrong.status_code == 422 and f"与“{name}”不符" in wrong.text
    assert close(reason="企业已搬迁").status_code == 422
    api = world.fire(firm_id, "close", "wujin", {"reason": "企业已搬迁"}, confirm_name="常州市别的公司")
    assert api.status_code == 422 and api.json()["code"] == "invalid_input"
    assert f"与“{name}”不符" in api.json()["message_zh"]
    assert world.fire(firm_id, "close", "wujin", {"reason": "企业已搬迁"}, confirm_name=None).status_code == 422
    outsider = world.fire(firm_id, "close", "liyang", {"reason": "企业已搬迁"}, confirm_name=None)
    assert outsider.status_code == 404 and name not in outsider.text  # nobody out of scope learns the name
    assert world.firm(firm_id, "city")["state"] != "closed"

    done = close(reason="企业已搬迁", confirm_name=f"  {name} ".replace("（", "(").replace("）", ")"))
    assert done.status_code == 303
    shown = words(district.get(done.headers["location"]).text)
    assert f"“关闭（停产、搬迁）”已完成：{name}。" in shown
    assert world.firm(firm_id, "city")["state"] == "closed"


def test_the_next_step_after_verifying_a_key_field_firm_is_the_support_centers_audit(world: World) -> None:
    firm_id = world.firms["home_key"]  # 重点监管领域企业…由市应急保障中心负责进行线上审核
    Driver(world.engine, world.campaign, firm_id).to_applied()
    district = Browser(world, "wujin")
    version = world.firm(firm_id, "city")["version"]
    done = district.post(
        f"/firms/{firm_id}/transitions/verify", data={"version": str(version), "opinion": "材料齐全，情况属实"}
    )
    assert done.status_code == 303
    shown = words(district.get(done.headers["location"]).text)
    assert f"“核实申请”已完成：{_firm_name(world, firm_id)}。 下一步：常州市应急保障中心 线上审核" in shown
