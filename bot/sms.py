"""SMS providers beyond the generic gateway (bot.senders.SmsSender): Twilio's Messaging API,
and an HTTP request templated by settings (most other providers, without code).

Every provider sends through `send_with_retries`: each request has SMS_TIMEOUT_SECONDS; a
5xx answer or a timeout (or a lost connection) is retried SMS_RETRIES times with a short
growing pause; a 4xx is a failed delivery at once. Reasons given to `DeliveryFailed` carry
the status code and the provider's error code, never a credential, the member's number or
the validation code. A retry after a timeout may deliver the same code twice: harmless.

- `TwilioSender`: a form-encoded POST to
  `{TWILIO_API_URL}/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/Messages.json` with `To`,
  `From` (or `MessagingServiceSid`) and `Body`, HTTP basic authentication with the account
  SID and TWILIO_AUTH_TOKEN; only 201 is success.
- `TemplateSender`: SMS_HTTP_METHOD to SMS_GATEWAY_URL with SMS_HTTP_HEADERS and the body
  SMS_HTTP_BODY, a JSON document or a form (SMS_HTTP_FORMAT) whose `{to}`, `{to_digits}`
  and `{text}` placeholders are filled in with each value escaped for where it stands
  (JSON string, form field, URL); any 2xx is success.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import httpx

from bot import metrics
from bot.settings import BotSettings
from core.code_texts import CodeTexts
from core.delivery import CodeMessage, DeliveryFailed

Send = Callable[[httpx.Client], httpx.Response]


def send_with_retries(provider: str, send: Send, *, timeout: float, retries: int,
                      backoff: float) -> httpx.Response:
    """The provider's answer to `send`, a 5xx or a timeout retried `retries` times; a
    4xx (or any answer below 500) is returned at once."""
    for attempt in range(retries + 1):
        try:
            with httpx.Client(timeout=timeout) as client:
                answer = send(client)
        except httpx.TransportError as error:  # timeouts, refused or lost connections
            failure = type(error).__name__
        except httpx.HTTPError as error:
            raise DeliveryFailed(f"SMS provider {provider}: {type(error).__name__}") from None
        else:
            if answer.status_code < 500:
                return answer
            failure = f"answered {answer.status_code}"
        if attempt == retries:
            raise DeliveryFailed(f"SMS provider {provider}: {failure} ({attempt + 1} "
                                 "attempts)")
        metrics.sms_retry(provider)
        time.sleep(backoff * 2 ** attempt)
    raise AssertionError("unreachable")


class TwilioSender:
    """Sends the code by SMS through Twilio's Messaging API."""

    channel = "sms"
    backoff = 0.25  # seconds before the first retry; doubled each time

    def __init__(self, settings: BotSettings) -> None:
        sid = settings.twilio_account_sid
        self.url = (f"{settings.twilio_api_url.rstrip('/')}/2010-04-01/Accounts/"
                    f"{quote(sid, safe='')}/Messages.json")
        self.auth = (sid, settings.twilio_auth_token)
        self.origin = ({"From": settings.twilio_from} if settings.twilio_from
                       else {"MessagingServiceSid": settings.twilio_messaging_service_sid})
        self.timeout = settings.sms_timeout_seconds
        self.retries = settings.sms_retries
        self.texts = CodeTexts.of(settings)

    def send(self, message: CodeMessage) -> str:
        if not message.mobile:
            raise DeliveryFailed("the member has no mobile number")
        form = {"To": message.mobile, **self.origin, "Body": self.texts.sms(message)}
        answer = send_with_retries(
            "twilio", lambda client: client.post(self.url, data=form, auth=self.auth),
            timeout=self.timeout, retries=self.retries, backoff=self.backoff)
        if answer.status_code == 201:
            return message.mobile
        raise DeliveryFailed(f"Twilio answered {answer.status_code} (error "
                             f"{_twilio_error(answer)})")


def _twilio_error(answer: httpx.Response) -> str:
    """Twilio's numeric error code from an error answer (its message may hold the number)."""
    try:
        code = answer.json().get("code")
    except (ValueError, AttributeError):
        return "none given"
    return str(code) if isinstance(code, int) else "none given"


class TemplateSender:
    """Sends the code by SMS with the request the SMS_HTTP_* settings describe."""

    channel = "sms"
    backoff = 0.25

    def __init__(self, settings: BotSettings) -> None:
        self.method = settings.sms_http_method
        self.url = settings.sms_gateway_url
        self.form = settings.sms_http_format == "form"
        self.body = settings.sms_http_body
        self.headers = settings.sms_http_header_dict
        self.auth: tuple[str, str] | None = None
        if settings.sms_gateway_token:
            self.headers.setdefault("Authorization", f"Bearer {settings.sms_gateway_token}")
        elif settings.sms_gateway_user:
            self.auth = (settings.sms_gateway_user, settings.sms_gateway_password)
        self.timeout = settings.sms_timeout_seconds
        self.retries = settings.sms_retries
        self.texts = CodeTexts.of(settings)

    def request(self, message: CodeMessage) -> tuple[str, bytes | None, dict[str, str]]:
        """The URL, body and headers for `message`, each value escaped where it stands."""
        assert message.mobile
        values = {"{to}": message.mobile, "{to_digits}": message.mobile.lstrip("+"),
                  "{text}": self.texts.sms(message)}
        url = _fill(self.url, {key: quote(value, safe="") for key, value in values.items()})
        headers = dict(self.headers)
        if not self.body:
            return url, None, headers
        if self.form:
            pairs = parse_qsl(self.body, keep_blank_values=True)
            content = urlencode([(name, _fill(value, values)) for name, value in pairs])
            kind = "application/x-www-form-urlencoded"
        else:
            content = json.dumps(_fill_json(json.loads(self.body), values),
                                 ensure_ascii=False)
            kind = "application/json"
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = kind
        return url, content.encode(), headers

    def send(self, message: CodeMessage) -> str:
        if not message.mobile:
            raise DeliveryFailed("the member has no mobile number")
        url, content, headers = self.request(message)
        answer = send_with_retries(
            "http", lambda client: client.request(self.method, url, content=content,
                                                  headers=headers,
                                                  auth=self.auth or httpx.USE_CLIENT_DEFAULT),
            timeout=self.timeout, retries=self.retries, backoff=self.backoff)
        if not answer.is_success:
            raise DeliveryFailed(f"SMS provider answered {answer.status_code}")
        return message.mobile


def _fill(template: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        template = template.replace(placeholder, value)
    return template


def _fill_json(node: Any, values: dict[str, str]) -> Any:
    """The JSON template with placeholders filled in every string (json.dumps escapes)."""
    if isinstance(node, str):
        return _fill(node, values)
    if isinstance(node, list):
        return [_fill_json(item, values) for item in node]
    if isinstance(node, dict):
        return {key: _fill_json(item, values) for key, item in node.items()}
    return node


__all__ = ["TemplateSender", "TwilioSender", "send_with_retries"]
