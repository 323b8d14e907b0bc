"""docs/RELIABILITY.md comes from a full run of `make test-reliability`: it names every test of
tests/reliability/ by its test id, so a test added without running the suite (or one that writes no row)
makes this fail."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "tests" / "reliability"
REPORT = ROOT / "docs" / "RELIABILITY.md"


def reliability_tests() -> list[str]:
    ids = []
    for path in sorted(SUITE.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_"):
                ids.append(f"{path.relative_to(ROOT).as_posix()}::{node.name}")
    return ids


def test_the_reliability_report_lists_every_reliability_test() -> None:
    tests = reliability_tests()
    assert len(tests) >= 20
    report = REPORT.read_text(encoding="utf-8")
    missing = [t for t in tests if f"`{t}" not in report]
    assert missing == [], "run `make test-reliability` and commit docs/RELIABILITY.md"
