"""Guards: named predicates over the facts of one firm at one moment, each with a readable reason."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from states.numbers import score_text


class Facts(Protocol):
    """What a guard may know about a firm. The engine provides it (lazily, from the database)."""

    @property
    def key_field(self) -> bool: ...
    @property
    def notified(self) -> bool: ...
    @property
    def open_hazards(self) -> int: ...
    @property
    def hazards_missing_implementations(self) -> int: ...
    @property
    def open_hazard_names(self) -> tuple[str, ...]: ...
    @property
    def self_assessment_total(self) -> float | None: ...
    @property
    def self_assessment_at(self) -> dt.datetime | None: ...
    @property
    def last_rectification_at(self) -> dt.datetime | None: ...
    @property
    def last_rectified_hazard(self) -> str | None: ...
    @property
    def dossier_missing(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def audit_passed(self) -> bool: ...
    @property
    def review_score(self) -> float | None: ...
    @property
    def today(self) -> dt.date: ...
    @property
    def evaluation_start(self) -> dt.date: ...
    @property
    def evaluation_end(self) -> dt.date: ...
    @property
    def pass_score(self) -> float: ...
    @property
    def payload(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Guard:
    name: str
    description: str  # shown in the diagram's table
    check: Callable[[Facts], bool]
    reason: Callable[[Facts], str]
    on_input: bool = False  # judges what the caller types (a reason, a score), not the firm's record


def _score(facts: Facts) -> float | None:
    value = facts.payload.get("score")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _score_in_range(facts: Facts) -> bool:
    score = _score(facts)
    return score is not None and 0.0 <= score <= 100.0


def _reason_given(facts: Facts) -> bool:
    reason = facts.payload.get("reason")
    return isinstance(reason, str) and bool(reason.strip())


def _opinion_given(facts: Facts) -> bool:
    opinion = facts.payload.get("opinion")
    return isinstance(opinion, str) and bool(opinion.strip())


def _assessed_after_rectification(facts: Facts) -> bool:
    taken, rectified = facts.self_assessment_at, facts.last_rectification_at
    return taken is None or rectified is None or taken >= rectified


def _stale_assessment(facts: Facts) -> str:
    taken, rectified = facts.self_assessment_at, facts.last_rectification_at
    when = f"{taken:%Y-%m-%d %H:%M}" if taken else "–"
    last = f"{rectified:%Y-%m-%d %H:%M}" if rectified else "–"
    hazard = facts.last_rectified_hazard or ""
    return (
        f"最近一次自评（{when}）早于最近一次整改（{last}，隐患 {hazard}），请整改后重新对照创建大纲自评 / the latest "
        f"self-assessment ({when}) was taken before the last rectification ({last}, hazard {hazard}): self-assess "
        "again over the outline"
    )


def _missing_files(facts: Facts) -> str:
    missing = facts.dossier_missing
    zh = "、".join(z for z, _ in missing)
    en = ", ".join(e for _, e in missing)
    return f"申请材料不全，尚未上传：{zh} / the dossier is incomplete, not uploaded: {en}"


def _open_hazards(facts: Facts) -> str:
    names = "、".join(facts.open_hazard_names)
    return f"仍有 {facts.open_hazards} 项隐患未整改：{names} / {facts.open_hazards} hazard(s) still open: {names}"


GUARDS: dict[str, Guard] = {
    g.name: g
    for g in [
        Guard(
            "not_yet_notified",
            "firm has not been notified yet",
            lambda f: not f.notified,
            lambda f: "该企业已发送动员通知 / the firm has already been notified",
        ),
        Guard(
            "has_open_hazards",
            "at least one open hazard is reported",
            lambda f: f.open_hazards > 0,
            lambda f: "没有已上报的未整改隐患 / no open hazard has been reported",
        ),
        Guard(
            "no_open_hazards",
            "every reported hazard is rectified",
            lambda f: f.open_hazards == 0,
            _open_hazards,
        ),
        Guard(
            "five_implementations_complete",
            "every hazard has its five implementations (五落实)",
            lambda f: f.hazards_missing_implementations == 0,
            lambda f: (
                f"{f.hazards_missing_implementations} 项隐患“五落实”不完整 / "
                f"{f.hazards_missing_implementations} hazard(s) lack one of the five implementations"
            ),
        ),
        Guard(
            "self_assessment_done",
            "a self-assessment over the whole outline is recorded",
            lambda f: f.self_assessment_total is not None,
            lambda f: "尚未完成自评 / no self-assessment has been recorded",
        ),
        Guard(
            "self_assessment_after_rectification",
            "the latest self-assessment is not older than the last rectification",
            _assessed_after_rectification,
            _stale_assessment,
        ),
        Guard(
            "dossier_complete",
            "a self-assessment report and an application form are uploaded (自评报告、申请材料)",
            lambda f: not f.dossier_missing,
            _missing_files,
        ),
        Guard(
            "opinion_given",
            "a verification opinion (核实意见) is given",
            _opinion_given,
            lambda f: "请填写核实意见 / a verification opinion is required",
            on_input=True,
        ),
        Guard(
            "within_evaluation_window",
            "today is inside the campaign's evaluation phase",
            lambda f: f.evaluation_start <= f.today <= f.evaluation_end,
            lambda f: (
                f"申请须在评审验收阶段（{f.evaluation_start} 至 {f.evaluation_end}）内提交 / "
                f"applications are accepted from {f.evaluation_start} to {f.evaluation_end}"
            ),
        ),
        Guard(
            "reason_given",
            "a reason is given",
            _reason_given,
            lambda f: "请填写理由 / a reason is required",
            on_input=True,
        ),
        Guard(
            "score_in_range",
            "score between 0 and 100",
            _score_in_range,
            lambda f: "评分须为 0 至 100 之间的数字 / the score must be a number from 0 to 100",
            on_input=True,
        ),
        Guard(
            "not_yet_audited",
            "the online audit has not passed yet",
            lambda f: not f.audit_passed,
            lambda f: "线上审核已通过 / the online audit has already passed",
        ),
        Guard(
            "audit_passed",
            "the online audit has passed",
            lambda f: f.audit_passed,
            lambda f: "线上审核尚未通过 / the online audit has not passed yet",
        ),
        Guard(
            "review_passed",
            "the review score reaches the compliant threshold",
            lambda f: f.review_score is not None and f.review_score >= f.pass_score,
            lambda f: (
                f"评审得分 {score_text(f.review_score)} 未达到 {f.pass_score:g} 分 / review score "
                f"{score_text(f.review_score)} below {f.pass_score:g}"
            ),
        ),
        Guard(
            "review_failed",
            "the review score is below the compliant threshold",
            lambda f: f.review_score is not None and f.review_score < f.pass_score,
            lambda f: (
                f"评审得分 {score_text(f.review_score)} 已达标，不能判为不通过 / review score "
                f"{score_text(f.review_score)} is not below the threshold"
            ),
        ),
    ]
}
