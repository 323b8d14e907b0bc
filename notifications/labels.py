"""Human labels for the codes that appear in mail: deadline rules, escalation steps, levels, grounds."""

from __future__ import annotations

LANGS = ("zh-CN", "en")
DEFAULT_LANG = "zh-CN"

_KEY_FIELD_START = ("重点监管领域企业启动创建", "Key-supervision-field firms start the campaign")
_ABOVE_SIZE_START = ("规模以上企业启动创建", "Above-size firms start the campaign")
_SLA_AUDIT = ("线上审核时限", "Time limit for the online audit")

# The deadline rules of the campaign (deadlines/ writes them into reminders, overdue notices and
# escalations). The milestone rules are named after the campaign file's milestone ids, and the online
# audit's time limit is `sla_online_audit` there; both spellings are known. Anything else is shown as its
# code (after the campaign's own milestone names, see render.py) rather than refused.
RULE_LABELS: dict[str, tuple[str, str]] = {
    "mobilization": ("动员部署：通知到企业主要负责人", "Mobilization: the principal is notified"),
    "key_field_start": _KEY_FIELD_START,
    "key_field_started": _KEY_FIELD_START,
    "above_size_start": _ABOVE_SIZE_START,
    "above_size_started": _ABOVE_SIZE_START,
    "creation_end": ("创建提升阶段结束", "End of the creation and improvement phase"),
    "evaluation_end": ("考评验收阶段截止", "End of the evaluation and acceptance phase"),
    "hazard_deadline": ("隐患整改期限", "Hazard rectification deadline"),
    "sla_verification": ("辖市（区）应急管理局核实时限", "Time limit for verification by the district bureau"),
    "sla_audit": _SLA_AUDIT,
    "sla_online_audit": _SLA_AUDIT,
    "sla_review": ("线上及现场评审时限", "Time limit for the online and on-site review"),
    "sla_certification": ("市应急管理局认定时限", "Time limit for certification by the city bureau"),
}

STEP_LABELS: dict[str, tuple[str, str]] = {
    "firm": ("提醒企业", "reminder to the firm"),
    "district": ("上报辖市（区）应急管理局", "escalated to the district bureau"),
    "center": ("交市应急保障中心办理", "sent to the city emergency support center"),
    "city": ("上报市应急管理局", "escalated to the city bureau"),
}

LEVEL_LABELS: dict[str, tuple[str, str]] = {
    "compliant": ("达标企业", "compliant enterprise"),
    "benchmark": ("标杆企业", "benchmark enterprise"),
}

GROUNDS_LABELS: dict[str, tuple[str, str]] = {
    "non_participating": ("未参与创建", "has not taken part in the campaign"),
    "failed_review_twice": ("两次评审未通过", "failed the review twice"),
    "major_hazard_overdue": ("重大隐患逾期未整改", "a major hazard is overdue for rectification"),
}

AUDIENCE_LABELS: dict[str, tuple[str, str]] = {
    "enterprise": ("企业", "enterprise"),
    "district_bureau": ("辖市（区）应急管理局", "district bureau"),
    "city_bureau": ("市应急管理局", "city bureau"),
    "support_center": ("市应急保障中心", "city emergency support center"),
    "local_government": ("属地政府", "local government"),
    "reviewer": ("评定人员", "reviewer"),
    "user": ("用户", "user"),
}


def normalize_lang(value: str | None) -> str:
    """`en`, `en-GB`, `EN` → `en`; anything else (and nothing) → the default, zh-CN."""
    return "en" if value and value.lower().startswith("en") else DEFAULT_LANG


def label(table: dict[str, tuple[str, str]], code: object, lang: str) -> str:
    pair = table.get(str(code))
    if pair is None:
        return str(code)
    return pair[1] if normalize_lang(lang) == "en" else pair[0]
