"""The reliability suite's ledger: each test records the faults and attacks it tried, how many times and what
was lost; at the end of the session the ledger becomes docs/RELIABILITY.md, with each row's test outcome."""

from __future__ import annotations

import datetime as dt
import os
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPORT = Path(__file__).resolve().parents[2] / "docs" / "RELIABILITY.md"


@dataclass
class Entry:
    area: str
    attack: str
    backend: str
    tries: int
    lost: str
    detail: str
    nodeid: str
    outcome: str = "running"


@dataclass
class Ledger:
    entries: list[Entry] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)
    current: str = ""

    def record(self, area: str, attack: str, *, tries: int, lost: str = "nothing", detail: str = "",
               backend: str = "—") -> None:  # fmt: skip
        """Note one fault or attack as the test observed it (`lost` is what went missing, "nothing" if none)."""
        self.entries.append(Entry(area, attack, backend, tries, lost, detail, self.current))

    def markdown(self, *, seconds: float) -> str:
        for entry in self.entries:
            entry.outcome = self.outcomes.get(entry.nodeid, entry.outcome)
        failed = sorted({n for n, o in self.outcomes.items() if o != "passed" and o != "skipped"})
        skipped = sorted(n for n, o in self.outcomes.items() if o == "skipped")
        lines = [
            "# Reliability and security report",
            "",
            "Written by `make test-reliability` (tests/reliability/) from what its tests observed; not edited by hand.",
            "",
            f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.node() or 'this machine'}, "
            f"{len(self.outcomes)} tests ({sum(o == 'passed' for o in self.outcomes.values())} passed, "
            f"{len(failed)} failed, {len(skipped)} skipped) in {seconds:.0f} s. PostgreSQL: "
            f"{'yes' if os.environ.get('DABIAO_TEST_DATABASE_URL') else 'not configured, its rows are missing'}.",
            "",
            "| area | fault or attack | database | tries | lost | observed | outcome | test id |",
            "|---|---|---|---:|---|---|---|---|",
        ]
        for e in self.entries:
            lost = e.lost if e.outcome == "passed" else f"{e.lost} (test {e.outcome})"
            detail = e.detail.replace("|", "\\|").replace("\n", " ")
            lines.append(
                f"| {e.area} | {e.attack.replace('|', chr(92) + '|')} | {e.backend} | {e.tries} | {lost} | {detail} "
                f"| {e.outcome} | `{e.nodeid}` |"
            )
        if failed:
            lines += ["", "Failed tests:", *[f"- `{n}`" for n in failed]]
        if skipped:
            lines += ["", "Skipped tests:", *[f"- `{n}`" for n in skipped]]
        return "\n".join(lines) + "\n"


_LEDGER = Ledger()


@pytest.fixture(scope="session", autouse=True)
def _write_report() -> Iterator[None]:
    started = time.monotonic()
    yield
    if _LEDGER.entries and not os.environ.get("DABIAO_RELIABILITY_NO_REPORT"):
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(_LEDGER.markdown(seconds=time.monotonic() - started), encoding="utf-8")


@pytest.fixture
def ledger(request: pytest.FixtureRequest) -> Ledger:
    """The one way a reliability test reports: each records its row(s) here (attack, backend, tries, what was
    lost, what was observed)."""
    _LEDGER.current = request.node.nodeid
    return _LEDGER


@pytest.fixture(autouse=True)
def _every_test_writes_its_row(request: pytest.FixtureRequest) -> Iterator[None]:
    """A reliability test that passes without a row in the report fails: the report shows every test."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.passed:
        assert any(e.nodeid == request.node.nodeid for e in _LEDGER.entries), (
            f"{request.node.nodeid} wrote no row: record what it tried with the `ledger` fixture"
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    if report.when == "call" or report.outcome != "passed":
        previous = _LEDGER.outcomes.get(item.nodeid)
        if previous in (None, "passed"):
            _LEDGER.outcomes[item.nodeid] = report.outcome
    return report


def backend_of(db_url: str) -> str:
    return "SQLite" if db_url.startswith("sqlite") else "PostgreSQL"
