"""One table of input bounds for a firm's record, read by the service checks, the API's schemas and the
pages' forms alike, so every door accepts and refuses the same values.

None of these numbers comes from the plan: they are sanity bounds against abuse (a 1 MB note, funds of
1e26 yuan), chosen to hold any real entry."""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

from states import InvalidInput

# Characters per text field of a firm's record.
TEXT_LIMITS: dict[str, int] = {
    "description": 2000,  # 隐患描述
    "responsible_person": 60,  # 责任人 (the column's own width)
    "measures": 2000,  # 整改措施
    "emergency_plan": 2000,  # 应急预案
    "self_assessment_note": 2000,  # 自评条目说明
    "note": 2000,  # a decision's note (accepting or rejecting a rectification)
    "opinion": 2000,  # 核实意见
    "reason": 2000,
}
FIELD_LABELS: dict[str, tuple[str, str]] = {
    "description": ("隐患描述", "description"),
    "responsible_person": ("责任人", "responsible person"),
    "measures": ("整改措施", "measures"),
    "emergency_plan": ("应急预案", "emergency plan"),
    "self_assessment_note": ("自评说明", "self-assessment note"),
    "note": ("说明", "note"),
    "opinion": ("核实意见", "verification opinion"),
    "reason": ("理由", "reason"),
}

# Funds (整改资金) in yuan: two decimal places (fen), from 0 to ten billion yuan.
FUNDS_PLACES = 2
FUNDS_MAX = Decimal("10000000000")


def check_text(field: str, value: str | None, *, where: tuple[str, str] = ("", "")) -> str | None:
    """The value, or InvalidInput naming the field (and where it is: Chinese, English) when it is longer than
    its limit."""
    if value is None:
        return None
    limit = TEXT_LIMITS[field]
    if len(value) > limit:
        zh, en = FIELD_LABELS[field]
        raise InvalidInput(
            f"{where[0]}{zh}超过 {limit} 字（{len(value)} 字） / {where[1]}{en} is longer than {limit} characters "
            f"({len(value)})"
        )
    return value


def check_funds(value: Any) -> Decimal | None:
    """Funds as a decimal of at most two places between 0 and FUNDS_MAX, from a number or text."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInput("整改资金须为数字 / funds must be a number")
    try:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidOperation
            amount = Decimal(repr(value))
        else:
            amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InvalidInput("整改资金须为数字 / funds must be a number") from None
    if not amount.is_finite() or amount < 0 or amount > FUNDS_MAX:
        raise InvalidInput(f"整改资金须在 0 至 {FUNDS_MAX:,} 元之间 / funds must be between 0 and {FUNDS_MAX:,} yuan")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -FUNDS_PLACES and amount != amount.quantize(Decimal("0.01")):
        raise InvalidInput("整改资金最多精确到分（两位小数） / funds have at most two decimal places (fen)")
    return amount.quantize(Decimal("0.01"))
