"""Targets as data, honestly labelled. The plan: 2022年底前，全市重点监管领域企业需全部开展创建工作；2023年底前，
全市非重点监管领域的规模以上企业需全部开展创建工作（具体创建目标任务见附件2） — 附件2's figures are targets for
firms *starting*, not for certified firms. Without official figures the dashboard says 目标未录入 or marks the
stand-in (示例数值，非官方); `dabiao campaign targets import FILE.xlsx` loads official figures, which then win."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import sqlalchemy as sa
from click.testing import CliRunner

from api.cli import main
from tests.api_helpers import ELSEWHERE, HOME, World
from tests.deadline_helpers import Firm
from tests.factories import make_firm
from tests.test_pages_access import Browser
from workflow.campaign import Campaign
from workflow.context import Context
from workflow.dashboard import overview
from workflow.tables import DISTRICT_TARGETS

# The seven districts of the plan (辖市（区）) and figures invented for the test, as an official file would hold them.
OFFICIAL = [
    ("溧阳市", 31, 401),
    ("金坛区", 32, 402),
    ("武进区", 33, 403),
    ("新北区", 34, 404),
    ("天宁区", 35, 405),
    ("钟楼区", 36, 406),
    ("常州经开区", 37, 407),
]


def workbook(path: Path, rows: list[tuple[object, ...]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(("辖区", "重点监管领域", "其他"))
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def run(engine: sa.Engine, *args: str) -> tuple[int, str]:
    url = str(engine.url.render_as_string(hide_password=False))
    result = CliRunner().invoke(main, ["--database-url", url, *args])
    return result.exit_code, result.output


def without_figures(campaign: Campaign) -> Campaign:
    districts = tuple(
        d.model_copy(update={"start_target_key_field": None, "start_target_other": None}) for d in campaign.districts
    )
    return campaign.model_copy(update={"targets": None, "districts": districts})


def test_official_figures_import_and_win_over_the_file(world: World, tmp_path: Path) -> None:
    code, out = run(world.engine, "campaign", "targets", "import", str(workbook(tmp_path / "t.xlsx", OFFICIAL)))
    assert code == 0, out
    with world.engine.connect() as conn:
        rows = {r.district_code: r for r in conn.execute(sa.select(DISTRICT_TARGETS))}
        ov = overview(conn, context=Context(world.campaign, world.clock))
    assert len(rows) == 7 and {r.source for r in rows.values()} == {"附件2"}
    assert rows[HOME].key_field_started == 33 and rows[HOME].other_started == 403
    assert rows[HOME].imported_by and rows[HOME].imported_at is not None and rows[HOME].file_name == "t.xlsx"
    progress = {(t.district_code, t.key_field): t for t in ov.targets}
    assert (progress[(HOME, True)].target, progress[(HOME, False)].target) == (33, 403)
    assert progress[(None, True)].target == sum(k for _, k, _ in OFFICIAL) and progress[(None, True)].official
    page = Browser(world, "city").get("/dashboard").text
    assert "示例数值，非官方" not in page and "目标未录入" not in page
    code, out = run(world.engine, "campaign", "targets", "show")
    assert "武进区  重点监管领域 33  其他 403  来源 附件2" in out


def test_a_bad_file_is_refused_whole_naming_every_line(world: World, tmp_path: Path) -> None:
    rows: list[tuple[object, ...]] = [*OFFICIAL[:4]]
    rows.append(("黄山区", 1, 2))  # line 6: no such district
    rows.append(("天宁区", -3, 2))  # line 7: not a count
    rows.append(("钟楼区", 5, "很多"))  # line 8: not a count
    rows.append(("溧阳市", 1, 2))  # line 9: twice
    code, out = run(world.engine, "campaign", "targets", "import", str(workbook(tmp_path / "bad.xlsx", rows)))
    assert code == 1
    for line, column in (("line 6", "辖区"), ("line 7", "重点监管领域"), ("line 8", "其他"), ("line 9", "辖区")):
        assert f"{line}, column {column}" in out, out
    assert "黄山区" in out and "很多" in out
    with world.engine.connect() as conn:
        assert conn.execute(sa.select(DISTRICT_TARGETS)).all() == []  # all or nothing
    code, out = run(world.engine, "campaign", "targets", "import", str(workbook(tmp_path / "short.xlsx", OFFICIAL[:6])))
    assert code == 1 and "常州经开区" in out


def test_the_dashboard_labels_stand_ins_and_compares_them_with_firms_started(world: World) -> None:
    # two key-field firms of 溧阳市 started (one already certified counts as started), one never did
    started = Firm(world.engine, world.campaign, make_firm(world.engine, district=ELSEWHERE, key_field=True))
    started.on(dt.date(2022, 2, 10)).notify()
    started.on(dt.date(2022, 3, 1)).start()
    with world.engine.connect() as conn:
        ov = overview(conn, context=Context(world.campaign, world.clock))
    progress = {(t.district_code, t.key_field): t for t in ov.targets}
    # world: one idle key-field firm in each district; the firm above started in 溧阳市
    assert progress[(ELSEWHERE, True)].started == 1 and progress[(HOME, True)].started == 0
    assert progress[(ELSEWHERE, True)].source == "stand-in" and not progress[(ELSEWHERE, True)].official
    page = Browser(world, "city").get("/dashboard").text
    assert "示例数值，非官方" in page and "已启动" in page and "创建启动目标" in page
    assert "达标认定目标" not in page


def test_without_figures_the_dashboard_says_targets_not_entered(
    engine: sa.Engine, campaign: Campaign, tmp_path: Path
) -> None:
    from tests.api_helpers import build_world

    world = build_world(engine, without_figures(campaign), tmp_path)
    with world.engine.connect() as conn:
        ov = overview(conn, context=Context(world.campaign, world.clock))
    assert all(t.target is None for t in ov.targets)
    page = Browser(world, "city").get("/dashboard").text
    assert "目标未录入" in page and "示例数值，非官方" not in page
