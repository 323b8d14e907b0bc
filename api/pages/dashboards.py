"""The city dashboard (city bureau, support center) and a district's dashboard (its bureau; the city too):
funnel, milestones, targets, burn-down, overdue firms, referrals, the outbox, worklists and, for a district,
this month's inspection plan. The figures come from `workflow.dashboard`; this module only shapes them."""

from __future__ import annotations

from itertools import islice
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.deps import ContextDep, ReadSessionDep
from api.pages.access import CITY, OFFICIALS, page
from api.pages.exports import district_filter, month_filter, page_export, xlsx_response
from api.pages.i18n import N_, Formats
from api.pages.render import formats_of, gettext_of, pages_of, query_url, render
from deadlines.inspections import supervision_figures
from deadlines.referrals import STATUS_LABELS as REFERRAL_STATUS_LABELS
from deadlines.supervision import GRADE_LABELS, GRADES, PLAN_COLUMNS, grade_counts, inspection_plan, parse_month
from states import OutOfScope, Role
from workflow.actors import Actor, district_in_scope
from workflow.clock import today
from workflow.dashboard import ESCALATION_STEPS, FUNNEL, REFERRAL_STATUSES, Overview, overview, worklist_counts
from workflow.db import read_unit
from workflow.queries import worklist

router = APIRouter(include_in_schema=False)
PLAN_PREVIEW = 15
WORKLIST_PREVIEW = 8
INSPECTORS = (Role.city_bureau, Role.district_bureau)  # who plans inspections, as in the API
WORKLIST_LABELS = {
    "verification": N_("待核实的申请"),
    "audit": N_("待线上审核"),
    "review": N_("待组织评审、录入结果"),
    "certification": N_("待认定"),
}
STEP_HEADERS = {
    "firm": N_("已通知企业"),
    "district": N_("已升级至辖区局"),
    "center": N_("已交保障中心"),
    "city": N_("已升级至市局"),
}
WORKLISTS_OF = {
    Role.city_bureau: ("certification",),
    Role.support_center: ("audit", "review"),
    Role.district_bureau: ("verification", "audit", "review"),
}


def _firms_url(**filters: Any) -> str:
    return query_url("/firms", **filters)


def _milestone_filters(applies_to: str) -> dict[str, Any]:
    return {"key_field": True} if applies_to == "key_field" else {"key_field": False, "above_size": True}


def chart_data(ov: Overview, fmt: Formats, campaign: Any, gettext: Any) -> dict[str, Any]:
    """What the charts are drawn from (embedded in the page as JSON, read by static/js/app.js); every
    value carries the link to the firms behind it."""
    names = {d.code: fmt.named(d.name, d.name_en) for d in campaign.districts}
    states = [{"code": s.value, "label": fmt.state(s.value)} for s in FUNNEL]

    def series(*, district: str | None, key_field: bool | None, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "data": [
                {
                    "value": ov.firms(district=district, state=s.value, key_field=key_field),
                    "url": _firms_url(district=district, state=s.value, key_field=key_field),
                }
                for s in FUNNEL
            ],
        }

    if ov.district_code is None:
        views = {
            view: [series(district=code, key_field=key, name=names[code]) for code in ov.districts]
            for view, key in (("all", None), ("key", True), ("other", False))
        }
    else:
        code = ov.district_code
        fields = [
            series(district=code, key_field=True, name=gettext("重点监管领域")),
            series(district=code, key_field=False, name=gettext("其他企业")),
        ]
        views = {"all": fields}
    burndown = []
    for b in ov.burndown:
        burndown.append(
            {
                "id": b.milestone.id,
                "title": fmt.named(b.milestone.name, b.milestone.name_en),
                "milestone": b.milestone.date.isoformat(),
                "series": [
                    {
                        "name": names[code],
                        "points": [[d.isoformat(), n] for d, n in zip(b.days, values, strict=True)],
                        "projection": [[d.isoformat(), n] for d, n in b.projection.get(code, [])],
                    }
                    for code, values in b.remaining.items()
                ],
            }
        )
    targets: dict[str, Any] = {"districts": [names[c] for c in ov.districts]}
    for label, key in (("key", True), ("other", False)):
        rows = [t for t in ov.targets if t.key_field == key and t.district_code is not None]
        targets[label] = {
            # started spans several states: no one list holds exactly these firms (the milestones link the rest)
            "started": [{"value": t.started, "url": None} for t in rows],
            "target": [t.target for t in rows],
            "projected": [t.projected for t in rows],
        }
    labels = {
        "milestone": gettext("期限"),
        "remaining": gettext("未启动企业"),
        "target": gettext("目标"),
        "key": gettext("重点监管领域"),
        "other": gettext("其他企业"),
    }
    return {
        "lang": fmt.lang,
        "today": ov.as_of.isoformat(),
        "labels": labels,
        "states": states,
        "funnel": views,
        "burndown": burndown,
        "targets": targets,
    }


def _dashboard(request: Request, context: Any, session: Any, actor: Actor, district: str | None) -> Response:
    campaign, clock = context.campaign, context.clock
    fmt = formats_of(request)
    with read_unit(session) as conn:
        ov = overview(conn, context=context.service, district=district, cache=pages_of(request).history)
        waiting = worklist_counts(conn, actor=actor)
        worklists = {
            name: worklist(conn, actor=actor, name=name, clock=clock, limit=WORKLIST_PREVIEW)["items"]
            for name in WORKLISTS_OF.get(actor.role, ())
        }
        plan: dict[str, Any] | None = None
        if district is not None and actor.role in INSPECTORS:
            month = ov.as_of.replace(day=1)
            lines = inspection_plan(conn, campaign=campaign, district=district, month=month, as_of=ov.as_of)
            preview = list(islice(lines, PLAN_PREVIEW))
            getattr(lines, "close", lambda: None)()  # the plan is streamed: let go of its cursor
            grades = grade_counts(conn, campaign=campaign, as_of=ov.as_of, district=district)
            plan = {
                "month": month,
                "lines": preview,
                "grades": [(g, GRADE_LABELS[g], grades.get(g, 0)) for g in GRADES],
                "per_year": campaign.supervision.inspections_per_year,
                "penalty": campaign.supervision.penalty_scale,
                "local": campaign.supervision.local,
            }
        carried_out = supervision_figures(conn, campaign=campaign, actor=actor, clock=clock, district=district)
    names = {d.code: fmt.named(d.name, d.name_en) for d in campaign.districts}
    return render(
        request,
        "dashboard.html",
        ov=ov,
        district=district,
        district_name=names.get(district or "", ""),
        names=names,
        states=FUNNEL,
        chart=chart_data(ov, fmt, campaign, gettext_of(request)),
        firms_url=_firms_url,
        milestone_filters=_milestone_filters,
        waiting=waiting,
        worklists=worklists,
        plan=plan,
        steps=ESCALATION_STEPS,
        step_headers=STEP_HEADERS,
        referral_statuses=REFERRAL_STATUSES,
        referral_status_labels=REFERRAL_STATUS_LABELS,
        worklist_labels=WORKLIST_LABELS,
        grade_labels=GRADE_LABELS,
        plan_preview=PLAN_PREVIEW,
        carried_out=carried_out,
    )


@router.get("/dashboard")
def city_dashboard(
    request: Request, context: ContextDep, session: ReadSessionDep, actor: Annotated[Actor, page(*CITY)]
) -> Response:
    """The whole city, for the city bureau and the support center."""
    return _dashboard(request, context, session, actor, None)


def _district_in_scope(actor: Actor, district_code: str, context: Any) -> str:
    known = context.campaign.district(district_code)
    if known is None or known.code != district_code:
        raise OutOfScope(f"找不到该辖区 / no such district: {district_code}")
    if not district_in_scope(actor, district_code):
        raise OutOfScope(f"找不到该辖区 / no such district: {district_code}")
    return district_code


@router.get("/districts/{district_code}")
def district_dashboard(
    district_code: str,
    request: Request,
    context: ContextDep,
    session: ReadSessionDep,
    actor: Annotated[Actor, page(*OFFICIALS, scope="district")],
) -> Response:
    """One district: its bureau sees only its own; the city bureau and the support center any."""
    return _dashboard(request, context, session, actor, _district_in_scope(actor, district_code, context))


@router.get("/districts/{district_code}/inspections.xlsx")
def inspection_plan_export(
    district_code: str,
    request: Request,
    context: ContextDep,
    session: ReadSessionDep,
    actor: Annotated[Actor, page(*INSPECTORS, scope="district")],
    month: Annotated[str | None, Query(max_length=7)] = None,
) -> Response:
    """This month's (or `month=YYYY-MM`'s) inspection plan of the district, as XLSX in the page's language."""
    code = _district_in_scope(actor, district_code, context)
    this_month = today(context.clock).replace(day=1)
    first = parse_month(month) if month else this_month
    campaign = context.campaign
    with read_unit(session) as conn:
        lines = inspection_plan(
            conn,
            campaign=campaign,
            district=code,
            month=first,
            as_of=today(context.clock) if first == this_month else None,
        )
        export = page_export(
            request, context, what_zh="检查计划", what_en="Inspection plan", slug="inspection-plan",
            filters=[district_filter(campaign, code), month_filter(first)],
        )  # fmt: skip
        return xlsx_response(
            export,
            columns=PLAN_COLUMNS,
            rows=(line.cells(n, campaign, export.lang) for n, line in enumerate(lines, start=1)),
        )
