"""One vocabulary: every deadline rule and every state has exactly one Chinese name, whether it is read in
mail, on the pages or on the command line, and the pages' English is the catalogue's English."""

from __future__ import annotations

import pytest

from api.pages.i18n import Formats, load_translations
from deadlines.escalations import RULE_LABELS as ESCALATION_RULE_LABELS
from deadlines.referrals import STATUS_LABELS
from notifications.render import Renderer
from states import State
from workflow import labels
from workflow.clock import SHANGHAI

# The rules the sweep writes into reminders, overdue notices and escalations (deadlines/rules.py), named
# here by hand; a few names checked against what the catalogue must say.
RULES = (
    "mobilization",
    "key_field_started",
    "above_size_started",
    "creation_end",
    "evaluation_end",
    "hazard_deadline",
    "sla_verification",
    "sla_online_audit",
    "sla_review",
    "sla_certification",
)
WRITTEN = {
    "key_field_started": "重点监管领域企业启动创建",  # once three names: mail, escalations and the firm page
    "above_size_started": "规模以上企业启动创建",
    "sla_verification": "辖市（区）应急管理局核实时限",
}


def _mail(rule: str, lang: str) -> str:
    template = Renderer()._text.from_string("{{ rule|rule_label }}")  # the filter the mail templates use
    return template.render(rule=rule, lang=lang)


def _cli(rule: str) -> str:
    # `dabiao deadlines escalations` prints RULE_LABELS.get(rule, rule) from deadlines.escalations
    return ESCALATION_RULE_LABELS.get(rule, rule)


def _firm_page(rule: str) -> str | None:
    from api.pages.firms import DEADLINE_RULES

    return DEADLINE_RULES.get(rule)


@pytest.mark.parametrize("rule", RULES)
def test_a_rule_has_one_chinese_name_in_mail_pages_and_cli(rule: str) -> None:
    names = {_mail(rule, "zh-CN"), _cli(rule), ESCALATION_RULE_LABELS[rule]}
    if _firm_page(rule) is not None:
        names.add(str(_firm_page(rule)))
    assert len(names) == 1, names
    assert "_" not in names.pop()  # a name, not the code
    if rule in WRITTEN:
        assert _mail(rule, "zh-CN") == WRITTEN[rule]


@pytest.mark.parametrize("rule", RULES)
def test_a_rule_has_one_english_name_in_mail_and_pages(rule: str) -> None:
    english = load_translations()["en"]
    chinese = _mail(rule, "zh-CN")
    assert english.gettext(chinese) == _mail(rule, "en")
    assert english.gettext(chinese) != chinese


def test_every_state_has_one_chinese_name_on_pages_in_data_and_in_the_catalogue() -> None:
    page = Formats(lang="zh-CN", tz=SHANGHAI)
    seen: dict[str, State] = {}
    for state in State:
        name = page.state(state.value)
        assert name == labels.STATES[state.value].zh
        assert name not in seen, f"{state} and {seen.get(name)} share the name {name}"
        seen[name] = state


def test_referral_statuses_on_pages_and_cli_are_the_catalogues() -> None:
    assert STATUS_LABELS == {"proposed": "已提出", "confirmed": "已确认移交", "declined": "未予确认",
                             "acknowledged": "属地已签收", "withdrawn": "已撤回"}  # fmt: skip


def test_the_catalogue_gives_one_english_name_to_each_chinese_name_it_shows_on_pages() -> None:
    english: dict[str, set[str]] = {}
    for entry in labels.translated():
        english.setdefault(entry.zh, set()).add(entry.en)
    assert {zh: en for zh, en in english.items() if len(en) > 1} == {}


# The statuses as the tables store them (the enums must not change a stored value: no migration).
STORED = {
    "ReviewAssignmentStatus": {"active", "done", "replaced", "recused", "conflict"},
    "ReviewDrawKind": {"team", "redraw", "replacement"},
    "ReviewerReportStatus": {"open", "dismissed", "disqualified"},
    "HazardStatus": {"open", "submitted", "rectified", "accepted"},
    "ApplicationStatus": {
        "applied", "verified", "reviewed", "certified", "returned", "audit_failed", "review_failed", "closed"
    },
    "OutboxStatus": {"pending", "sending", "sent", "failed", "no_recipient"},
    "EscalationStatus": {"open", "acknowledged", "resolved"},
    "ReferralStatus": {"proposed", "confirmed", "declined", "acknowledged", "withdrawn"},
    "ReferralSuggestionStatus": {"open", "proposed", "lapsed"},
    "SweepRunStatus": {"running", "finished"},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(STORED))
def test_each_status_enum_holds_the_stored_values(name: str) -> None:
    from workflow import models

    enum = getattr(models, name)
    assert {member.value for member in enum} == STORED[name]
    assert all(member == member.value and f"{member}" == member.value for member in enum)
