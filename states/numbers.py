"""How a score is written — the one way for pages, mail, exports and refusals: one decimal, rounded half up
(四舍五入) from the decimal the score was stored as, so a team's 89.13 reads 89.1 and 89.0 stays 89.0
wherever it is shown."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

ONE_DECIMAL = Decimal("0.1")


def score_value(value: float | int | Decimal) -> Decimal:
    """The score as shown: one decimal, half up (from its decimal text, not its binary float)."""
    return Decimal(str(value)).quantize(ONE_DECIMAL, rounding=ROUND_HALF_UP)


def score_text(value: float | int | Decimal | None) -> str:
    """A score as plain text ("89.1"); no score is "–"."""
    return "–" if value is None else str(score_value(value))
