"""list indexes: the firm list sorted by name, by the day it entered its state, by district and name, and
in directory order within a district, each ending in the id that breaks ties; on PostgreSQL a trigram index
(pg_trgm) on the name for searching words inside names

A page of a sorted list is then a range of one index (keyset: the rows after the last row seen) and a jump
to page N skips index entries, never whole rows. The trigram index is made only where the extension can be
created (it ships in PostgreSQL's contrib); without it a search reads every name, as on SQLite.

Revision ID: 0010_lists
Revises: 0009_supervision
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_lists"
down_revision: str | None = "0010_summary"  # after the daily summary
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_enterprises_name_id": ["name", "id"],
    "ix_enterprises_state_since_id": ["state_since", "id"],
    "ix_enterprises_district_id": ["district_code", "id"],
    "ix_enterprises_district_name_id": ["district_code", "name", "id"],
}
TRIGRAM = "ix_enterprises_name_trgm"


def _trigram_schema(conn: sa.Connection) -> str | None:
    """The schema holding pg_trgm, creating the extension if it is available and not there yet."""
    installed = conn.execute(
        sa.text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'pg_trgm'"
        )
    ).scalar()
    if installed:
        return str(installed)
    available = conn.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).scalar()
    if not available:
        return None
    with conn.begin_nested():
        try:
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
        except sa.exc.DBAPIError:  # no right to create extensions: the search reads every name
            return None
    return "public"


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "enterprises", columns, unique=False)
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        schema = _trigram_schema(conn)
        if schema is not None:
            op.execute(f'CREATE INDEX {TRIGRAM} ON enterprises USING gin (name "{schema}".gin_trgm_ops)')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {TRIGRAM}")
    for name in INDEXES:
        op.drop_index(name, table_name="enterprises")
