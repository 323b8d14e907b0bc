"""Notifications: the only way mail leaves the system. Outbox dispatch (`dispatch.py`), Jinja2 templates in
zh-CN and English (`render.py`, `templates/`), channels (SMTP, or a folder of .eml files) and daily digests."""
