"""Deliver an alert to a Teams or Slack style incoming webhook.

The body is the alert's ``webhook_json``: a top-level ``text`` that both Slack and Teams
display, and a ``caseclock`` object with the codes a receiver can act on. The
``Idempotency-Key`` header lets a receiver that honours it drop a repeat.

Webhook addresses embed their own secret (a Slack or Teams webhook URL is a credential),
so errors name the host only, never the full address.
"""

from urllib.parse import urlsplit

import httpx

from caseclock.notify.message import AlertMessage
from caseclock.settings import WebhookSettings

IDEMPOTENCY_HEADER = "Idempotency-Key"
_BODY_EXCERPT = 200


class WebhookDeliveryError(Exception):
    """The webhook could not be reached or did not answer 2xx; the caller retries.

    Attributes:
        status_code: The HTTP status the receiver answered, or ``None`` when the request
            never got an answer (connection refused, timeout).

    """

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class WebhookSender:
    """Post alerts to incoming webhooks.

    Args:
        client: A shared HTTP client; its lifetime belongs to the caller (the worker).
        settings: Timeout for each post.

    """

    def __init__(self, client: httpx.AsyncClient, settings: WebhookSettings) -> None:
        self._client = client
        self._settings = settings

    async def post(self, url: str, message: AlertMessage, idempotency_key: str) -> None:
        """Post one alert to one webhook.

        Args:
            url: The webhook address.
            message: The rendered alert; its ``webhook_json`` is the body.
            idempotency_key: The notify action's key, sent as ``Idempotency-Key``.

        Raises:
            WebhookDeliveryError: The request failed or the answer was not 2xx.

        """
        host = urlsplit(url).hostname or "?"
        try:
            response = await self._client.post(
                url,
                json=message.webhook_json,
                headers={IDEMPOTENCY_HEADER: idempotency_key},
                timeout=self._settings.timeout_seconds,
            )
        except httpx.HTTPError as exc:
            detail = str(exc).replace(url, host)
            msg = (
                f"webhook post of alert {idempotency_key} to {host} failed: "
                f"{type(exc).__name__} {detail}"
            )
            # Not chained: the original exception may carry the full, secret-bearing URL.
            raise WebhookDeliveryError(msg) from None
        if not response.is_success:
            excerpt = response.text[:_BODY_EXCERPT]
            msg = (
                f"webhook at {host} answered {response.status_code} to alert {idempotency_key}: "
                f"{excerpt!r}"
            )
            raise WebhookDeliveryError(msg, status_code=response.status_code)
