"""What an application consists of (the plan: 提交自评报告、申请材料与佐证材料) and the kinds of upload, named
once for the record layer, the guards' facts, the API and the pages."""

from __future__ import annotations

# Kinds of upload: a hazard's rectification is proven by its own file; the rest make up the dossier.
KIND_LABELS: dict[str, tuple[str, str]] = {
    "rectification": ("整改佐证", "rectification file"),  # for one hazard (evidence_files.hazard_id)
    "self_assessment_report": ("自评报告", "self-assessment report"),
    "application_form": ("申请表", "application form"),
    "supporting_material": ("佐证材料", "supporting material"),
}
KINDS = tuple(KIND_LABELS)
# the names earlier versions took, still accepted from clients (stored under the kinds above)
LEGACY_KINDS = {"hazard_rectification": "rectification", "application_material": "supporting_material"}
# An application needs one file of each of these; supporting materials are whatever the firm adds.
DOSSIER_KINDS = ("self_assessment_report", "application_form")

# What a district may name as missing when it returns an application.
DOSSIER_ITEMS: dict[str, tuple[str, str]] = {
    "self_assessment": ("对照创建大纲的自评", "a self-assessment over the creation outline"),
    "self_assessment_report": KIND_LABELS["self_assessment_report"],
    "application_form": KIND_LABELS["application_form"],
    "supporting_material": KIND_LABELS["supporting_material"],
    "rectification": KIND_LABELS["rectification"],
}


def label(code: str) -> str:
    """ "中文 / English" of an upload kind or dossier item."""
    zh, en = DOSSIER_ITEMS.get(code) or KIND_LABELS.get(code) or (code, code)
    return f"{zh} / {en}"
