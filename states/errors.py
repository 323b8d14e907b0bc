"""Typed errors of the machine; `api/` turns them into HTTP answers in one place."""

from __future__ import annotations


class WorkflowError(Exception):
    """Base of every refusal the engine can give; `code` is stable for API clients."""

    code = "workflow_error"


class UnknownTrigger(WorkflowError):
    code = "unknown_trigger"


class NotAllowed(WorkflowError):
    """The actor's role or scope does not permit this action."""

    code = "not_allowed"


class InvalidTransition(WorkflowError):
    """The trigger exists but cannot be fired from the firm's current state."""

    code = "invalid_transition"


class GuardFailed(WorkflowError):
    """A guard refused the transition; `guard` names it and the message says why."""

    code = "guard_failed"

    def __init__(self, guard: str, reason: str) -> None:
        super().__init__(reason)
        self.guard = guard
        self.reason = reason


class VersionConflict(WorkflowError):
    """Someone else changed the firm since the caller read it."""

    code = "version_conflict"


class NotFound(WorkflowError):
    """No such record (or, for `OutOfScope`, none the caller may know of)."""

    code = "not_found"


class OutOfScope(NotFound):
    """The record exists but lies outside the caller's district, firm or assignment: shown as not found."""

    code = "not_found"


class InvalidInput(WorkflowError):
    """A value the caller gave is malformed; the message says which and why."""

    code = "invalid_input"
