"""Campaign calendar, deadline sweeps and escalation (to come: issue 3)."""
