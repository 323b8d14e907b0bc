"""Every kind of mail renders in zh-CN and English; firm names with markup, ampersands and quotes are text."""

from __future__ import annotations

import copy
import datetime as dt
import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any

import pytest
from click.testing import CliRunner

from api.cli import main
from notifications.labels import LANGS, RULE_LABELS
from notifications.message import compose
from notifications.render import KINDS, TEMPLATES, Renderer, RenderError, UnknownKind, template_files
from notifications.samples import SAMPLE_AUDIENCE, SAMPLES
from workflow.campaign import Campaign
from workflow.clock import SHANGHAI

HOSTILE = '<script>alert("x")</script> & \'Co\' "Ltd" <b>bold</b>'
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
# Free text that comes from people (firm names, reasons, notes, names): everything a template prints raw.
HOSTILE_KEYS = {"enterprise_name", "principal", "reason", "note", "reviewer_name", "name", "description"}


def hostile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (HOSTILE if k in HOSTILE_KEYS and isinstance(v, str) else hostile(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [hostile(v) for v in value]
    return value


def lf(text: str) -> str:
    """Text parts travel with CRLF line ends (their canonical form); the templates write LF."""
    return text.replace("\r\n", "\n")


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text += data


@pytest.fixture(scope="module")
def renderer(campaign: Campaign) -> Renderer:
    return Renderer(public_url="https://dabiao.example.com", campaign=campaign)


def test_every_kind_has_its_six_templates_and_nothing_is_left_over() -> None:
    folders = {p.name for p in TEMPLATES.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert folders == set(KINDS)
    for kind in KINDS:
        for lang in LANGS:
            for name in template_files(kind, lang):
                assert (TEMPLATES / name).is_file(), name


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("kind", KINDS)
def test_hostile_names_show_as_text_in_every_kind_and_language(renderer: Renderer, kind: str, lang: str) -> None:
    context = hostile(copy.deepcopy(SAMPLES[kind]))
    rendered = renderer.render(kind, lang, context, audience=SAMPLE_AUDIENCE.get(kind, "enterprise"))

    page = Page()
    page.feed(rendered.html)
    assert "script" not in page.tags and "b" not in page.tags  # the name's markup never became markup
    assert HOSTILE in page.text  # … and reads exactly as typed
    assert "<script>" not in rendered.html
    assert HOSTILE in rendered.text  # plain text is not escaped
    if kind not in ("reviewer_disqualified",):  # its subject names the reviewer, not the firm
        assert HOSTILE in rendered.subject or HOSTILE in rendered.text
    assert "\n" not in rendered.subject

    if lang == "en":
        assert rendered.subject.startswith("[Compliance campaign]")
        leftovers = CJK.findall(rendered.text.replace(HOSTILE, "") + rendered.subject + page.text)
        assert leftovers == [], f"Chinese left in the English {kind}: {''.join(leftovers)}"
    else:
        assert rendered.subject.startswith("【达标创建】")
        assert "Dear" not in rendered.text and "Please" not in rendered.text


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_parses_back_from_the_wire_unchanged(renderer: Renderer, kind: str, lang: str) -> None:
    rendered = renderer.render(kind, lang, hostile(copy.deepcopy(SAMPLES[kind])), audience=SAMPLE_AUDIENCE.get(kind))
    data = compose(
        rendered,
        mail_from="达标 Dabiao <dabiao@changzhou.example.com>",
        to="yjj@wujin.example.com",
        to_name="武进区应急管理局",
        message_id="<0123456789abcdef@changzhou.example.com>",
        date=dt.datetime(2022, 7, 1, 12, tzinfo=SHANGHAI),
        lang=lang,
        kind=kind,
        outbox_id=7,
    )
    assert data.isascii() and all(len(line) <= 998 for line in data.split(b"\r\n"))
    parsed = message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert [part.defects for part in parsed.walk()] == [[], [], []]
    assert parsed["Subject"] == rendered.subject
    assert parsed["From"].addresses[0].display_name == "达标 Dabiao"
    assert parsed["To"].addresses[0].display_name == "武进区应急管理局"
    assert parsed["Message-ID"] == "<0123456789abcdef@changzhou.example.com>"
    assert parsed["Content-Language"] == lang and parsed["X-Dabiao-Kind"] == kind
    text, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert text is not None and html is not None
    assert lf(text.get_content()) == rendered.text and lf(html.get_content()) == rendered.html


def test_an_internationalised_address_gets_raw_utf8_headers(renderer: Renderer) -> None:
    rendered = renderer.render("application_received", "zh-CN", SAMPLES["application_received"])
    data = compose(
        rendered,
        mail_from="dabiao@changzhou.example.com",
        to="安全科@化工.example.com",
        to_name=None,
        message_id="<x@changzhou.example.com>",
        date=dt.datetime(2022, 7, 1, 12, tzinfo=SHANGHAI),
        lang="zh-CN",
        kind="application_received",
        outbox_id=1,
    )
    assert "To: 安全科@化工.example.com".encode() in data
    parsed = message_from_bytes(data, policy=policy.default)
    body = parsed.get_body(("plain",))
    assert body is not None and lf(body.get_content()) == rendered.text


def test_a_name_cannot_add_headers_to_the_message(renderer: Renderer) -> None:
    context = {**SAMPLES["application_received"], "enterprise_name": "Evil Co\r\nBcc: all@victims.example"}
    rendered = renderer.render("application_received", "en", context)
    data = compose(
        rendered,
        mail_from="dabiao@example.com",
        to="firm@example.com",
        to_name=None,
        message_id="<x@example.com>",
        date=dt.datetime(2022, 7, 1, tzinfo=dt.UTC),
        lang="en",
        kind="application_received",
        outbox_id=1,
    )
    parsed = message_from_bytes(data, policy=policy.default)
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "[Compliance campaign] Application of Evil Co Bcc: all@victims.example received"


def test_every_deadline_rule_has_a_label_in_both_languages(renderer: Renderer, campaign: Campaign) -> None:
    brief = {
        "mobilization",
        "key_field_start",
        "above_size_start",
        "creation_end",
        "evaluation_end",
        "hazard_deadline",
        "sla_verification",
        "sla_audit",
        "sla_review",
        "sla_certification",
    }
    written = {name for name in type(campaign.deadlines.rules).model_fields if name != "milestones"}
    written |= {m.id for m in campaign.milestones}  # milestone rules are named after the milestone
    for rule in brief | written:
        zh = renderer.render("deadline_reminder", "zh-CN", {**SAMPLES["deadline_reminder"], "rule": rule})
        en = renderer.render("deadline_reminder", "en", {**SAMPLES["deadline_reminder"], "rule": rule})
        assert rule not in zh.subject and rule not in en.subject, rule
    assert {zh for zh, _ in RULE_LABELS.values()} and all(en.isascii() for _, en in RULE_LABELS.values())


def test_an_unknown_rule_shows_its_code(renderer: Renderer) -> None:
    rendered = renderer.render("deadline_overdue", "en", {**SAMPLES["deadline_overdue"], "rule": "new_rule_2024"})
    assert '"new_rule_2024"' in rendered.subject


def test_certification_states_level_and_eligibility(renderer: Renderer) -> None:
    base = {**SAMPLES["certification"], "prior_level": None}
    compliant = renderer.render(
        "certification", "zh-CN", {**base, "score": 68.5, "score_level": None, "prior_certificate": "none"}
    )
    assert "安全生产达标企业" in compliant.subject and "68.5 分" in compliant.text and "标准化" not in compliant.text
    level2 = renderer.render(
        "certification", "en", {**base, "score": 80, "score_level": 2, "eligible_level": 2, "prior_certificate": "none"}
    )
    assert "compliant enterprise" in level2.subject and "newly apply for level 2" in level2.text


def test_a_missing_context_key_is_a_render_error_not_a_blank(renderer: Renderer) -> None:
    context = {k: v for k, v in SAMPLES["application_returned"].items() if k != "reason"}
    with pytest.raises(RenderError, match="reason"):
        renderer.render("application_returned", "zh-CN", context)
    with pytest.raises(UnknownKind):
        renderer.render("no_such_kind", "zh-CN", {})


def test_mail_preview_renders_a_kind_and_lists_kinds_when_unknown() -> None:
    runner = CliRunner()
    preview = runner.invoke(main, ["mail", "preview", "certification", "--lang", "en"])
    assert preview.exit_code == 0, preview.output
    assert preview.output.startswith("Subject: [Compliance campaign]")
    assert "the score meets the condition for level 1" in preview.output
    html = runner.invoke(main, ["mail", "preview", "district_digest", "--html"])
    assert html.exit_code == 0 and html.output.lstrip().startswith("<!DOCTYPE html>")
    unknown = runner.invoke(main, ["mail", "preview", "no_such_kind"])
    assert unknown.exit_code == 2
    assert "unknown kind: no_such_kind" in unknown.output and "reviewer_disqualified" in unknown.output
