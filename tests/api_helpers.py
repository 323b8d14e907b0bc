"""A small world for API tests: the app on a real database, one signed-in user per role, and firms in and
out of each user's scope."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.app import create_app
from states import TRIGGERS, Role
from tests.factories import make_firm
from workflow.accounts import NewUser, create_user
from workflow.campaign import Campaign
from workflow.clock import FixedClock
from workflow.settings import Settings

HOME = "320412"  # 武进区: the district of the district bureau and local government below
ELSEWHERE = "320481"  # 溧阳市
PASSWORD = "correct horse battery"


@dataclass
class World:
    client: TestClient
    engine: sa.Engine
    campaign: Campaign
    clock: FixedClock
    settings: Settings
    firms: dict[str, int] = field(default_factory=dict)  # home_key, home_other, away_key, away_other
    users: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def add_user(self, username: str, role: Role, **kw: Any) -> int:
        with Session(self.engine) as session:
            user_id = create_user(
                session,
                new=NewUser(username=username, password=PASSWORD, role=role, display_name=username, **kw),
                clock=self.clock,
            )
        self.users[username] = user_id
        return user_id

    def sign_in(self, username: str) -> dict[str, str]:
        if username not in self.tokens:
            response = self.client.post("/api/auth/token", data={"username": username, "password": PASSWORD})
            assert response.status_code == 200, response.text
            self.tokens[username] = response.json()["access_token"]
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    def as_(self, username: str) -> dict[str, str]:
        return self.sign_in(username)

    def firm(self, firm_id: int, username: str) -> dict[str, Any]:
        response = self.client.get(f"/api/enterprises/{firm_id}", headers=self.as_(username))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def fire(self, firm_id: int, trigger: str, username: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        """Fire through the API as `username`; a destructive trigger is confirmed with the firm's name unless
        `confirm_name` is given (None: left out)."""
        seen = self.firm(firm_id, "city")
        body: dict[str, Any] = {"version": seen["version"], "data": data}
        destructive = trigger in TRIGGERS and TRIGGERS[trigger].destructive
        confirm = kw.pop("confirm_name", seen["name"] if destructive else None)
        if confirm is not None:
            body["confirm_name"] = confirm
        return self.client.post(
            f"/api/enterprises/{firm_id}/transitions/{trigger}",
            json=body,
            headers=self.as_(username) | kw.pop("headers", {}),
            **kw,
        )


def build_world(engine: sa.Engine, campaign: Campaign, tmp_path: Path) -> World:
    settings = Settings(
        database_url=str(engine.url.render_as_string(hide_password=False)),
        data_dir=tmp_path / "data",
        login_delay_seconds=0,
        login_delay_max_seconds=0,
        upload_max_bytes=64 * 1024,
        cookie_secure=False,  # TestClient speaks plain http
    )
    clock = FixedClock.on(dt.date(2022, 7, 1))
    app = create_app(settings=settings, campaign=campaign, engine=engine, clock=clock)
    world = World(TestClient(app), engine, campaign, clock, settings)
    world.firms = {
        "home_key": make_firm(engine, district=HOME, key_field=True, name='常州<武进>&"化工"有限公司'),
        "home_other": make_firm(engine, district=HOME, key_field=False),
        "away_key": make_firm(engine, district=ELSEWHERE, key_field=True),
        "away_other": make_firm(engine, district=ELSEWHERE, key_field=False),
    }
    world.add_user("city", Role.city_bureau)
    world.add_user("center", Role.support_center)
    world.add_user("wujin", Role.district_bureau, district_code=HOME)
    world.add_user("liyang", Role.district_bureau, district_code=ELSEWHERE)
    world.add_user("wujin_gov", Role.local_government, district_code=HOME)
    world.add_user("firm", Role.enterprise, enterprise_id=world.firms["home_key"], email="boss@example.com")
    world.add_user("firm_other", Role.enterprise, enterprise_id=world.firms["home_other"])
    for n in range(1, 6):
        world.add_user(
            f"expert{n}",
            Role.reviewer,
            organisation="江苏安全评价中心",
            trained_on=dt.date(2022, 3, 1),
            email=f"expert{n}@example.com",
        )
    return world
