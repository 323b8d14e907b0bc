"""The campaign's state machine as data: states, triggers, who may fire them and their guards."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    mobilized = "mobilized"  # 已动员: in the directory, notified or about to be
    self_assessing = "self_assessing"  # 自评中
    rectifying = "rectifying"  # 整改中
    applied = "applied"  # 已申请
    verified = "verified"  # 已核实 (district bureau)
    reviewed = "reviewed"  # 已评审 (online + on-site review by the team)
    certified = "certified"  # 已达标 (city bureau)
    closed = "closed"  # 已关闭: shut down or relocated


class Role(StrEnum):
    city_bureau = "city_bureau"  # 市应急管理局
    support_center = "support_center"  # 市应急保障中心
    district_bureau = "district_bureau"  # 辖市(区)应急管理局
    reviewer = "reviewer"  # 评定人员
    enterprise = "enterprise"  # 企业
    local_government = "local_government"  # 属地政府


# The roles as a refusal names them to a person (Chinese, English).
ROLE_LABELS: dict[Role, tuple[str, str]] = {
    Role.city_bureau: ("市应急管理局", "city bureau"),
    Role.support_center: ("市应急保障中心", "city emergency support center"),
    Role.district_bureau: ("辖市（区）应急管理局", "district bureau"),
    Role.reviewer: ("评定人员", "reviewer"),
    Role.enterprise: ("企业", "enterprise"),
    Role.local_government: ("属地政府", "local government"),
}


STATE_LABELS: dict[State, tuple[str, str]] = {
    State.mobilized: ("已动员", "Mobilized"),
    State.self_assessing: ("自评中", "Self-assessing"),
    State.rectifying: ("整改中", "Rectifying"),
    State.applied: ("已申请", "Applied"),
    State.verified: ("已核实", "Verified"),
    State.reviewed: ("已评审", "Reviewed"),
    State.certified: ("已达标", "Certified"),
    State.closed: ("已关闭", "Closed"),
}

# States in which a firm is still in the campaign (everything but the terminal `closed`).
OPEN_STATES: tuple[State, ...] = tuple(s for s in State if s is not State.closed)


@dataclass(frozen=True)
class TriggerSpec:
    """One trigger. `roles` may always fire it; `key_field_roles` / `non_key_roles` only for firms of
    that kind (the support center audits key-field firms, the district bureau the others)."""

    name: str
    sources: tuple[State, ...]
    dest: State
    guards: tuple[str, ...]
    label_zh: str
    label_en: str
    roles: frozenset[Role] = frozenset()
    key_field_roles: frozenset[Role] = frozenset()
    non_key_roles: frozenset[Role] = frozenset()
    # Fired only by the evaluator pool's service with the team's combined result, never by a person at a
    # door (评定人员库成员方可参加…审核工作; 组织评审组…进行线上和线下现场评审; 严禁…评审走过场).
    team_only: bool = False
    # Undoes a firm's progress or ends it (关闭、撤销、不通过): a person confirms it with the firm's name.
    destructive: bool = False
    # A turn off the campaign's way forward (reporting hazards, returning an application): never "the next step".
    detour: bool = False
    # The step as a task still to do ("线上审核"), when the trigger's name reads as an outcome; else its name.
    task_zh: str = ""
    task_en: str = ""

    def task(self, lang: str | None = None) -> str:
        """The step as a task, in a language (English for `en…`)."""
        if lang and lang.lower().startswith("en"):
            return self.task_en or self.label_en
        return self.task_zh or self.label_zh

    def roles_for(self, *, key_field: bool) -> frozenset[Role]:
        return self.roles | (self.key_field_roles if key_field else self.non_key_roles)

    @property
    def all_roles(self) -> frozenset[Role]:
        return self.roles | self.key_field_roles | self.non_key_roles


_S = State
_R = Role
_AUDITORS_KEY = frozenset({_R.support_center})
_AUDITORS_OTHER = frozenset({_R.district_bureau})

TRIGGERS: dict[str, TriggerSpec] = {
    t.name: t
    for t in [
        TriggerSpec(
            "notify",
            (_S.mobilized,),
            _S.mobilized,
            ("not_yet_notified",),
            "发送动员通知",
            "Send the mobilization notice",
            roles=frozenset({_R.district_bureau, _R.city_bureau}),
        ),
        TriggerSpec(
            "start_self_assessment",
            (_S.mobilized,),
            _S.self_assessing,
            (),
            "启动创建、开始自评",
            "Start the self-assessment",
            roles=frozenset({_R.enterprise}),
        ),
        TriggerSpec(
            "report_hazards",
            (_S.self_assessing,),
            _S.rectifying,
            ("has_open_hazards", "five_implementations_complete"),
            "上报隐患、进入整改",
            "Report hazards and rectify",
            roles=frozenset({_R.enterprise}),
            detour=True,
        ),
        TriggerSpec(
            "finish_rectification",
            (_S.rectifying,),
            _S.self_assessing,
            ("no_open_hazards", "five_implementations_complete"),
            "整改完成",
            "Finish rectification",
            roles=frozenset({_R.enterprise}),
            task_zh="整改隐患、完成整改",
            task_en="Rectify the hazards and finish rectification",
        ),
        TriggerSpec(
            "submit_application",
            (_S.self_assessing,),
            _S.applied,
            (
                "self_assessment_done",
                "no_open_hazards",
                "five_implementations_complete",
                "self_assessment_after_rectification",
                "dossier_complete",
                "within_evaluation_window",
            ),
            "提交达标申请",
            "Submit the application",
            roles=frozenset({_R.enterprise}),
        ),
        TriggerSpec(
            "return_application",
            (_S.applied,),
            _S.self_assessing,
            ("reason_given",),
            "退回申请",
            "Return the application",
            roles=frozenset({_R.district_bureau}),
            detour=True,
        ),
        TriggerSpec(
            "verify",
            (_S.applied,),
            _S.verified,
            ("opinion_given",),
            "核实申请",
            "Verify the application",
            roles=frozenset({_R.district_bureau}),
        ),
        TriggerSpec(
            "pass_audit",
            (_S.verified,),
            _S.verified,
            ("not_yet_audited",),
            "线上审核通过",
            "Pass the online audit",
            key_field_roles=_AUDITORS_KEY,
            non_key_roles=_AUDITORS_OTHER,
            task_zh="线上审核",
            task_en="Online audit",
        ),
        TriggerSpec(
            "fail_audit",
            (_S.verified,),
            _S.rectifying,
            ("not_yet_audited", "reason_given"),
            "线上审核不通过",
            "Fail the online audit",
            key_field_roles=_AUDITORS_KEY,
            non_key_roles=_AUDITORS_OTHER,
            destructive=True,
        ),
        TriggerSpec(
            "record_review",
            (_S.verified,),
            _S.reviewed,
            ("audit_passed", "score_in_range"),
            "录入评审结果",
            "Record the review score",
            key_field_roles=_AUDITORS_KEY,
            non_key_roles=_AUDITORS_OTHER,
            team_only=True,
            task_zh="组织评审组线上及现场评审",
            task_en="Online and on-site review by a team",
        ),
        TriggerSpec(
            "certify",
            (_S.reviewed,),
            _S.certified,
            ("review_passed",),
            "认定达标",
            "Certify",
            roles=frozenset({_R.city_bureau}),
        ),
        TriggerSpec(
            "fail_review",
            (_S.reviewed,),
            _S.rectifying,
            ("review_failed",),
            "评审不通过、发回整改",
            "Fail the review and send back to rectify",
            roles=frozenset({_R.city_bureau}),
            key_field_roles=_AUDITORS_KEY,
            non_key_roles=_AUDITORS_OTHER,
            destructive=True,
        ),
        TriggerSpec(
            "revoke",
            (_S.certified,),
            _S.rectifying,
            ("reason_given",),
            "撤销达标认定",
            "Revoke the certificate",
            roles=frozenset({_R.city_bureau}),
            destructive=True,
        ),
        TriggerSpec(
            "close",
            tuple(s for s in State if s not in (_S.certified, _S.closed)),
            _S.closed,
            ("reason_given",),
            "关闭（停产、搬迁）",
            "Close (shut down or relocated)",
            roles=frozenset({_R.district_bureau, _R.city_bureau}),
            destructive=True,
        ),
    ]
}
