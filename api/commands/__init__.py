"""The commands of `dabiao`, one module per area as the routes are: `base` (the App and what every command
shares), `setup`, `firms`, `users`, `audit`, `dashboard` (the dashboards' summary), `serve`, `demo`,
`notifications` (dispatch, outbox, mail preview, digest), `deadlines` (sweep, scheduler, escalations,
referrals, inspection plans), `pool`, `certificates`, `inspections` (inspections, trainings, safety codes)
and `campaign` (targets, guidance); `api.cli` assembles them into `main`."""
