"""certificates: numbers, validity and the city's 标杆 decision; a firm's earlier standardization certificate

Revision ID: 0008_certs
Revises: 0007
Create Date: 2026-12-01

* certifications.certificate_no (unique), valid_until: the published certificate.
* certifications.benchmark_at / benchmark_by: the city bureau named the firm 标杆 (level = benchmark).
* enterprises.prior_certificate_no / _date / _recorded_at: the earlier level-1/2 certificate (原一级、二级安全
  生产标准化证书) beside the existing prior_certificate_level; `_recorded_at` unset means nobody recorded
  whether the firm holds one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import workflow.models

revision: str = "0008_certs"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("certifications") as batch:
        batch.add_column(sa.Column("certificate_no", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch.add_column(sa.Column("valid_until", sa.Date(), nullable=True))
        batch.add_column(sa.Column("benchmark_at", workflow.models.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("benchmark_by", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True))
        batch.create_unique_constraint("uq_certifications_certificate_no", ["certificate_no"])
    with op.batch_alter_table("enterprises") as batch:
        batch.add_column(sa.Column("prior_certificate_no", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True))
        batch.add_column(sa.Column("prior_certificate_date", sa.Date(), nullable=True))
        batch.add_column(
            sa.Column("prior_certificate_recorded_at", workflow.models.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("enterprises") as batch:
        batch.drop_column("prior_certificate_recorded_at")
        batch.drop_column("prior_certificate_date")
        batch.drop_column("prior_certificate_no")
    with op.batch_alter_table("certifications") as batch:
        batch.drop_constraint("uq_certifications_certificate_no", type_="unique")
        batch.drop_column("benchmark_by")
        batch.drop_column("benchmark_at")
        batch.drop_column("valid_until")
        batch.drop_column("certificate_no")
