"""Rendering a page: the Jinja2 environment of the request's language, and what every page knows (who is
signed in, the CSRF token, the navigation, the language switch, a notice left by the last form)."""

from __future__ import annotations

import gettext
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import AppContext
from api.errors import status_of
from api.pages.access import FLASH_COOKIE, LANG_COOKIE, SESSION_COOKIE, csrf_token
from api.pages.i18n import LANG_NAMES, LANGS, N_, Formats, bilingual, filters, load_translations, pick_lang
from api.pages.worklink import work_links
from api.reads import read_from
from states import NotAllowed, NotFound, Role, WorkflowError
from workflow.clock import today
from workflow.dashboard import HistoryCache

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
STATIC = Path(__file__).resolve().parents[1] / "static"

ROLE_LABELS = {
    Role.city_bureau: N_("市应急管理局"),
    Role.support_center: N_("市应急保障中心"),
    Role.district_bureau: N_("辖市（区）应急管理局"),
    Role.reviewer: N_("评定人员"),
    Role.enterprise: N_("企业"),
    Role.local_government: N_("属地政府"),
}

# Notices a form leaves for the next page (the cookie holds only one of these keys, never free text).
NOTICES = {
    "signed_out": N_("您已退出登录。"),
    "fired": N_("操作已完成。"),
    "self_assessment": N_("自评已保存。"),
    "hazard_added": N_("隐患已登记。"),
    "hazard_saved": N_("隐患“五落实”已保存。"),
    "hazard_rectified": N_("隐患已标记为整改完成。"),
    "uploaded": N_("文件已上传。"),
    "scored": N_("评分已提交。"),
    "team": N_("评审组已抽取。"),
    "review_recorded": N_("评审结果已录入。"),
    "recused": N_("已申请回避，已另行抽取评定人员。"),
    "report_filed": N_("违规情况已报告市应急保障中心。"),
    "report_decided": N_("报告已处理。"),
    "referral": N_("移交记录已更新。"),
    "acknowledged": N_("督办事项已签收。"),
    "mail_retried": N_("邮件已重新排队，将在下一轮发送时发出。"),
    "account": N_("账号已更新。"),
    "benchmark": N_("标杆企业名单已更新。"),
    "prior_certificate": N_("原标准化证书情况已录入。"),
    "inspection": N_("检查记录已保存。"),
    "training": N_("培训记录已保存。"),
    "guidance": N_("派驻与走访记录已保存。"),
    "no_more_tasks": N_("任务列表中已没有下一项。"),
}


@dataclass
class Pages:
    """What the pages keep for the app's lifetime."""

    envs: dict[str, jinja2.Environment]
    translations: dict[str, gettext.NullTranslations]
    history: HistoryCache
    static_versions: dict[str, str]


def static_versions() -> dict[str, str]:
    """A content hash per static file, so a changed file gets a new URL and old ones can be cached."""
    return {
        path.relative_to(STATIC).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()[:10]
        for path in STATIC.rglob("*")
        if path.is_file()
    }


def build_pages(tz: ZoneInfo) -> Pages:
    translations = load_translations()
    envs = {}
    for lang in LANGS:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.install_gettext_translations(translations[lang], newstyle=True)  # type: ignore[attr-defined]
        env.filters.update(filters(Formats(lang=lang, tz=tz), translations[lang].gettext))
        envs[lang] = env
    return Pages(envs=envs, translations=translations, history=HistoryCache(), static_versions=static_versions())


def pages_of(request: Request) -> Pages:
    pages: Pages = request.app.state.pages
    return pages


def context_of(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


def lang_of(request: Request) -> str:
    user = getattr(request.state, "user", None)
    return pick_lang(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        getattr(user, "lang", None),
        (request.headers.get("accept-language") or "").split(",")[0].strip() or None,
    )


def gettext_of(request: Request) -> Any:
    return pages_of(request).translations[lang_of(request)].gettext


def formats_of(request: Request) -> Formats:
    return Formats(lang=lang_of(request), tz=context_of(request).clock.tz)


def message(request: Request, text: str) -> str:
    """A service's "中文 / English" message in the request's language."""
    return bilingual(text, lang_of(request))


def refusal(request: Request, exc: WorkflowError) -> tuple[str, int]:
    """How every page shows a service's refusal of a form. A record that does not exist (or lies outside
    the caller's scope) and a role that may not act are the error pages' business: raised again, with the
    status api/errors.py gives it. Anything else comes back on the form's page: (the service's message in
    the request's language, the same status the API answers)."""
    if isinstance(exc, NotFound | NotAllowed):
        raise exc
    return message(request, str(exc)), status_of(exc)


def query_url(path: str, **params: Any) -> str:
    """A link with query parameters; None leaves a parameter out, booleans are true/false."""
    pairs = [(k, ("true" if v else "false") if isinstance(v, bool) else v) for k, v in params.items() if v is not None]
    return path + ("?" + urlencode(pairs) if pairs else "")


def _nav(user: Any) -> list[tuple[str, str]]:
    if user is None:
        return []
    match Role(user.role):
        case Role.city_bureau | Role.support_center:
            return [
                ("/dashboard", N_("全市总览")),
                ("/firms", N_("企业名录")),
                ("/work", N_("待办")),
                ("/escalations", N_("督办事项")),
                ("/referrals", N_("移交属地")),
                *([("/guidance", N_("标杆培育"))] if Role(user.role) is Role.city_bureau else []),
                ("/reviewer-reports", N_("评审专家监督")),
                ("/outbox", N_("邮件队列")),
            ] + (
                [("/lists", N_("公布名单")), ("/users", N_("账号管理"))] if Role(user.role) is Role.city_bureau else []
            )
        case Role.district_bureau:
            return [
                (f"/districts/{user.district_code}", N_("本辖区总览")),
                ("/firms", N_("企业名录")),
                ("/work", N_("待办")),
                ("/escalations", N_("督办事项")),
                ("/referrals", N_("移交属地")),
                ("/guidance", N_("标杆培育")),
                ("/reviewer-reports", N_("评审专家监督")),
                ("/outbox", N_("邮件队列")),
            ]
        case Role.enterprise:
            return [(f"/firms/{user.enterprise_id}", N_("本企业"))]
        case Role.reviewer:
            return [("/reviews", N_("评审任务")), ("/work", N_("待办"))]
        case Role.local_government:
            return [("/referrals", N_("移交名单"))]
    return []


def home_of(user: Any) -> str:
    nav = _nav(user)
    return nav[0][0] if nav else "/login"


def render(request: Request, template: str, *, status: int = 200, **values: Any) -> HTMLResponse:
    pages, context = pages_of(request), context_of(request)
    lang = lang_of(request)
    env = pages.envs[lang]
    gettext_ = pages.translations[lang].gettext
    formats = Formats(lang=lang, tz=context.clock.tz)
    user = getattr(request.state, "user", None)
    session = request.cookies.get(SESSION_COOKIE)
    flash = request.cookies.get(FLASH_COOKIE)
    path = request.url.path
    work_nav = work_links(request)
    current = "/work" if work_nav else path  # a firm opened from the task list keeps 待办 lit

    def static(name: str) -> str:
        return f"/static/{name}?v={pages.static_versions.get(name, '0')}"

    def lang_url(target: str) -> str:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"] + [("lang", target)]
        return path + "?" + urlencode(params)

    read = read_from(request)
    lagging = read is not None and (read.lag_seconds or 0) > context.settings.replica_lag_notice_seconds
    common = {
        "request_path": path,
        # read from the standby while it lags: the page says up to when its data goes (a local setting says
        # how far behind counts as lagging: DABIAO_REPLICA_LAG_NOTICE_SECONDS)
        "data_as_of": read.as_of.astimezone(context.clock.tz) if lagging and read and read.as_of else None,
        "lang": lang,
        "langs": [(code, LANG_NAMES[code], lang_url(code)) for code in LANGS if code != lang],
        "user": user,
        "role": Role(user.role) if user is not None else None,
        "role_label": gettext_(ROLE_LABELS[Role(user.role)]) if user is not None else "",
        "nav": [
            (href, gettext_(label), current == href or current.startswith(href + "/")) for href, label in _nav(user)
        ],
        "work_nav": work_nav,
        "csrf": csrf_token(session) if session and user is not None else "",
        "notice": gettext_(NOTICES[flash]) if flash in NOTICES else None,
        "campaign": context.campaign,
        "today": today(context.clock),
        "static": static,
        "url": query_url,
        "fmt": formats,
        "to_json": lambda value: json.dumps(value, ensure_ascii=False, default=str),
    }
    html = env.get_template(template).render({**common, **values})
    response = HTMLResponse(html, status_code=status)
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def redirect(url: str, *, notice: str | None = None) -> RedirectResponse:
    """After a form: see the result on a fresh page (303), with a notice from NOTICES."""
    response = RedirectResponse(url, status_code=303)
    if notice is not None:
        response.set_cookie(FLASH_COOKIE, notice, max_age=60, httponly=True, samesite="lax", path="/")
    return response


def no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response
