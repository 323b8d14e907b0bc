"""The `dabiao` command line as an administrator uses it."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner, Result

from api.cli import main
from tests.factories import make_firm
from workflow.tables import DISTRICTS, ENTERPRISES


def run(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--database-url", db_url, *args], catch_exceptions=False)


def uscc_of(engine: sa.Engine, firm_id: int) -> str:
    with engine.connect() as conn:
        return str(conn.execute(sa.select(ENTERPRISES.c.uscc).where(ENTERPRISES.c.id == firm_id)).scalar_one())


def test_init_creates_the_database_and_is_harmless_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'dabiao.db'}"
    first = run(url, "init")
    assert first.exit_code == 0, first.output
    assert "database ready" in first.output and "7 districts" in first.output
    second = run(url, "init")
    assert second.exit_code == 0
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(DISTRICTS)).scalar_one() == 7
    engine.dispose()


def test_init_on_an_existing_database_keeps_its_firms(engine: sa.Engine, db_url: str) -> None:
    make_firm(engine)
    assert run(db_url, "init").exit_code == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ENTERPRISES)).scalar_one() == 1


def test_commands_on_an_empty_database_say_to_run_init(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--database-url", f"sqlite:///{tmp_path / 'x.db'}", "stats"])
    assert result.exit_code == 1
    assert "run `dabiao init` first" in result.output


def test_fire_and_show_drive_one_firm(engine: sa.Engine, db_url: str) -> None:
    code = uscc_of(engine, make_firm(engine, key_field=True, name="常州<天宁>&化工有限公司"))
    assert run(db_url, "fire", code, "notify", "--role", "district_bureau", "--as-of", "2022-02-10").exit_code == 0
    fired = run(
        db_url,
        "fire",
        code,
        "start_self_assessment",
        "--role",
        "enterprise",
        "--json",
        "--as-of",
        "2022-03-02",
    )
    assert json.loads(fired.output) | {"at": None, "event_id": None} == {
        "uscc": code,
        "trigger": "start_self_assessment",
        "from": "mobilized",
        "to": "self_assessing",
        "version": 3,
        "event_id": None,
        "at": None,
        "record": {},
        "mails": [],
    }
    shown = json.loads(run(db_url, "show", code, "--json").output)
    assert shown["name"] == "常州<天宁>&化工有限公司"
    assert (shown["state"], shown["state_label"], shown["version"]) == ("self_assessing", "自评中", 3)
    assert shown["notified_at"].startswith("2022-02-10")
    assert [e["trigger"] for e in shown["events"]] == ["notify", "start_self_assessment"]
    assert shown["allowed_triggers"] == {"city_bureau": ["close"], "district_bureau": ["close"]}
    text = run(db_url, "show", code)
    assert "自评中 (self_assessing)" in text.output


def test_a_refused_fire_explains_itself(engine: sa.Engine, db_url: str) -> None:
    code = uscc_of(engine, make_firm(engine))
    refused = CliRunner().invoke(main, ["--database-url", db_url, "fire", code, "close", "--role", "district_bureau"])
    assert refused.exit_code == 1
    assert "[guard_failed]" in refused.output and "a reason is required" in refused.output
    bad_json = CliRunner().invoke(
        main,
        ["--database-url", db_url, "fire", code, "close", "--role", "district_bureau", "--data", "{reason"],
    )
    assert bad_json.exit_code == 2 and "not valid JSON" in bad_json.output
    missing = CliRunner().invoke(main, ["--database-url", db_url, "show", "91320412MA1XXXXXXX"])
    assert missing.exit_code == 1 and "no such enterprise" in missing.output
    closed = run(db_url, "fire", code, "close", "--role", "district_bureau", "--data", '{"reason": "企业已注销"}')
    assert closed.exit_code == 0 and "mobilized → closed" in closed.output


def test_stats_counts_per_state_district_and_field(engine: sa.Engine, db_url: str) -> None:
    for district, key in [("320412", True), ("320412", True), ("320412", False), ("320481", False)]:
        make_firm(engine, district=district, key_field=key)
    code = uscc_of(engine, 1)
    run(db_url, "fire", code, "start_self_assessment", "--role", "enterprise")
    stats = json.loads(run(db_url, "stats", "--json").output)
    assert stats["total"] == 4
    assert sorted((c["district_name"], c["key_field"], c["state"], c["count"]) for c in stats["cells"]) == [
        ("武进区", False, "mobilized", 1),
        ("武进区", True, "mobilized", 1),
        ("武进区", True, "self_assessing", 1),
        ("溧阳市", False, "mobilized", 1),
    ]


def test_bad_settings_are_refused_at_start(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--database-url", "mysql://x", "stats"])
    assert result.exit_code == 1
    assert "DABIAO_DATABASE_URL" in result.output


def test_diagram_writes_the_markdown(tmp_path: Path) -> None:
    out = tmp_path / "wf.md"
    assert CliRunner().invoke(main, ["diagram", "-o", str(out)]).exit_code == 0
    assert "stateDiagram-v2" in out.read_text(encoding="utf-8")


def test_generate_and_import_a_directory_from_the_command_line(engine: sa.Engine, db_url: str, tmp_path: Path) -> None:
    directory = tmp_path / "directory.csv"
    generated = run(db_url, "generate-directory", "--count", "300", "--seed", "5", "-o", str(directory))
    assert generated.exit_code == 0 and "wrote 300 firms" in generated.output
    imported = run(db_url, "import-directory", str(directory), "--as-of", "2022-01-05")
    assert imported.exit_code == 0, imported.output
    assert "imported 300 rows: 300 new, 0 updated, 0 unchanged" in imported.output
    again = run(db_url, "import-directory", str(directory))
    assert "0 new, 0 updated, 300 unchanged" in again.output
    with engine.connect() as conn:
        firm = conn.execute(sa.select(ENTERPRISES).limit(1)).one()
    assert firm.state_since.date().isoformat() == "2022-01-05"


def test_a_bad_directory_is_refused_with_every_problem_located(engine: sa.Engine, db_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "统一社会信用代码,企业名称,所属辖区,行业,重点监管,规模以上,主要负责人,联系电话,电子邮箱\n"
        "91320412MA1XXXXXX1,测试,南京市,化工,,是,张三,,\n",
        encoding="utf-8",
    )
    refused = CliRunner().invoke(main, ["--database-url", db_url, "import-directory", str(bad)])
    assert refused.exit_code == 1
    assert "file refused, 2 problem(s)" in refused.output
    assert "line 2, column 统一社会信用代码: " in refused.output
    assert "line 2, column 所属辖区: 所属辖区“南京市”不存在 / unknown district: 南京市" in refused.output
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ENTERPRISES)).scalar_one() == 0


def test_users_are_created_with_their_scope(engine: sa.Engine, db_url: str) -> None:
    code = uscc_of(engine, make_firm(engine))

    def create(*args: str, password: str = "a long enough password") -> Result:
        return CliRunner().invoke(
            main, ["--database-url", db_url, "users", "create", *args, "--password-stdin"], input=password + "\n"
        )

    assert create("--username", "wujin", "--role", "district_bureau", "--district", "武进区").exit_code == 0
    assert create("--username", "boss", "--role", "enterprise", "--enterprise", code).exit_code == 0
    assert (
        create(
            "--username", "expert", "--role", "reviewer", "--organisation", "江苏安评中心", "--trained-on", "2022-03-01"
        ).exit_code
        == 0
    )
    no_district = create("--username", "lost", "--role", "district_bureau")
    assert no_district.exit_code == 1 and "need a district" in no_district.output
    short = create("--username", "weak", "--role", "city_bureau", password="short")
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    taken = create("--username", "wujin", "--role", "city_bureau")
    assert taken.exit_code == 1 and "username wujin is taken" in taken.output
    listed = json.loads(run(db_url, "users", "list", "--json").output)
    assert [(u["username"], u["role"], u["district_code"]) for u in listed] == [
        ("wujin", "district_bureau", "320412"),
        ("boss", "enterprise", None),
        ("expert", "reviewer", None),
    ]
