"""Telling people that something needs them: a JSON webhook (Slack, Teams and most chat tools take its `text`)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass


class NotificationError(RuntimeError):
    """The receiver could not be reached or refused the notification; the message says which (never the secret)."""


@dataclass(frozen=True)
class Webhook:
    url: str
    token: str | None = None  # sent as a bearer token; kept out of messages
    timeout_seconds: float = 10.0

    def send(self, payload: dict) -> None:
        request = urllib.request.Request(self.url, data=json.dumps(payload).encode("utf-8"), method="POST",
                                         headers={"Content-Type": "application/json",
                                                  **({"Authorization": f"Bearer {self.token}"} if self.token else {})})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                if response.status >= 300:
                    raise NotificationError(f"the webhook answered HTTP {response.status}")
        except urllib.error.HTTPError as error:
            raise NotificationError(f"the webhook answered HTTP {error.code}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise NotificationError(f"the webhook could not be reached ({type(reason).__name__})") from None
