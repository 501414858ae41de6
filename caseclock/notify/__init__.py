"""Alerts to people: render an escalation once, deliver it by email or webhook.

Rendering is pure (``message``); delivery (``email``, ``webhook``) does I/O and raises on
failure so that the calling activity retries. Every delivery carries the action's
idempotency key so that a mail system or receiver can drop a repeat.
"""

from caseclock.notify.message import AlertMessage, render_alert

__all__ = ["AlertMessage", "render_alert"]
