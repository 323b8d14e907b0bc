"""Sample contexts for every kind of mail: `dabiao mail preview` renders them, and tests start from them."""

from __future__ import annotations

from typing import Any

_FIRM: dict[str, Any] = {
    "enterprise_name": "常州天宁精细化工有限公司",
    "uscc": "91320402MA1XXXXXX0",
    "district_name": "天宁区",
    "principal": "王建国",
    "at": "2022-07-01T04:00:00+00:00",
}

_GROUPS: list[dict[str, Any]] = [
    {
        "rule": "key_field_start",
        "count": 2,
        "firms": [
            {
                "name": "常州天宁精细化工有限公司",
                "uscc": "91320402MA1XXXXXX0",
                "step": "district",
                "deadline": "2022-12-31",
                "days_overdue": 3,
            },
            {
                "name": "常州龙城医药有限公司",
                "uscc": "91320402MA1YYYYYY1",
                "step": "district",
                "deadline": "2022-12-31",
                "days_overdue": 3,
            },
        ],
        "more": 0,
    },
    {
        "rule": "hazard_deadline",
        "count": 1,
        "firms": [
            {
                "name": "常州东方机械有限公司",
                "uscc": "91320402MA1ZZZZZZ2",
                "step": "city",
                "deadline": "2022-12-20",
                "days_overdue": 14,
            }
        ],
        "more": 0,
    },
]

SAMPLES: dict[str, dict[str, Any]] = {
    "mobilization_notice": {**_FIRM, "trigger": "notify"},
    "application_received": {**_FIRM, "trigger": "submit_application"},
    "application_returned": {
        **_FIRM,
        "trigger": "return_application",
        "reason": "自评报告缺少第3项要素的佐证材料",
        "missing": ["自评报告", "佐证材料"],
        "missing_en": ["self-assessment report", "supporting material"],
    },
    "audit_outcome": {
        **_FIRM,
        "trigger": "fail_audit",
        "passed": False,
        "reason": "重大危险源监控不到位",
        "hazards": 2,
    },
    "review_outcome": {**_FIRM, "trigger": "fail_review", "passed": False, "score": 55.5, "hazard_ids": [11, 12, 13]},
    "certification": {
        **_FIRM,
        "trigger": "certify",
        "level": "compliant",
        "score": 91.0,
        "eligible_level": None,
        "score_level": 1,
        "prior_certificate": "unknown",
        "prior_level": None,
        "certificate_no": "CZDB-2023-000123",
        "valid_until": "2026-06-29",
    },
    "certificate_revoked": {**_FIRM, "trigger": "revoke", "reason": "发现重大事故隐患未及时报告"},
    "deadline_reminder": {**_FIRM, "rule": "key_field_start", "deadline": "2022-12-31", "days_left": 14},
    "creation_reminder": {**_FIRM, "rule": "creation_end", "deadline": "2023-10-31", "days_left": 7},
    "deadline_overdue": {**_FIRM, "rule": "hazard_deadline", "deadline": "2022-12-20", "days_overdue": 5},
    "referral": {**_FIRM, "grounds": "non_participating", "note": "经多次督促仍未启动创建"},
    "referral_withdrawn": {
        **_FIRM,
        "grounds": "non_participating",
        "referral_id": 7,
        "proposed_by": "武进区应急管理局 李股长",
        "reason": "“逾期未启动创建”的移交理由已不成立：企业自 2023-02-03 起为“自评中”",
        "reason_en": "the grounds non_participating no longer hold: the firm is self_assessing since 2023-02-03",
    },
    "reviewer_assignment": {
        "reviewer_name": "李明",
        "enterprise_name": _FIRM["enterprise_name"],
        "uscc": _FIRM["uscc"],
        "district_name": _FIRM["district_name"],
        "application_id": 42,
    },
    "reviewer_disqualified": {
        "reviewer_name": "李明",
        "enterprise_name": _FIRM["enterprise_name"],
        "uscc": _FIRM["uscc"],
        "application_id": 42,
        "reason": "曾为该企业提供咨询服务且未申请回避",
    },
    "district_digest": {
        "date": "2023-01-03",
        "district_code": "320402",
        "district_name": "天宁区",
        "dashboard_url": "http://127.0.0.1:8000/dashboard/district/320402",
        "new_total": 3,
        "groups": _GROUPS,
        "due": {"to_verify": 4, "to_audit": 2, "to_review": 1, "open_escalations": 9},
    },
    "city_digest": {
        "date": "2023-01-03",
        "dashboard_url": "http://127.0.0.1:8000/dashboard/city",
        "new_total": 3,
        "groups": _GROUPS,
        "districts": [
            {
                "code": "320402",
                "name": "天宁区",
                "name_en": "Tianning",
                "new": 3,
                "open_escalations": 9,
                "to_verify": 4,
            },
            {"code": "320412", "name": "武进区", "name_en": "Wujin", "new": 0, "open_escalations": 2, "to_verify": 7},
        ],
        "due": {"to_certify": 5, "key_audits": 3, "referrals_to_decide": 1, "failed_mail": 0, "no_recipient_mail": 2},
    },
}

# Who each kind is addressed to when the writer does not say (previews, tests).
SAMPLE_AUDIENCE: dict[str, str] = {
    "referral": "local_government",
    "referral_withdrawn": "district_bureau",
    "reviewer_assignment": "reviewer",
    "reviewer_disqualified": "reviewer",
    "district_digest": "district_bureau",
    "city_digest": "city_bureau",
}
