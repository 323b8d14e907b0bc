"""sign-in throttling apart from usernames, and the server's own secret

Revision ID: 0008_hardening
Revises: 0008_review
Create Date: 2026-12-01

* login_attempts (one key space shared by usernames and `@<address>` keys, so a username could lock an
  address and an address every account) gives way to login_throttles: a row per (scope, username, address)
  with scope `pair` (one account from one address), `address` (every account from one address) or `account`
  (one account from every address). The columns keep the key spaces apart: no username can name an address.
* server_secrets holds random secrets the server makes for itself on first use (the sign-in form's nonce
  is signed with one), so every process serving one database agrees without any configuration.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import workflow.models

revision: str = "0008_hardening"
down_revision: str | None = "0008_review"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_throttles",
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("username", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", workflow.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("locked_until", workflow.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("scope", "username", "address"),
    )
    op.create_table(
        "server_secrets",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("value", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.drop_table("login_attempts")


def downgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("username", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", workflow.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("locked_until", workflow.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("username"),
    )
    op.drop_table("server_secrets")
    op.drop_table("login_throttles")
