"""Human labels for the codes that appear in mail (deadline rules, escalation steps, levels, grounds), read
from the one catalogue in workflow/labels.py."""

from __future__ import annotations

from collections.abc import Mapping

from workflow import labels as catalogue
from workflow.labels import Label

LANGS = ("zh-CN", "en")
DEFAULT_LANG = "zh-CN"

# The names come from the one catalogue (workflow/labels.py); a code not in a table is shown as itself.
RULE_LABELS: dict[str, Label] = catalogue.RULES
STEP_LABELS: dict[str, Label] = catalogue.STEPS
LEVEL_LABELS: dict[str, Label] = catalogue.LEVELS
GROUNDS_LABELS: dict[str, Label] = catalogue.GROUNDS
AUDIENCE_LABELS: dict[str, Label] = catalogue.AUDIENCES


def normalize_lang(value: str | None) -> str:
    """`en`, `en-GB`, `EN` → `en`; anything else (and nothing) → the default, zh-CN."""
    return "en" if value and value.lower().startswith("en") else DEFAULT_LANG


def label(table: Mapping[str, tuple[str, str]], code: object, lang: str) -> str:
    pair = table.get(str(code))
    if pair is None:
        return str(code)
    return pair[1] if normalize_lang(lang) == "en" else pair[0]
