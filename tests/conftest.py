"""Fixtures: a fresh database per test on SQLite (a file) and on PostgreSQL (DABIAO_TEST_DATABASE_URL)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from workflow.campaign import Campaign, load_campaign, sync_districts
from workflow.db import make_engine, migrate
from workflow.settings import DEFAULT_CAMPAIGN

PG_URL = os.environ.get("DABIAO_TEST_DATABASE_URL")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def campaign() -> Campaign:
    return load_campaign(DEFAULT_CAMPAIGN)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory, campaign: Campaign) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.begin() as conn:
        sync_districts(conn, campaign)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_schema_url(campaign: Campaign) -> Iterator[str]:
    """One migrated schema per test session; tables are emptied between tests."""
    if not PG_URL:
        pytest.skip("DABIAO_TEST_DATABASE_URL is not set (make test sets it when PostgreSQL is up)")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = sa.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    url_text = url.render_as_string(hide_password=False)
    engine = make_engine(url_text)
    migrate(engine)
    engine.dispose()
    yield url_text
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


def _truncate_all(engine: sa.Engine, campaign: Campaign) -> None:
    with engine.begin() as conn:
        names = [t for t in sa.inspect(conn).get_table_names() if t != "alembic_version"]
        conn.exec_driver_sql(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE")
        # a test may have dropped the append-only guard (playing an intruder): put it back
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS events_append_only ON events")
        conn.exec_driver_sql(
            "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events "
            "FOR EACH ROW EXECUTE FUNCTION dabiao_events_append_only()"
        )
        sync_districts(conn, campaign)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path, campaign: Campaign) -> str:
    if request.param == "sqlite":
        path = tmp_path / "dabiao.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_schema_url")
    engine = make_engine(url)
    _truncate_all(engine, campaign)
    engine.dispose()
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def world(engine: sa.Engine, campaign: Campaign, tmp_path: Path) -> object:
    """The API on this test's database, with a user per role (see tests/api_helpers.py)."""
    from tests.api_helpers import build_world

    return build_world(engine, campaign, tmp_path)
