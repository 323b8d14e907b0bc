"""`dabiao serve` for real: a uvicorn process on loopback with the scheduler inside (SQLite), and the
health check's view of the scheduler's leader on PostgreSQL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from deadlines.scheduler import Leadership
from tests.api_helpers import build_world
from tests.conftest import _truncate_all
from workflow.campaign import Campaign
from workflow.db import make_engine

DABIAO = str(Path(sys.executable).with_name("dabiao"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: dict[str, object] = json.loads(response.read())
        return body


def test_serve_answers_with_the_scheduler_inside(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dabiao.db'}"
    env = {**os.environ, "DABIAO_DATABASE_URL": url, "DABIAO_MAIL_DIR": str(tmp_path / "mail")}
    subprocess.run([DABIAO, "init"], env=env, check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen(
        [DABIAO, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = get_json(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError(server.stdout.read().decode() if server.stdout else "no output") from None
                time.sleep(0.2)
        assert health == {"status": "up"}
        answer = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert answer.headers.get("server") is None  # uvicorn names itself unless told not to
        docs = urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=5).read()
        assert b"/api/enterprises/{enterprise_id}/transitions/{trigger}" in docs
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.postgres
def test_health_knows_whether_a_scheduler_leads_on_postgresql(
    pg_schema_url: str, campaign: Campaign, tmp_path: Path
) -> None:
    engine = make_engine(pg_schema_url)
    _truncate_all(engine, campaign)
    world = build_world(engine, campaign, tmp_path)
    assert world.client.get("/api/ops/health", headers=world.as_("city")).json()["scheduler_leader"] is False
    leader = Leadership(sa.create_engine(world.engine.url))
    try:
        assert leader.ensure()
        assert world.client.get("/api/ops/health", headers=world.as_("city")).json()["scheduler_leader"] is True
    finally:
        leader.release()
        leader.engine.dispose()
    assert world.client.get("/api/ops/health", headers=world.as_("city")).json()["scheduler_leader"] is False
    engine.dispose()
