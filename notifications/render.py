"""Mail templates: one folder per kind under templates/, each with a subject, a plain-text and an HTML body in
zh-CN (the default) and English. HTML is autoescaped; text and subjects are not (they are not markup)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from notifications.labels import (
    AUDIENCE_LABELS,
    GROUNDS_LABELS,
    LEVEL_LABELS,
    RULE_LABELS,
    STEP_LABELS,
    label,
    normalize_lang,
)
from states.numbers import score_text
from workflow.campaign import Campaign
from workflow.clock import SHANGHAI

TEMPLATES = Path(__file__).parent / "templates"

# Every kind of mail the system sends; each has templates/<kind>/{subject,body}.{zh-CN,en}.{txt,html}.
KINDS: tuple[str, ...] = (
    "mobilization_notice",
    "application_received",
    "application_returned",
    "audit_outcome",
    "review_outcome",
    "certification",
    "certificate_revoked",
    "deadline_reminder",
    "creation_reminder",
    "deadline_overdue",
    "referral",
    "referral_withdrawn",
    "reviewer_assignment",
    "reviewer_disqualified",
    "district_digest",
    "city_digest",
)

_MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


_BLANK_LINES = re.compile(r"\n{3,}")


class UnknownKind(LookupError):
    """No templates for this kind of mail."""


class RenderError(Exception):
    """A template could not be rendered with the message's context (a missing key, a bad value)."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def template_files(kind: str, lang: str) -> tuple[str, str, str]:
    return (f"{kind}/subject.{lang}.txt", f"{kind}/body.{lang}.txt", f"{kind}/body.{lang}.html")


def _to_date(value: Any, tz: ZoneInfo) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(tz).date() if value.tzinfo else value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    try:
        instant = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return instant.astimezone(tz).date() if instant.tzinfo else instant.date()


class Renderer:
    """Renders (kind, language, context) into a subject, a text and an HTML body."""

    def __init__(self, *, tz: ZoneInfo = SHANGHAI, public_url: str = "", campaign: Campaign | None = None) -> None:
        self.tz = tz
        self.public_url = public_url.rstrip("/")
        self.campaign = campaign
        common: dict[str, Any] = {
            "loader": jinja2.FileSystemLoader(TEMPLATES),
            "undefined": jinja2.StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "auto_reload": False,
        }
        self._text = jinja2.Environment(autoescape=False, keep_trailing_newline=True, **common)
        self._html = jinja2.Environment(autoescape=True, **common)
        for env in (self._text, self._html):
            env.filters.update(
                day=self._day,
                when=self._when,
                score=_score,
                rule_label=self._rule_label,
                step_label=_bound(STEP_LABELS),
                level_label=_bound(LEVEL_LABELS),
                grounds_label=_bound(GROUNDS_LABELS),
                audience_label=_bound(AUDIENCE_LABELS),
            )

    def render(
        self, kind: str, lang: str | None, context: Mapping[str, Any], *, audience: str | None = None
    ) -> Rendered:
        """Render one message.

        Raises:
            UnknownKind: no templates for `kind`.
            RenderError: the context lacks a key the template needs, or a value is unusable.
        """
        if kind not in KINDS:
            raise UnknownKind(kind)
        lang = normalize_lang(lang)
        values = self._values(kind, lang, context, audience)
        subject_file, text_file, html_file = template_files(kind, lang)
        try:
            # A subject is one header line: newlines in a firm's name must not start a new header.
            subject = " ".join(self._text.get_template(subject_file).render(values).split())
            values["subject"] = subject
            text = self._text.get_template(text_file).render(values)
            html = self._html.get_template(html_file).render(values)
        except jinja2.TemplateNotFound as exc:
            raise UnknownKind(f"{kind} ({exc.name} missing)") from None
        except (jinja2.TemplateError, TypeError, ValueError) as exc:
            raise RenderError(f"{kind}/{lang}: {exc}") from None
        return Rendered(subject=subject, text=_BLANK_LINES.sub("\n\n", text).strip() + "\n", html=html)

    def _values(self, kind: str, lang: str, context: Mapping[str, Any], audience: str | None) -> dict[str, Any]:
        """What every template of a message sees: the context in its language, and the message's own names."""
        return {
            **self._localized(context, lang),
            "lang": lang,
            "kind": kind,
            "audience": audience or context.get("audience", "enterprise"),
            "public_url": self.public_url,
            "campaign_name": self._campaign_name(lang),
        }

    def subject(self, kind: str, lang: str | None, context: Mapping[str, Any], *, audience: str | None = None) -> str:
        """Only a message's subject (a list of messages shows no bodies). Raises as `render`."""
        if kind not in KINDS:
            raise UnknownKind(kind)
        lang = normalize_lang(lang)
        values = self._values(kind, lang, context, audience)
        try:
            return " ".join(self._text.get_template(template_files(kind, lang)[0]).render(values).split())
        except jinja2.TemplateNotFound as exc:
            raise UnknownKind(f"{kind} ({exc.name} missing)") from None
        except (jinja2.TemplateError, TypeError, ValueError) as exc:
            raise RenderError(f"{kind}/{lang}: {exc}") from None

    def _localized(self, context: Mapping[str, Any], lang: str) -> dict[str, Any]:
        """English mail names the district in English (the engine stores its Chinese name)."""
        values = dict(context)
        name = values.get("district_name")
        if lang == "en" and self.campaign is not None and isinstance(name, str):
            district = self.campaign.district(name)
            if district is not None:
                values["district_name"] = district.name_en
        return values

    def _campaign_name(self, lang: str) -> str:
        if self.campaign is None:
            return "常州市安全生产达标企业创建" if lang != "en" else "Changzhou safety-production compliance campaign"
        info = self.campaign.campaign
        return info.name_en if lang == "en" else info.name

    @jinja2.pass_context
    def _day(self, ctx: jinja2.runtime.Context, value: Any) -> str:
        day = _to_date(value, self.tz)
        if day is None:
            return str(value)
        if ctx.get("lang") == "en":
            return f"{day.day} {_MONTHS_EN[day.month - 1]} {day.year}"
        return f"{day.year}年{day.month}月{day.day}日"

    @jinja2.pass_context
    def _rule_label(self, ctx: jinja2.runtime.Context, rule: Any) -> str:
        lang = str(ctx.get("lang", "zh-CN"))
        if str(rule) not in RULE_LABELS and self.campaign is not None:
            for milestone in self.campaign.milestones:  # a campaign's own milestones name themselves
                if milestone.id == rule:
                    return milestone.name_en if lang == "en" else milestone.name
        return label(RULE_LABELS, rule, lang)

    @jinja2.pass_context
    def _when(self, ctx: jinja2.runtime.Context, value: Any) -> str:
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value)
            except ValueError:
                return str(value)
        if not isinstance(value, dt.datetime):
            return str(value)
        local = value.astimezone(self.tz) if value.tzinfo else value
        return f"{self._day(ctx, local.date())} {local:%H:%M}"


def _score(value: Any) -> str:
    """Scores in mail as everywhere: one decimal (states.numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return score_text(value)


def _bound(table: Mapping[str, tuple[str, str]]) -> Callable[[jinja2.runtime.Context, object], str]:
    @jinja2.pass_context
    def _label(ctx: jinja2.runtime.Context, code: object) -> str:
        return label(table, code, str(ctx.get("lang", "zh-CN")))

    return _label
