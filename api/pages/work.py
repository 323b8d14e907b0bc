"""The task list (待办): everything waiting on the signed-in office, searched, filtered, sorted and paged by
`deadlines.tasks` (the API's `GET /api/work` reads the same function), with a due-date column and its legend,
batch actions through the bulk service (the one `POST /api/bulk/transitions/{trigger}` uses) answered with a
table of every firm's result, and the way on to the next task from a firm's page."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from api.deps import ContextDep, ReadSessionDep, SessionDep
from api.pages.access import OFFICIALS, page
from api.pages.i18n import N_
from api.pages.render import message, redirect, refusal, render
from api.pages.worklink import firm_link, list_query
from deadlines.tasks import (
    BATCH_TRIGGERS,
    KINDS_OF,
    MAX_QUERY,
    PAGE_SIZES,
    SORTS,
    TaskFilter,
    firm_names,
    task_after,
    task_list,
)
from states import TRIGGERS, InvalidInput, Role, WorkflowError
from workflow.actors import Actor
from workflow.bulk import BulkTarget, fire_many
from workflow.db import read_unit
from workflow.effects import ALLOWED_KEYS

router = APIRouter(include_in_schema=False)
Text = Annotated[str | None, Query(max_length=40)]
Search = Annotated[str | None, Query(max_length=MAX_QUERY)]
TASK_READERS = (*OFFICIALS, Role.reviewer)

KIND_LABELS = {
    "verification": N_("待核实"),
    "audit": N_("待线上审核"),
    "review": N_("待组织评审、录入结果"),
    "certification": N_("待认定"),
    "undeliverable": N_("无法送达的动员通知"),
    "assignment": N_("待评分"),
}
SORT_LABELS = {
    "waiting": N_("等待最久在前"),
    "recent": N_("最新在前"),
    "due": N_("期限最早在前"),
    "due_late": N_("期限最晚在前"),
}
# destructive or sending the firm back: red, and confirmed
DANGER = frozenset({"return_application", "fail_audit", "fail_review"})
CHANNELS = {
    "phone": N_("电话通知（已联系）"),
    "in_person": N_("当面送达（已送达）"),
    "letter": N_("书面函件（已送达）"),
}


def _flag(value: str | None) -> bool | None:
    return {"true": True, "false": False}.get(value or "")


def _filters(params: dict[str, Any], page_no: int) -> TaskFilter:
    try:
        size = int(params.get("page_size") or 50)
    except ValueError:
        raise InvalidInput("每页条数须为数字 / the page size must be a number") from None
    return TaskFilter(
        kind=params.get("kind") or None,
        q=params.get("q") or None,
        district=params.get("district") or None,
        sector=params.get("sector") or None,
        key_field=_flag(params.get("key_field")),
        overdue=params.get("overdue") == "true",
        sort=params.get("sort") or "waiting",
        page=page_no,
        page_size=size,
    )


def _triggers(actor: Actor, kind: str | None) -> list[dict[str, Any]]:
    """The batch actions of one tab this office may take (none on the mixed tab)."""
    if kind is None:
        return []
    out = []
    for name in BATCH_TRIGGERS.get(kind, ()):
        spec = TRIGGERS[name]
        if actor.role in spec.all_roles:
            allowed = ALLOWED_KEYS.get(name, frozenset())
            out.append(
                {
                    "trigger": name,
                    "label_zh": spec.label_zh,
                    "label_en": spec.label_en,
                    "danger": name in DANGER,
                    "opinion": "opinion" in allowed,
                    "reason": "reason" in allowed,
                    "channel": "channel" in allowed,
                }
            )
    return out


def task_page(
    request: Request,
    context: Any,
    session: Any,
    actor: Actor,
    params: dict[str, Any],
    page_no: int,
    *,
    error: str | None = None,
    status: int = 200,
    results: list[dict[str, Any]] | None = None,
    done: str | None = None,
) -> Response:
    listing: dict[str, Any] | None = None
    try:
        filters = _filters(params, page_no)
        with read_unit(session) as conn:
            listing = task_list(conn, actor=actor, campaign=context.campaign, clock=context.clock, filters=filters)
    except InvalidInput as exc:
        error, status = message(request, str(exc)), 422
    query = list_query(params)
    kinds = KINDS_OF.get(actor.role, ())

    def link(**changes: Any) -> str:
        """This list with some parameters changed (a new tab, sort or page)."""
        merged = {**params, **changes}
        page = changes.get("page")
        parts = [list_query(merged), f"page={page}" if page and page > 1 else ""]
        joined = "&".join(p for p in parts if p)
        return "/work" + ("?" + joined if joined else "")

    return render(
        request,
        "work.html",
        status=status,
        error=error,
        listing=listing,
        params=params,
        query=query,
        kinds=kinds,
        kind_labels=KIND_LABELS,
        sort_labels=SORT_LABELS,
        sorts=SORTS,
        page_sizes=PAGE_SIZES,
        triggers=_triggers(actor, params.get("kind") or None),
        channels=CHANNELS,
        firm_link=lambda item: firm_link(item["enterprise_id"], query, item["position"]),
        link=link,
        results=results,
        done=TRIGGERS[done] if done else None,
        can_pick_district=actor.role in (Role.city_bureau, Role.support_center),
    )


@router.get("/work")
def work(
    request: Request,
    context: ContextDep,
    session: ReadSessionDep,
    actor: Annotated[Actor, page(*TASK_READERS)],
    kind: Text = None,
    q: Search = None,
    district: Text = None,
    sector: Text = None,
    key_field: Text = None,
    overdue: Text = None,
    sort: Text = None,
    page_size: Text = None,
    page_no: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
) -> Response:
    """Everything waiting on this office, longest waiting first, one page at a time."""
    params = {
        "kind": kind,
        "q": q,
        "district": district,
        "sector": sector,
        "key_field": key_field,
        "overdue": overdue,
        "sort": sort,
        "page_size": page_size,
    }
    return task_page(request, context, session, actor, params, page_no)


@router.post("/work/batch")
def batch(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(*OFFICIALS)],
    trigger: Annotated[str, Form(max_length=40)],
    firm: Annotated[list[str] | None, Form()] = None,
    opinion: Annotated[str, Form(max_length=2000)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    channel: Annotated[str, Form(max_length=20)] = "",
    kind: Annotated[str, Form(max_length=40)] = "",
    q: Annotated[str, Form(max_length=MAX_QUERY)] = "",
    district: Annotated[str, Form(max_length=40)] = "",
    sector: Annotated[str, Form(max_length=40)] = "",
    key_field: Annotated[str, Form(max_length=5)] = "",
    overdue: Annotated[str, Form(max_length=5)] = "",
    sort: Annotated[str, Form(max_length=20)] = "",
    page_size: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """One action on the selected rows of a tab, through the bulk service; the answer is the list again with
    a table of every firm's result (成功, or the refusal in words)."""
    params = {
        "kind": kind,
        "q": q,
        "district": district,
        "sector": sector,
        "key_field": key_field,
        "overdue": overdue,
        "sort": sort,
        "page_size": page_size,
    }
    offered = {t["trigger"]: t for t in _triggers(actor, kind or None)}
    try:
        if trigger not in offered:
            raise InvalidInput(f"此处不能批量执行“{trigger}” / “{trigger}” cannot be taken on this list in a batch")
        targets = [_target(value) for value in firm or []]
        if not targets:
            raise InvalidInput("请先勾选企业 / select at least one firm")
        payload: dict[str, Any] = {}
        if offered[trigger]["opinion"]:
            payload["opinion"] = opinion
        if offered[trigger]["reason"]:
            payload["reason"] = reason
        if offered[trigger]["channel"] and channel:
            payload["channel"] = channel
        outcomes = fire_many(
            session, trigger=trigger, targets=targets, actor=actor, context=context.service, payload=payload
        )
    except WorkflowError as exc:
        error, status = refusal(request, exc)
        return task_page(request, context, session, actor, params, 1, error=error, status=status)
    with read_unit(session) as conn:
        named = firm_names(conn, actor=actor, enterprise_ids=[o.enterprise_id for o in outcomes])
    results = []
    for outcome in outcomes:
        name, code = named.get(outcome.enterprise_id, (f"#{outcome.enterprise_id}", ""))
        if outcome.ok:
            text = None
        elif isinstance(outcome.error, WorkflowError):
            text = message(request, str(outcome.error))
        else:
            text = message(request, "数据库暂时不可用，请稍后重试 / the database is unavailable, try again later")
        results.append(
            {"enterprise_id": outcome.enterprise_id, "name": name, "uscc": code, "ok": outcome.ok, "text": text}
        )
    return task_page(request, context, session, actor, params, 1, results=results, done=trigger)


def _target(value: str) -> BulkTarget:
    """A selected row: `firm id:version seen`."""
    firm_id, _, version = value.partition(":")
    if not firm_id.isdigit() or (version and not version.isdigit()):
        raise InvalidInput("勾选的企业无效 / a selected firm is not valid")
    return BulkTarget(int(firm_id), int(version) if version else None)


@router.get("/work/next")
def next_task(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    actor: Annotated[Actor, page(*TASK_READERS)],
    work: Annotated[str, Query(max_length=400)] = "",
    pos: Annotated[int, Query(ge=0, le=100_000_000)] = 0,
    after: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """下一项: the task after the firm just seen (or the one that moved into its place once it was done)."""
    params = dict(parse_qsl(work))
    try:
        filters = _filters(params, 1)
        with read_unit(session) as conn:
            item = task_after(
                conn,
                actor=actor,
                campaign=context.campaign,
                clock=context.clock,
                filters=filters,
                position=pos,
                enterprise_id=after,
            )
    except InvalidInput:
        item = None
    query = list_query(params)
    if item is None:
        return redirect("/work" + ("?" + query if query else ""), notice="no_more_tasks")
    if item["kind"] == "review" and item["application_id"]:
        return redirect(f"/applications/{item['application_id']}")
    return redirect(firm_link(item["enterprise_id"], query, item["position"]))
