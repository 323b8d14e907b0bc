"""A bulk of transitions in a subprocess, to be killed: `python -m tests.reliability.fire_many DB_URL FIRST LAST`
notifies each firm with an id in FIRST..LAST and starts its self-assessment, one transaction per transition."""

from __future__ import annotations

import datetime as dt
import sys

from sqlmodel import Session

from states import Role
from workflow.actors import Actor
from workflow.campaign import load_campaign
from workflow.clock import FixedClock
from workflow.context import Context
from workflow.db import make_engine
from workflow.engine import fire, load_firm
from workflow.settings import DEFAULT_CAMPAIGN

STEPS = (("notify", Role.district_bureau), ("start_self_assessment", Role.enterprise))


def main(url: str, first: int, last: int) -> None:
    engine = make_engine(url)
    campaign = load_campaign(DEFAULT_CAMPAIGN)
    clock = FixedClock.on(dt.date(2022, 3, 10))
    for firm_id in range(first, last + 1):
        for trigger, role in STEPS:
            with engine.connect() as conn:
                firm = load_firm(conn, enterprise_id=firm_id)
            actor = Actor(name="bulk script", role=role, district_code=firm.district_code, enterprise_id=firm.id)
            with Session(engine) as session:
                fire(session, enterprise_id=firm_id, trigger=trigger, actor=actor, context=Context(campaign, clock))
        print(firm_id, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
