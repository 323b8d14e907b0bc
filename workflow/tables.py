"""Core `Table` handles for the hot paths that skip the ORM."""

from __future__ import annotations

import sqlalchemy as sa

from workflow import models
from workflow.models import ApplicationStatus


def _t(model: type) -> sa.Table:
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    return table


ENTERPRISES = _t(models.Enterprise)
DISTRICTS = _t(models.District)
USERS = _t(models.User)
API_TOKENS = _t(models.ApiToken)
LOGIN_THROTTLES = _t(models.LoginThrottle)
SERVER_SECRETS = _t(models.ServerSecret)
REVIEWER_PROFILES = _t(models.ReviewerProfile)
REVIEWER_CONSULTANCIES = _t(models.ReviewerConsultancy)
REVIEW_ASSIGNMENTS = _t(models.ReviewAssignment)
REVIEW_DRAWS = _t(models.ReviewDraw)
REVIEWER_REPORTS = _t(models.ReviewerReport)
EVIDENCE_FILES = _t(models.EvidenceFile)
IDEMPOTENT_REQUESTS = _t(models.IdempotentRequest)
SELF_ASSESSMENTS = _t(models.SelfAssessment)
SELF_ASSESSMENT_ITEMS = _t(models.SelfAssessmentItem)
HAZARDS = _t(models.Hazard)
APPLICATIONS = _t(models.Application)
REVIEWS = _t(models.Review)
CERTIFICATIONS = _t(models.Certification)
EVENTS = _t(models.Event)
OUTBOX = _t(models.Outbox)
OUTBOX_RETRIES = _t(models.OutboxRetry)
ESCALATIONS = _t(models.Escalation)
REFERRALS = _t(models.Referral)
REFERRAL_SUGGESTIONS = _t(models.ReferralSuggestion)
DISTRICT_TARGETS = _t(models.DistrictTarget)
GUIDANCE_ASSIGNMENTS = _t(models.GuidanceAssignment)

# Applications still moving through the evaluation (not returned, failed, certified or closed).
OPEN_APPLICATION_STATUSES = (ApplicationStatus.applied, ApplicationStatus.verified, ApplicationStatus.reviewed)
SWEEP_RUNS = _t(models.SweepRun)
SWEEP_CHANGES = _t(models.SweepChange)
INSPECTIONS = _t(models.Inspection)
INSPECTION_FINDINGS = _t(models.InspectionFinding)
TRAININGS = _t(models.Training)
TRAINING_ATTENDANCES = _t(models.TrainingAttendance)
SAFETY_CODE_KEYS = _t(models.SafetyCodeKey)
SUMMARY_STATES = _t(models.SummaryState)
SUMMARY_STARTS = _t(models.SummaryStart)
SUMMARY_DELTAS = _t(models.SummaryDelta)
