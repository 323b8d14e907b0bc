"""Alembic environment: runs against the engine `workflow.db.migrate` hands over (or the URL)."""

from __future__ import annotations

from alembic import context

import workflow.models  # noqa: F401  (registers the tables)
from workflow.db import make_engine
from workflow.models import metadata

config = context.config


def run() -> None:
    engine = config.attributes.get("engine") or make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run()
