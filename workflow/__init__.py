"""Records, database, the engine (`fire`), campaign configuration, directory import and audit chain."""
