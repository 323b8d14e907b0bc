"""Languages of the pages: Chinese is the source language (the msgids in templates and code), English comes
from the gettext catalog `api/translations/en/LC_MESSAGES/messages.po`, read at start (no compile step).
Dates, times and numbers are formatted for the chosen language with Babel.

Update the catalog after changing texts:  .venv/bin/python -m api.pages.i18n   (then translate new entries)"""

from __future__ import annotations

import datetime as dt
import gettext
import io
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, format_skeleton
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from babel.numbers import format_decimal, format_percent
from babel.support import Translations

from states import STATE_LABELS, TRIGGERS, State
from states.numbers import score_value
from workflow.labels import RECORD_KINDS, translated

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = Path(__file__).resolve().parents[1] / "translations"
CATALOG = TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po"
TEMPLATE = TRANSLATIONS / "messages.pot"
LANGS = ("zh-CN", "en")
DEFAULT_LANG = "zh-CN"
LANG_NAMES = {"zh-CN": "中文", "en": "English"}
LOCALES = {"zh-CN": Locale.parse("zh_Hans_CN"), "en": Locale.parse("en")}
# what Babel extracts, and how (this module is the extraction command; no babel.cfg is needed)
METHODS = [("api/templates/**.html", "jinja2"), ("api/pages/**.py", "python")]
OPTIONS = {"api/templates/**.html": {"extensions": "jinja2.ext.i18n", "encoding": "utf-8"}}


def N_(message: str) -> str:
    """Mark a text for the catalog where it is defined; it is translated where it is shown."""
    return message


def dynamic_messages() -> list[str]:
    """The Chinese names of the label catalogue (workflow/labels.py) the pages show: rules, escalation steps
    and statuses, referral grounds and statuses, supervision grades, upload kinds, statuses. They are data, so
    extraction cannot see them; the catalogue's English names are their translations (`catalogue_translations`)."""
    out: list[str] = []
    for entry in translated():
        if entry.zh not in out:
            out.append(entry.zh)
    return out


def catalogue_translations() -> dict[str, str]:
    """msgid → English for the catalogue's labels: what `update_catalog` writes into en.po."""
    out: dict[str, str] = {}
    for entry in translated():
        out.setdefault(entry.zh, entry.en)
    return out


def load_translations(path: Path = CATALOG) -> dict[str, gettext.NullTranslations]:
    """The catalogs by language, compiled in memory from the .po file."""
    with path.open("rb") as handle:
        catalog = read_po(handle, locale="en")
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return {"zh-CN": gettext.NullTranslations(), "en": Translations(compiled)}


def pick_lang(*candidates: str | None) -> str:
    for value in candidates:
        if value in LANGS:
            return value
        if value and value.lower().startswith("en"):
            return "en"
        if value and value.lower().startswith("zh"):
            return "zh-CN"
    return DEFAULT_LANG


def bilingual(message: str, lang: str) -> str:
    """Service messages are written "中文 / English": the half for this language."""
    zh, sep, en = message.partition(" / ")
    if not sep:
        return message
    return zh if lang == "zh-CN" else en


@dataclass(frozen=True)
class Formats:
    """Formatting for one language (used as Jinja filters and in page code)."""

    lang: str
    tz: ZoneInfo

    @property
    def locale(self) -> Locale:
        return LOCALES[self.lang]

    def date(self, value: dt.date | str | None, style: str = "medium") -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            value = dt.date.fromisoformat(value[:10])
        if isinstance(value, dt.datetime):
            value = value.astimezone(self.tz).date()
        return format_date(value, style, locale=self.locale)

    def month(self, value: dt.date) -> str:
        return format_skeleton("yMMMM", value, locale=self.locale)

    def datetime(self, value: dt.datetime | str | None, style: str = "short") -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return format_datetime(value, style, tzinfo=self.tz, locale=self.locale)

    def number(self, value: float | int | None, digits: int = 0) -> str:
        if value is None:
            return "–"
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        try:
            return format_decimal(value, pattern, locale=self.locale)
        except (ArithmeticError, ValueError, TypeError):  # a stored value Babel cannot format (1e26, nan): as is
            return str(value)

    def score(self, value: float | None) -> str:
        """A score, the one way (states.numbers): one decimal, half up."""
        return "–" if value is None else self.number(float(score_value(value)), 1)

    def percent(self, value: float | None) -> str:
        if value is None:
            return "–"
        return format_percent(value, "#,##0.0%", locale=self.locale)

    def state(self, value: str) -> str:
        zh, en = STATE_LABELS[State(value)]
        return zh if self.lang == "zh-CN" else en

    def trigger(self, value: str) -> str:
        spec = TRIGGERS.get(value)
        if spec is None:
            label = RECORD_KINDS.get(value)  # records in the chain that are not transitions
            return value if label is None else label.pick(self.lang)
        return spec.label_zh if self.lang == "zh-CN" else spec.label_en

    def named(self, zh: str, en: str) -> str:
        """Campaign data carries both names (districts, milestones, outline items)."""
        return zh if self.lang == "zh-CN" else en


def filters(formats: Formats, gettext_: Callable[[str], str]) -> dict[str, Callable[..., Any]]:
    return {
        "date": formats.date,
        "month": formats.month,
        "datetime": formats.datetime,
        "number": formats.number,
        "score": formats.score,
        "percent": formats.percent,
        "state": formats.state,
        "trigger": formats.trigger,
        "label": gettext_,  # a Chinese label from data, through the catalog
    }


# ---- keeping the catalog current ------------------------------------------------------------------


def extracted(root: Path = ROOT) -> Iterator[tuple[str, str, int]]:
    """(msgid, file, line) of every text marked in templates and page code, then the dynamic labels."""
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(root), method_map=METHODS, options_map=OPTIONS
    ):
        if isinstance(message, tuple):  # plural forms: only the singular is used in Chinese
            message = message[0]
        yield message, filename, lineno
    for text in dynamic_messages():
        yield text, "(workflow/labels.py)", 0


def template_catalog(messages: Iterable[tuple[str, str, int]]) -> Catalog:
    catalog = Catalog(project="dabiao", locale=None, charset="utf-8", fuzzy=False)
    for msgid, filename, lineno in messages:
        catalog.add(msgid, locations=[(filename, lineno)] if lineno else [])
    return catalog


def update_catalog() -> list[str]:
    """Write messages.pot from the sources and merge it into en.po; returns the msgids still untranslated."""
    template = template_catalog(extracted())
    with TEMPLATE.open("wb") as handle:
        write_po(handle, template, width=120, omit_header=True, sort_output=True)
    if CATALOG.exists():
        with CATALOG.open("rb") as handle:
            catalog = read_po(handle, locale="en")
    else:
        catalog = Catalog(locale="en", project="dabiao", fuzzy=False)
    catalog.update(template, no_fuzzy_matching=True)
    catalog.obsolete.clear()
    for msgid, english in catalogue_translations().items():  # the catalogue's English is the translation
        catalog[msgid].string = english
    CATALOG.parent.mkdir(parents=True, exist_ok=True)
    with CATALOG.open("wb") as handle:
        write_po(handle, catalog, width=120, omit_header=True, sort_output=True)
    return [str(m.id) for m in catalog if m.id and not m.string]


if __name__ == "__main__":
    missing = update_catalog()
    print(f"{CATALOG.relative_to(ROOT)}: {len(missing)} untranslated")
    for text in missing:
        print("  ", text)
    sys.exit(0)
