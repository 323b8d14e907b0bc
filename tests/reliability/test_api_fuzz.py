"""The whole HTTP API fuzzed from its own OpenAPI description (schemathesis) as each role, on a SQLite file:
no 5xx, every response matches its documented schema; and every operation that names a firm, tried on the
firms outside each role's scope, never answers with their data."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.api_helpers import World
from tests.reliability.conftest import Ledger

ROLES = ("city", "center", "wujin", "wujin_gov", "firm", "expert1")
EXAMPLES = 12  # per operation and role: bounded so the whole fuzz takes a minute or two
SCOPE = {  # firms each user may not see (World.firms keys)
    "wujin": ("away_key", "away_other"),
    "wujin_gov": ("away_key", "away_other", "home_other"),
    "firm": ("home_other", "away_key", "away_other"),
    "expert1": ("home_key", "home_other", "away_key", "away_other"),  # no assignment yet
}

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def api_schema(world: World) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", world.client.app)


def fuzz_operation(operation: Any, username: str, headers: dict[str, str], statuses: Counter[int],
                   failures: list[str]) -> None:  # fmt: skip
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
    def fuzz(case: Any) -> None:
        case.headers = {**(case.headers or {}), **headers}  # the role's token wins over a generated one
        response = case.call()
        statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
        except Exception as exc:  # collected and reported together
            failures.append(f"{username} {operation.method.upper()} {operation.path}: {exc}"[:800])

    fuzz()


def test_fuzz_every_operation_as_every_role(world: World, ledger: Ledger) -> None:
    schema = api_schema(world)
    operations = [op.ok() for op in schema.get_all_operations()]
    operations = [op for op in operations if op.path.startswith("/api/") and op.path != "/api/auth/token"]
    assert len(operations) >= 15
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    for username in ROLES:
        for operation in operations:
            world.tokens.pop(username, None)  # a fuzzed sign-out revoked the last one: sign in afresh
            fuzz_operation(operation, username, world.as_(username), statuses, failures)
    calls = sum(statuses.values())
    assert failures == [], "\n\n".join(failures[:10])
    assert not [s for s in statuses if s >= 500]
    assert statuses[401] < calls / 10  # the fuzz ran signed in, not against the sign-in wall
    ledger.record(
        "hostile input",
        f"schemathesis over /openapi.json: {len(operations)} operations × {len(ROLES)} roles, "
        f"≤{EXAMPLES} examples each",
        backend="SQLite",
        tries=calls,
        detail="no 5xx, every response matches its schema; answers: "
        + ", ".join(f"{n}× {s}" for s, n in sorted(statuses.items())),
    )


def test_no_operation_reaches_a_firm_outside_the_scope(world: World, ledger: Ledger) -> None:
    schema = api_schema(world)
    operations = [op.ok() for op in schema.get_all_operations()]
    named = [op for op in operations if "{enterprise_id}" in op.path]
    assert named
    tried = 0
    leaks: list[str] = []
    for username, hidden in SCOPE.items():
        headers = world.as_(username)
        for key in hidden:
            firm_id = world.firms[key]
            before = world.firm(firm_id, "city")
            for op in named:
                path = re.sub(r"\{enterprise_id\}", str(firm_id), op.path)
                path = re.sub(r"\{trigger\}", "notify", path)
                path = re.sub(r"\{[a-z_]+\}", "1", path)
                body = {"version": before["version"], "data": None} if "transitions" in path else {}
                if op.method.upper() == "GET":
                    response = world.client.get(path, headers=headers)
                else:
                    response = world.client.request(op.method.upper(), path, json=body, headers=headers)
                tried += 1
                if response.status_code < 300 or response.status_code >= 500:
                    leaks.append(f"{username} {op.method.upper()} {path}: {response.status_code} {response.text[:200]}")
            assert world.firm(firm_id, "city")["version"] == before["version"]  # nothing changed on it
    assert leaks == [], "\n".join(leaks)
    ledger.record(
        "access",
        f"every operation naming a firm ({len(named)}), tried as {len(SCOPE)} scoped roles on each firm outside "
        "their scope",
        backend="SQLite",
        tries=tried,
        detail="all refused (403/404/422), none answered with the firm's data or changed it",
    )
