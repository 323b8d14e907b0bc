"""The formal campaign state machine: states, triggers, guards and role rules. Pure Python, no I/O."""

from states.definition import OPEN_STATES, STATE_LABELS, TRIGGERS, Role, State, TriggerSpec
from states.errors import (
    GuardFailed,
    InvalidInput,
    InvalidTransition,
    NotAllowed,
    NotFound,
    OutOfScope,
    UnknownTrigger,
    VersionConflict,
    WorkflowError,
)
from states.guards import GUARDS, Facts, Guard
from states.machine import MACHINE, CampaignMachine, Step

__all__ = [
    "GUARDS",
    "MACHINE",
    "OPEN_STATES",
    "STATE_LABELS",
    "TRIGGERS",
    "CampaignMachine",
    "Facts",
    "Guard",
    "GuardFailed",
    "InvalidInput",
    "InvalidTransition",
    "NotAllowed",
    "NotFound",
    "OutOfScope",
    "Role",
    "State",
    "Step",
    "TriggerSpec",
    "UnknownTrigger",
    "VersionConflict",
    "WorkflowError",
]
