"""The outside of Dabiao: the `dabiao` command line (and, later, the HTTP API and pages)."""
