"""Deadlines and oversight: the campaign's deadline rules as set-based SQL (`rules`, with dialect helpers in
`sql`), the daily sweep that applies them with reminders and the escalation ladder (`sweep`), the scheduler
that only starts the sweep, dispatch and digest (`scheduler`), escalations as officials see them
(`escalations`), referrals to the local government (`referrals`), graded supervision and monthly inspection
plans (`supervision`), supervision carried out — inspections, patrols, guidance visits and the plan against
what was done (`inspections`), officials' XLSX files (`export`) and the demo's replay of the campaign (`demo`,
with its supervision in `demo_supervision`)."""
