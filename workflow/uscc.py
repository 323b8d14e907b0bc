"""The unified social credit code (统一社会信用代码, GB 32100-2015) and its check character."""

from __future__ import annotations

import random

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 characters: no I, O, S, V, Z
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def check_character(first17: str) -> str:
    """The 18th character for the first seventeen. Raises ValueError on a character outside the set."""
    if len(first17) != 17:
        raise ValueError("need exactly 17 characters")
    total = 0
    for char, weight in zip(first17, _WEIGHTS, strict=True):
        if char not in _VALUE:
            raise ValueError(f"character {char!r} is not allowed in a credit code")
        total += _VALUE[char] * weight
    return ALPHABET[(31 - total % 31) % 31]


def problem(code: str) -> str | None:
    """Why `code` is not a valid credit code, in words a clerk understands; None when it is valid."""
    if len(code) != 18:
        return f"统一社会信用代码应为18位，实际{len(code)}位 / the credit code must have 18 characters, not {len(code)}"
    bad = sorted({c for c in code if c not in _VALUE})
    if bad:
        shown = "".join(bad)
        return f"统一社会信用代码含非法字符“{shown}” / the credit code contains characters not allowed: {shown}"
    expected = check_character(code[:17])
    if code[17] != expected:
        return (
            f"统一社会信用代码校验位错误：应为“{expected}”，实际为“{code[17]}” / "
            f"wrong check character: expected {expected}, found {code[17]}"
        )
    return None


def normalize(code: str) -> str:
    return code.strip().upper()


def make(rng: random.Random, *, division: str, registry: str = "91") -> str:
    """A valid synthetic code: registry + type ('91' = enterprise, market regulator), six-digit
    administrative division, nine-character organisation code, check character."""
    org = "".join(rng.choice(ALPHABET[:10] + ALPHABET[10:]) for _ in range(8)) + rng.choice(ALPHABET[:10])
    first17 = f"{registry}{division}{org}"
    return first17 + check_character(first17)
