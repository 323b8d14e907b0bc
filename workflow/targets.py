"""The districts' starting targets (附件2): firms that must have *started* the creation work, key-field and
other (non-key above-size) firms. The plan: 2022年底前，全市重点监管领域企业需全部开展创建工作；2023年底前，全市
非重点监管领域的规模以上企业需全部开展创建工作（具体创建目标任务见附件2）.

Figures imported into `district_targets` (`dabiao campaign targets import FILE.xlsx`) win over the campaign
file's; figures whose source is not 附件2 are stand-ins and are shown as such (示例数值，非官方)."""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import sqlalchemy as sa
from openpyxl.utils.exceptions import InvalidFileException

from workflow.campaign import OFFICIAL_TARGETS, Campaign
from workflow.context import Context
from workflow.directory import ImportRejected, Problem
from workflow.tables import DISTRICT_TARGETS

T = DISTRICT_TARGETS
STAND_IN_LABEL = "示例数值，非官方"
# The three columns of a targets file, each by any of its names (Chinese or English).
HEADERS = {
    "district": ("辖区", "所属辖区", "辖市（区）", "辖市(区)", "district"),
    "key_field": ("重点监管领域", "重点监管领域企业", "重点监管领域创建目标", "key_field", "key-field"),
    "other": ("其他", "非重点监管领域规模以上企业", "其他企业创建目标", "other"),
}


@dataclass(frozen=True)
class DistrictTarget:
    """One district's starting targets and where they come from."""

    district_code: str
    key_field: int
    other: int
    source: str
    imported_by: str | None = None  # None: from the campaign file
    imported_at: dt.datetime | None = None

    @property
    def official(self) -> bool:
        return self.source == OFFICIAL_TARGETS


def effective_targets(conn: sa.Connection, *, campaign: Campaign) -> dict[str, DistrictTarget]:
    """Each district's targets: imported figures win; else the campaign file's; districts with neither are
    missing (目标未录入)."""
    out: dict[str, DistrictTarget] = {}
    if campaign.targets is not None:
        for d in campaign.districts:
            if d.start_target_key_field is not None and d.start_target_other is not None:
                out[d.code] = DistrictTarget(
                    d.code, d.start_target_key_field, d.start_target_other, campaign.targets.source
                )
    for r in conn.execute(sa.select(T)):
        out[r.district_code] = DistrictTarget(
            r.district_code, r.key_field_started, r.other_started, r.source, r.imported_by, r.imported_at
        )
    return out


def store_targets(
    conn: sa.Connection,
    *,
    figures: Iterable[tuple[str, int, int]],
    source: str,
    imported_by: str,
    at: dt.datetime,
    file_name: str = "",
) -> int:
    """Replace the imported targets with these (district code, key-field, other) in the caller's transaction."""
    rows = [
        {
            "district_code": code,
            "key_field_started": key,
            "other_started": other,
            "source": source,
            "file_name": file_name[:200],
            "imported_by": imported_by,
            "imported_at": at,
        }
        for code, key, other in figures
    ]
    conn.execute(sa.delete(T))
    if rows:
        conn.execute(sa.insert(T), rows)
    return len(rows)


def _count(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _rows(path: Path) -> Iterator[tuple[int, Sequence[object]]]:
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, SyntaxError, InvalidFileException) as exc:
        raise ImportRejected([Problem(1, "", f"不是有效的 XLSX 工作簿 / not a valid XLSX workbook: {exc}")]) from None
    try:
        if workbook.worksheets:
            yield from enumerate(workbook.worksheets[0].iter_rows(values_only=True), start=1)
    finally:
        workbook.close()


def read_targets(path: Path, *, campaign: Campaign) -> list[tuple[str, int, int]]:
    """The figures of a targets file, every district of the campaign once; ImportRejected naming every
    problem by line (and column) otherwise."""
    problems: list[Problem] = []
    figures: dict[str, tuple[int, int, int]] = {}  # code → key, other, line
    columns: dict[str, tuple[int, str]] = {}
    for line, cells in _rows(path):
        texts = ["" if c is None else str(c).strip() for c in cells]
        if not any(texts):
            continue
        if not columns:
            for field, names in HEADERS.items():
                found = [(i, t) for i, t in enumerate(texts) if t.lower() in {n.lower() for n in names}]
                if found:
                    columns[field] = found[0]
            missing = [HEADERS[f][0] for f in HEADERS if f not in columns]
            if missing:
                problems.append(
                    Problem(line, "", f"缺少列：{'、'.join(missing)} / missing columns: {', '.join(missing)}")
                )
                raise ImportRejected(problems)
            continue
        district_at, district_header = columns["district"]
        name = texts[district_at] if district_at < len(texts) else ""
        d = campaign.district(name) if name else None
        if d is None:
            problems.append(Problem(line, district_header, f"未知辖区“{name}” / unknown district {name!r}"))
        elif d.code in figures:
            first = figures[d.code][2]
            problems.append(
                Problem(line, district_header, f"{d.name}重复（第 {first} 行已有） / {d.name} again (line {first})")
            )
        counts = []
        for field in ("key_field", "other"):
            at, header = columns[field]
            raw = cells[at] if at < len(cells) else None
            value = _count(raw)
            if value is None:
                problems.append(
                    Problem(line, header, f"须为非负整数，而不是“{raw}” / must be a whole number ≥ 0, not {raw!r}")
                )
            counts.append(value)
        if d is not None and d.code not in figures and None not in counts:
            figures[d.code] = (int(counts[0] or 0), int(counts[1] or 0), line)
    if not columns:
        raise ImportRejected([Problem(1, "", "文件为空 / the file is empty")])
    absent = [d for d in campaign.districts if d.code not in figures and not any(p.line for p in problems)]
    if absent:
        absent_names = "、".join(d.name for d in absent)
        problems.append(Problem(1, "", f"缺少辖区：{absent_names} / districts missing from the file: {absent_names}"))
    if problems:
        raise ImportRejected(problems)
    return [(code, key, other) for code, (key, other, _line) in figures.items()]


def import_targets(engine: sa.Engine, path: Path, *, context: Context, imported_by: str, source: str) -> int:
    """Load official starting targets from an XLSX file (columns: district, key-field starting target, other
    starting target): validated whole, then written in one transaction — all or nothing."""
    campaign, clock = context.campaign, context.clock
    if not 0 < len(source) <= 40:
        raise ImportRejected([Problem(1, "", "来源须为 1–40 个字符 / the source must be 1–40 characters")])
    figures = read_targets(path, campaign=campaign)
    with engine.begin() as conn:
        return store_targets(
            conn, figures=figures, source=source, imported_by=imported_by, at=clock.now(), file_name=path.name
        )


def target_rows(conn: sa.Connection, *, campaign: Campaign) -> list[dict[str, Any]]:
    """The targets in force, per district in the campaign's order (for the command line and pages)."""
    targets = effective_targets(conn, campaign=campaign)
    out = []
    for d in campaign.districts:
        t = targets.get(d.code)
        out.append(
            {
                "district_code": d.code,
                "district_name": d.name,
                "key_field": t.key_field if t else None,
                "other": t.other if t else None,
                "source": t.source if t else None,
                "official": bool(t and t.official),
                "imported_by": t.imported_by if t else None,
                "imported_at": t.imported_at.isoformat() if t and t.imported_at else None,
            }
        )
    return out
