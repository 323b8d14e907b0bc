"""The one bilingual label catalogue: the Chinese and the English name of every code a person reads.

Mail (notifications/labels.py and its templates), the pages (through the gettext catalog: the Chinese names
here are the msgids, the English names their translations, fed by `api.pages.i18n.dynamic_messages`) and the
command line all read these tables, so a rule, state or status has one Chinese name everywhere. The states'
and triggers' names belong to the machine (states/definition.py) and are offered here as `STATES`/`TRIGGERS`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import NamedTuple

from states import STATE_LABELS, TRIGGERS


class Label(NamedTuple):
    zh: str
    en: str

    def pick(self, lang: str | None) -> str:
        """The name in a language: English for `en…`, Chinese otherwise."""
        return self.en if lang and lang.lower().startswith("en") else self.zh


_KEY_FIELD_STARTED = Label("重点监管领域企业启动创建", "Key-supervision-field firms start the campaign")
_ABOVE_SIZE_STARTED = Label("规模以上企业启动创建", "Above-size firms start the campaign")
_SLA_AUDIT = Label("线上审核时限", "Time limit for the online audit")

# The deadline rules (deadlines/ writes them into reminders, overdue notices and escalations). The milestone
# rules are named after the campaign file's milestone ids, and the online audit's time limit is
# `sla_online_audit` there; both spellings are known.
RULES: dict[str, Label] = {
    "mobilization": Label("动员部署：通知到企业主要负责人", "Mobilization: the principal is notified"),
    "key_field_start": _KEY_FIELD_STARTED,
    "key_field_started": _KEY_FIELD_STARTED,
    "above_size_start": _ABOVE_SIZE_STARTED,
    "above_size_started": _ABOVE_SIZE_STARTED,
    "creation_end": Label("创建提升阶段结束", "End of the creation and improvement phase"),
    "evaluation_end": Label("考评验收阶段截止", "End of the evaluation and acceptance phase"),
    "hazard_deadline": Label("隐患整改期限", "Hazard rectification deadline"),
    "sla_verification": Label("辖市（区）应急管理局核实时限", "Time limit for verification by the district bureau"),
    "sla_audit": _SLA_AUDIT,
    "sla_online_audit": _SLA_AUDIT,
    "sla_review": Label("线上及现场评审时限", "Time limit for the online and on-site review"),
    "sla_certification": Label("市应急管理局认定时限", "Time limit for certification by the city bureau"),
    "referrals": Label("移交属地政府", "Referrals to local governments"),
}

# the steps of an escalation (who is told, who holds it)
STEPS: dict[str, Label] = {
    "firm": Label("提醒企业", "reminder to the firm"),
    "district": Label("上报辖市（区）应急管理局", "escalated to the district bureau"),
    "center": Label("交市应急保障中心办理", "sent to the city emergency support center"),
    "city": Label("上报市应急管理局", "escalated to the city bureau"),
}

ESCALATION_STATUSES: dict[str, Label] = {
    "open": Label("未签收", "Open"),
    "acknowledged": Label("已签收", "Acknowledged"),
    "resolved": Label("已解除", "Resolved"),
}

GROUNDS: dict[str, Label] = {
    "non_participating": Label("逾期未启动创建", "Not started after the deadline"),
    "failed_review_twice": Label("两次评审未通过", "Failed the review twice"),
    "major_hazard_overdue": Label("重大隐患逾期未整改", "Major hazard overdue"),
}

REFERRAL_STATUSES: dict[str, Label] = {
    "proposed": Label("已提出", "Proposed"),
    "confirmed": Label("已确认移交", "Confirmed"),
    "declined": Label("未予确认", "Declined"),
    "acknowledged": Label("属地已签收", "Acknowledged"),
    "withdrawn": Label("已撤回", "Withdrawn"),
}

# the supervision grades of the city's inspection plan
GRADES: dict[str, Label] = {
    "referred": Label("达标无望（已报送属地政府）", "No hope of compliance (reported to local government)"),
    "non_participating": Label("逾期未开展创建", "Past its date, not started"),
    "not_started": Label("尚未开展创建", "Not started yet"),
    "on_track": Label("创建中", "Taking part"),
    "compliant": Label("达标", "Compliant"),
    "benchmark": Label("标杆", "Benchmark"),
}

GUIDE_KINDS: dict[str, Label] = {
    "expert": Label("派驻专家（重点指导）", "Expert (guidance)"),
    "officer": Label("监管人员（重点督导）", "Officer (supervision)"),
}

APPLICATION_STATUSES: dict[str, Label] = {
    "applied": Label("待核实", "Awaiting verification"),
    "verified": Label("已核实，审核评审中", "Verified; audit and review under way"),
    "reviewed": Label("已评审，待认定", "Reviewed; awaiting certification"),
    "certified": Label("已认定达标", "Certified"),
    "returned": Label("已退回", "Returned"),
    "audit_failed": Label("线上审核未通过", "Failed the online audit"),
    "review_failed": Label("评审未通过", "Failed the review"),
    "closed": Label("已关闭", "Closed"),
}

HAZARD_STATUSES: dict[str, Label] = {
    "open": Label("未整改", "Open"),
    "submitted": Label("整改已提交，待验收", "Rectification submitted, awaiting acceptance"),
    "rectified": Label("已整改", "Rectified"),
    "accepted": Label("整改已验收", "Rectification accepted"),
}

SEVERITIES: dict[str, Label] = {
    "general": Label("一般隐患", "General hazard"),
    "major": Label("重大隐患", "Major hazard"),
}

HAZARD_SOURCES: dict[str, Label] = {
    "self": Label("企业自查", "Found by the firm"),
    "audit": Label("线上审核", "Online audit"),
    "review": Label("评审", "Review"),
    "revocation": Label("撤销认定", "Revocation"),
    "inspection": Label("监管检查", "Bureau inspection"),
}

# what a firm uploads (evidence files)
UPLOAD_KINDS: dict[str, Label] = {
    "rectification": Label("整改佐证", "Rectification file"),
    "self_assessment_report": Label("自评报告", "Self-assessment report"),
    "application_form": Label("申请表", "Application form"),
    "supporting_material": Label("佐证材料", "Supporting material"),
    "inspection": Label("检查照片或文件", "Inspection photo or document"),  # uploaded by the district bureau
}

REPORT_STATUSES: dict[str, Label] = {
    "open": Label("待处理", "open"),
    "dismissed": Label("已驳回", "dismissed"),
    "disqualified": Label("已取消资格", "reviewer disqualified"),
}

DRAW_KINDS: dict[str, Label] = {
    "team": Label("组建评审组", "team drawn"),
    "redraw": Label("重新抽取", "redraw"),
    "replacement": Label("替补抽取", "replacement drawn"),
}

LEVELS: dict[str, Label] = {
    "compliant": Label("达标企业", "compliant enterprise"),
    "benchmark": Label("标杆企业", "benchmark enterprise"),
}

AUDIENCES: dict[str, Label] = {
    "enterprise": Label("企业", "enterprise"),
    "district_bureau": Label("辖市（区）应急管理局", "district bureau"),
    "city_bureau": Label("市应急管理局", "city bureau"),
    "support_center": Label("市应急保障中心", "city emergency support center"),
    "local_government": Label("属地政府", "local government"),
    "reviewer": Label("评定人员", "reviewer"),
    "user": Label("用户", "user"),
}

# Records of a firm's hash chain that are not transitions (`workflow.engine.record_event` kinds), as its
# history names them. Kinds built from a code: `review_draw_<ReviewDrawKind>`, `<training kind>_attended`,
# `inspection_<kind>` and `guidance_visit` (workflow/supervision_records.py).
RECORD_KINDS: dict[str, Label] = {
    "self_assessment_recorded": Label("自评已保存", "Self-assessment saved"),
    "hazard_reported": Label("登记隐患", "Hazard reported"),
    "hazard_updated": Label("修改隐患“五落实”", "Hazard's five implementations changed"),
    "hazard_rectified": Label("隐患整改完成", "Hazard rectified"),
    "hazard_rectification_submitted": Label("提交隐患整改，待验收", "Hazard rectification submitted for acceptance"),
    "rectification_accepted": Label("整改验收通过", "Rectification accepted"),
    "rectification_rejected": Label("整改被退回", "Rectification rejected"),
    "evidence_uploaded": Label("上传文件", "Uploaded a file"),
    "review_draw_team": Label("已随机抽取评审组", "Review team drawn"),
    "review_draw_redraw": Label("已重新抽取评审组", "Review team drawn again"),
    "review_draw_replacement": Label("替补抽取评定人员", "Replacement reviewer drawn"),
    "reviewer_recused": Label("评定人员回避", "Reviewer stepped aside"),
    "reviewer_removed_conflict": Label("评定人员因利害关系退出评审组", "Reviewer removed for a conflict of interest"),
    "reviewer_disqualified": Label("评定人员被取消资格", "Reviewer disqualified"),
    "review_scored": Label("评定人员提交评分", "Reviewer's scores submitted"),
    "training_attended": Label("参加专项培训", "Attended a training session"),
    "briefing_attended": Label("参加企业宣讲", "Attended a briefing"),
    "inspection_onsite": Label("现场检查", "On-site inspection"),
    "inspection_online": Label("线上检查", "Online inspection"),
    "guidance_assigned": Label("派驻专家或监管人员（标杆培育）", "Expert or officer assigned (benchmark guidance)"),
    "guidance_visit": Label("帮扶走访", "Guidance visit"),
    "prior_certificate_recorded": Label("已录入原标准化证书情况", "Earlier certificate recorded"),
    "benchmark_named": Label("已列入标杆企业名单", "Named a benchmark enterprise"),
    "benchmark_withdrawn": Label("已移出标杆企业名单", "Taken off the benchmark list"),
    "referral_proposed": Label("已提出移交属地政府", "Referral to the local government proposed"),
    "referral_confirmed": Label("确认移交属地政府", "Referral confirmed"),
    "referral_declined": Label("未予确认移交", "Referral declined"),
    "referral_acknowledged": Label("属地政府签收移交", "Referral acknowledged by the local government"),
    "referral_withdrawn": Label("撤回移交", "Referral withdrawn"),
}

# Where a message stands in the outbox, in words for the firm (its 消息 tab) and the offices (the outbox page).
MAIL_STATUSES: dict[str, Label] = {
    "pending": Label("待发送", "Pending"),
    "sending": Label("发送中", "Sending"),
    "sent": Label("已发送", "Sent"),
    "failed": Label("发送失败，未送达", "Not delivered (sending failed)"),
    "no_recipient": Label("无法送达（没有电子邮箱）", "Undeliverable (no e-mail address)"),
}

# the kinds of mail in the outbox (notifications/templates/<kind>/)
MAIL_KINDS: dict[str, Label] = {
    "mobilization_notice": Label("动员通知", "Mobilization notice"),
    "application_received": Label("达标申请已提交", "Application received"),
    "application_returned": Label("达标申请已退回", "Application returned"),
    "audit_outcome": Label("线上审核结果", "Online audit outcome"),
    "review_outcome": Label("评审结果", "Review outcome"),
    "certification": Label("达标认定通知", "Certification notice"),
    "certificate_revoked": Label("撤销认定通知", "Certificate revoked"),
    "deadline_reminder": Label("到期提醒", "Deadline reminder"),
    "creation_reminder": Label("创建提升阶段结束提示", "End of the creation phase"),
    "deadline_overdue": Label("逾期通知", "Overdue notice"),
    "referral": Label("提请属地政府处置", "Referral to the local government"),
    "referral_withdrawn": Label("移交提议撤回", "Referral withdrawn"),
    "reviewer_assignment": Label("评审任务通知", "Review assignment"),
    "reviewer_disqualified": Label("评定资格取消通知", "Reviewer disqualified"),
    "district_digest": Label("辖区每日汇总", "District daily digest"),
    "city_digest": Label("全市每日汇总", "City daily digest"),
}

# why a message did not go out, in the words of the person who reads the outbox page
MAIL_ERRORS: dict[str, Label] = {
    "no_firm_address": Label(
        "无法送达：企业名录中没有该企业的电子邮箱", "Undeliverable: the firm has no e-mail address"
    ),
    "no_office_address": Label("无法送达：活动文件中没有该单位的邮箱", "Undeliverable: no mailbox for this office"),
    "no_address": Label("无法送达：找不到收件人的邮箱", "Undeliverable: no address for the recipient"),
    "bad_address": Label("收件地址无效", "Invalid recipient address"),
    "rejected": Label("邮件服务器拒收", "Refused by the mail server"),
    "deferred": Label("邮件服务器暂时拒收，将自动重试", "Deferred by the mail server; retried automatically"),
    "deferred_gave_up": Label(
        "邮件服务器多次暂时拒收，已停止自动重试", "Deferred by the mail server too often; no longer retried"
    ),
    "unreachable": Label("无法连接邮件服务器", "Cannot reach the mail server"),
    "login": Label("邮件服务器拒绝登录（账号或密码有误）", "The mail server refused the login"),
    "connection_lost": Label("发送中连接中断", "The connection broke while sending"),
    "mail_folder": Label("无法写入邮件目录", "Cannot write to the mail folder"),
    "template": Label("邮件内容无法生成", "The message could not be composed"),
    "unconfirmed": Label("最后一次发送未能确认", "The last attempt is unconfirmed"),
    "other": Label("发送失败，原因未能识别", "Failed for a reason not recognised"),
}

STATES: dict[str, Label] = {state.value: Label(*pair) for state, pair in STATE_LABELS.items()}
TRIGGER_NAMES: dict[str, Label] = {name: Label(spec.label_zh, spec.label_en) for name, spec in TRIGGERS.items()}

# the tables the pages show through the gettext catalog (mail reads LEVELS and AUDIENCES directly; states
# and triggers are shown from the machine's own names)
PAGE_TABLES: tuple[dict[str, Label], ...] = (
    RULES,
    STEPS,
    ESCALATION_STATUSES,
    GROUNDS,
    REFERRAL_STATUSES,
    GRADES,
    GUIDE_KINDS,
    APPLICATION_STATUSES,
    HAZARD_STATUSES,
    SEVERITIES,
    HAZARD_SOURCES,
    UPLOAD_KINDS,
    REPORT_STATUSES,
    DRAW_KINDS,
    RECORD_KINDS,
    MAIL_KINDS,
    MAIL_STATUSES,
    MAIL_ERRORS,
)


def zh(table: Mapping[str, Label]) -> dict[str, str]:
    """The Chinese names of a table (the form deadlines/ and the pages' msgids use)."""
    return {code: label.zh for code, label in table.items()}


def name(table: Mapping[str, Label], code: object, lang: str | None = None) -> str:
    """A code's name in a language; an unknown code is shown as itself."""
    label = table.get(str(code))
    return str(code) if label is None else label.pick(lang)


def translated() -> Iterator[Label]:
    """Every label the pages show through the gettext catalog (states and triggers have their own)."""
    for table in PAGE_TABLES:
        yield from table.values()
