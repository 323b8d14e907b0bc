"""The migrations build exactly the tables the models describe, on both backends."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from workflow.models import BACKEND_INDEXES, metadata


def _declared(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Everything is compared but the indexes a migration makes for one backend only (they are listed)."""
    return not (type_ == "index" and reflected and name in BACKEND_INDEXES)


def test_migrations_match_the_models(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": _declared})
        differences = compare_metadata(context, metadata)
    assert differences == [], "a model changed without a migration: add one under workflow/migrations/versions"


def test_postgresql_gets_its_trigram_index(engine: sa.Engine) -> None:
    """The backend-only indexes exist where they belong (pg_trgm ships with PostgreSQL's contrib)."""
    with engine.connect() as conn:
        names = {i["name"] for i in sa.inspect(conn).get_indexes("enterprises")}
    for name, backend in BACKEND_INDEXES.items():
        assert (name in names) == (engine.dialect.name == backend), name
