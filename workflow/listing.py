"""What every list shares: sorting by a whitelisted column (ascending or descending, ties broken by id), page
sizes, pages by number or by keyset (the row before or after), and search text split into words."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from states import InvalidInput

PAGE_SIZES = (20, 50, 100, 200)  # what the pages offer; the API takes any size from 1 to MAX_PAGE_SIZE
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_PAGE = 1_000_000
MAX_WORDS = 5  # a search of more words than this is refused rather than run as a long chain of scans
SEARCH_LIMIT = 100  # characters
CREDIT_CODE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{18}$")  # GB 32100-2015's alphabet: no I, O, S, V, Z


@dataclass(frozen=True)
class Order:
    """A list's sort: a column key from the list's whitelist, and its direction (`-key` is descending)."""

    key: str
    descending: bool = False

    @property
    def text(self) -> str:
        return ("-" if self.descending else "") + self.key

    def flipped(self) -> Order:
        return Order(self.key, not self.descending)


def parse_order(text: str | None, *, allowed: Sequence[str], default: str) -> Order:
    """`name` or `-name` into an Order; a key outside `allowed` is refused with the keys one may use."""
    text = (text or "").strip() or default
    descending = text.startswith("-")
    key = text.lstrip("-")
    if key not in allowed:
        zh, en = "、".join(allowed), ", ".join(allowed)
        raise InvalidInput(f"不能按“{key}”排序，可排序的列：{zh} / cannot sort by {key!r}; sortable: {en}")
    return Order(key, descending)


def check_paging(page: int, page_size: int) -> None:
    if not 1 <= page <= MAX_PAGE or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInput(
            f"页码从1开始（最多{MAX_PAGE}），每页1至{MAX_PAGE_SIZE}条 / "
            f"page from 1 (at most {MAX_PAGE}), page_size 1–{MAX_PAGE_SIZE}"
        )


def page_count(total: int, page_size: int) -> int:
    return max(1, -(-total // page_size))


def search_words(text: str | None) -> list[str]:
    """The words of a search (split on any white space, full-width too); every one of them must match."""
    if text is None:
        return []
    if len(text) > SEARCH_LIMIT:
        raise InvalidInput(f"搜索词最多{SEARCH_LIMIT}字 / the search text is limited to {SEARCH_LIMIT} characters")
    words = list(dict.fromkeys(text.split()))  # str.split() splits on U+3000 too; a repeated word counts once
    if len(words) > MAX_WORDS:
        raise InvalidInput(f"搜索词最多{MAX_WORDS}个 / at most {MAX_WORDS} search words")
    return words


def like_pattern(word: str) -> str:
    """`%word%` with LIKE's own characters escaped (escape character: backslash)."""
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def word_matches(word: str, *, name: sa.ColumnElement[str], code: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    """One search word against a firm: a whole credit code is looked up by its unique index; any other word
    is found in the name, and a word of credit-code characters also as the start of the credit code."""
    upper = word.upper()
    if CREDIT_CODE.match(upper):
        return code == upper
    contains = name.like(like_pattern(word), escape="\\")
    if upper.isascii() and upper.isalnum():
        # a prefix as a range, so that the unique index answers it on both backends (LIKE on SQLite ignores case)
        return sa.or_(contains, sa.and_(code >= upper, code < upper + "\x7f"))
    return contains


def keyset_after(
    keys: Sequence[sa.ColumnElement[object]], values: Sequence[object], *, descending: bool
) -> sa.ColumnElement[bool]:
    """Rows strictly after `values` in the order of `keys` (all in one direction; the last key is unique):
    (k1 > v1) OR (k1 = v1 AND k2 > v2) OR … — written with a leading range on k1 so an index on k1 is used."""
    terms: list[sa.ColumnElement[bool]] = []
    for i, (key, value) in enumerate(zip(keys, values, strict=True)):
        equal = [k == v for k, v in zip(keys[:i], values[:i], strict=True)]
        beyond = key < value if descending else key > value
        terms.append(sa.and_(*equal, beyond))
    first = keys[0] <= values[0] if descending else keys[0] >= values[0]
    return sa.and_(first, sa.or_(*terms))


def order_by(keys: Sequence[sa.ColumnElement[object]], *, descending: bool) -> list[sa.ColumnElement[object]]:
    return [k.desc() if descending else k.asc() for k in keys]


def sort_columns(
    order: Order, columns: Mapping[str, Sequence[sa.ColumnElement[object]]], tiebreak: sa.ColumnElement[object]
) -> list[sa.ColumnElement[object]]:
    """The ORDER BY of a list: the chosen column's expressions, then the id, all in the chosen direction."""
    return order_by([*columns[order.key], tiebreak], descending=order.descending)
