"""The HTTP benchmark's baseline: a bare FastAPI endpoint doing one query (no auth, no scoping, no schema),
served by uvicorn like Dabiao, on the same database.

    DABIAO_DATABASE_URL=postgresql+psycopg://… uvicorn bench.bare_app:app --workers 2
"""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, HTTPException

engine = sa.create_engine(os.environ["DABIAO_DATABASE_URL"], pool_pre_ping=True)
app = FastAPI()
_FIRM = sa.text("SELECT id, name, district_code, state, version FROM enterprises WHERE id = :id")


@app.get("/firm/{firm_id}")
def firm(firm_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(_FIRM, {"id": firm_id}).first()
    if row is None:
        raise HTTPException(404)
    return dict(row._mapping)
