"""Outbox dispatch, mail templates and channels (to come: issue 4)."""
