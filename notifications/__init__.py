"""Notifications, the only way mail leaves the system: outbox dispatch under a lease with retries
(`dispatch`), reading and requeueing the outbox (`outbox`), who a message goes to (`recipients`), Jinja2
templates in zh-CN and English (`render`, `templates/`, labels from `workflow.labels` via `labels`), the
RFC 5322 message (`message`), channels (SMTP, or a folder of .eml files: `channels`), officials' daily
digests (`digest`) and sample contexts for previews and tests (`samples`)."""
