"""The services below every front door: the records (`models`, `tables`, Alembic `migrations`), the database
(`db`, `driver`), the engine (`fire`, `record_event`) with its facts, effects and per-firm audit chain, the
campaign file and the context a call runs in (`campaign`, `context`, `clock`, `settings`), who sees what
(`actors`) and accounts, the read side (`queries`, `dashboard`, `firm_page`), a firm's record and dossier
(`records`, `dossier`, `evidence`, `limits`), bulk actions, idempotent requests, the evaluator pool, targets,
guidance, supervision records and training sessions (`supervision_records`, `trainings`), the firms' safety
codes (`safety_code`), certificates and their audit, the directory importer and generator, and the one
bilingual label catalogue (`labels`)."""
