"""The way back from a firm to the task list it was opened from: the list's filters travel with the firm page
as one query parameter (`work`), with the row's place in the list (`pos`), so the firm page can offer
返回任务列表 and 下一项 and the menu keeps 待办 lit. A form on the firm page keeps them through its Referer
(same origin only), so after an action the officer goes on to the next task."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import Request

# the task list's own parameters (deadlines.tasks.TaskFilter, without the page)
DEFAULT_PAGE_SIZE = 50
LIST_PARAMS = ("kind", "q", "district", "sector", "key_field", "overdue", "sort", "page_size")


def list_query(params: dict[str, Any]) -> str:
    """The task list's filters as a query string, leaving out what is empty."""
    pairs = [(k, str(params[k])) for k in LIST_PARAMS if params.get(k) not in (None, "", False)]
    return urlencode(pairs)


def _from_query(query: str) -> tuple[str, int] | None:
    values = dict(parse_qsl(query))
    if "work" not in values:
        return None
    inner = dict(parse_qsl(values["work"]))
    kept = {k: v for k, v in inner.items() if k in LIST_PARAMS}
    try:
        pos = max(0, int(values.get("pos", "0")))
    except ValueError:
        pos = 0
    return list_query(kept), pos


def work_context(request: Request) -> tuple[str, int] | None:
    """(the list's query string, the row's place) when this page was opened from the task list; a form's
    answer takes them from the page the form was on."""
    found = _from_query(request.url.query)
    if found is None and request.method == "POST":
        referer = urlsplit(request.headers.get("referer", ""))
        if referer.netloc == request.url.netloc and referer.path.startswith("/firms/"):
            found = _from_query(referer.query)
    return found


def firm_link(enterprise_id: int, query: str, position: int) -> str:
    return f"/firms/{enterprise_id}?" + urlencode([("work", query), ("pos", str(position))])


def work_suffix(request: Request) -> str:
    """`?work=…&pos=…` to keep on the firm page a form redirects to ('' without a task list)."""
    found = work_context(request)
    return "" if found is None else "?" + urlencode([("work", found[0]), ("pos", str(found[1]))])


def work_links(request: Request) -> dict[str, str] | None:
    """返回任务列表 and 下一项 for a firm page opened from the task list (None elsewhere)."""
    found = work_context(request)
    firm = request.path_params.get("enterprise_id")
    if found is None or firm is None:
        return None
    query, pos = found
    try:
        size = int(dict(parse_qsl(query)).get("page_size", DEFAULT_PAGE_SIZE))
    except ValueError:
        size = DEFAULT_PAGE_SIZE
    page = pos // max(1, size) + 1
    back = "&".join(part for part in (query, f"page={page}" if page > 1 else "") if part)
    return {
        "back": "/work" + ("?" + back if back else ""),
        "next": "/work/next?" + urlencode([("work", query), ("pos", str(pos)), ("after", str(firm))]),
    }
