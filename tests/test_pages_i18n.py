"""The English catalog is current: every text marked in the templates and page code (and every Chinese label
the pages take from other packages' data) has a translation with the same placeholders, and nothing stale
is left. Update with `.venv/bin/python -m api.pages.i18n`, then translate what it lists."""

from __future__ import annotations

import re

from babel.messages.pofile import read_po

from api.pages.i18n import CATALOG, TEMPLATE, extracted
from tests.api_helpers import World
from tests.test_pages_access import Browser

PLACEHOLDER = re.compile(r"%\((\w+)\)s")
CJK = re.compile(r"[\u3400-\u9fff]")


def catalog() -> dict[str, str]:
    with CATALOG.open("rb") as handle:
        po = read_po(handle, locale="en")
    assert not po.obsolete
    return {str(m.id): str(m.string) for m in po if m.id and not m.fuzzy}


def test_every_marked_text_has_a_current_translation() -> None:
    wanted = {msgid for msgid, _file, _line in extracted()}
    translated = catalog()
    assert len(wanted) > 250
    missing = sorted(wanted - set(translated))
    assert missing == [], "run `python -m api.pages.i18n` and translate these"
    untranslated = sorted(m for m in wanted if not translated[m].strip())
    assert untranslated == []
    stale = sorted(set(translated) - wanted)
    assert stale == [], "texts no longer used: run `python -m api.pages.i18n`"
    for msgid in wanted:
        assert sorted(PLACEHOLDER.findall(msgid)) == sorted(PLACEHOLDER.findall(translated[msgid])), msgid
        assert not CJK.search(translated[msgid]), msgid


def test_the_template_catalog_is_current() -> None:
    with TEMPLATE.open("rb") as handle:
        template = {str(m.id) for m in read_po(handle) if m.id}
    assert template == {msgid for msgid, _file, _line in extracted()}


def test_an_english_page_has_no_chinese_but_the_brand_and_the_switch(world: World) -> None:
    anonymous = Browser(world, None)
    page = anonymous.get("/login?lang=en")
    text = re.sub(r"<[^>]+>", " ", page.text)
    assert set(CJK.findall(text)) <= set("达标中文")
    assert "Sign in" in text and "Changzhou" in text
    chinese = Browser(world, None).get("/login")
    assert "登录" in chinese.text and "Sign in" not in chinese.text
    # Accept-Language decides when nothing else has
    accepts = Browser(world, None).get("/login", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert "Sign in" in accepts.text
