"""The JSON API's routers under /api, one module per subject: sign-in and tokens (`auth`), firms, their
transitions and records (`enterprises`), bulk transitions (`bulk`), worklists, applications and the evaluator
pool (`work`), escalations, referrals and inspection plans (`oversight`), supervision carried out, trainings
and safety codes (`inspections`), certificates and lists (`certificates`) and health and metrics (`ops`)."""
