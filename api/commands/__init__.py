"""Command groups of `dabiao`, one module per package they drive; `api.cli` registers each explicitly."""
