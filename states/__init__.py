"""The campaign's formal state machine, pure Python with no I/O: the states, triggers and who may fire them
(`definition`), the guards over a firm's facts (`guards`), the one shared `transitions` machine (`machine`),
its Markdown/Mermaid diagram (`diagram`), the typed errors every layer raises and `api/errors.py` maps
(`errors`), and how a score is written everywhere (`numbers`)."""

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
