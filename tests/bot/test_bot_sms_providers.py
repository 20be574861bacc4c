"""SMS_PROVIDER: Twilio's Messaging API and a templated HTTP request, each against a local
stand-in HTTP server (127.0.0.1) that checks the request's exact shape; retries of 5xx and
timeouts (never of a 4xx); credentials kept out of the log; bad provider settings refused
at start with the setting named."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.senders import SmsSender, make_senders
from bot.settings import load_bot_settings
from bot.sms import TemplateSender, TwilioSender
from core.code_texts import CodeTexts
from core.delivery import CodeMessage, DeliveryFailed
from core.settings import load_settings
from core.status import PointsError
from tests.bot.bot_harness import ASHA, World

SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "twilio-auth-token-0123456789"
CODE = "424242"


class Recorded:
    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method, self.path, self.headers, self.body = method, path, headers, body

    @property
    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True, strict_parsing=True)


class Provider:
    """A local HTTP server standing in for an SMS provider: records each request and
    answers the next of `answers` (status, JSON body), then `default`. An answer with
    status 0 never comes: the request waits until the server closes (a timeout)."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.answers: list[tuple[int, dict[str, Any]]] = []
        self.default: tuple[int, dict[str, Any]] = (200, {"ok": True})
        self.closing = threading.Event()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length) if length else b""
                provider.requests.append(Recorded(self.command, self.path,
                                                  dict(self.headers.items()), body))
                status, answer = (provider.answers.pop(0) if provider.answers
                                  else provider.default)
                if status == 0:
                    provider.closing.wait(10)
                    return
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider() -> Iterator[Provider]:
    server = Provider()
    try:
        yield server
    finally:
        server.close()


def sms_text(message: CodeMessage) -> str:
    """The SMS text of `message` with the default settings: the catalogue's, in English."""
    return CodeTexts.of(load_settings()).sms(message)


def message(**overrides: Any) -> CodeMessage:
    values: dict[str, Any] = {"member_id": 1, "name": "Asha", "mobile": ASHA["mobile"],
                              "email": None, "code": CODE, "points": 500,
                              "value": Decimal("500.00"), "valid_minutes": 10}
    return CodeMessage(**{**values, **overrides})


def twilio(provider: Provider, **overrides: Any) -> Any:
    values = {"require_token": False, "otp_channel": "sms", "sms_provider": "twilio",
              "twilio_account_sid": SID, "twilio_auth_token": TOKEN,
              "twilio_from": "+15005550006", "twilio_api_url": provider.url}
    return load_bot_settings(**{**values, **overrides})


def fast(sender: Any) -> Any:
    sender.backoff = 0.01
    return sender


# ---------------------------------------------------------------- Twilio


def test_twilio_gets_the_request_its_api_documents(provider: Provider) -> None:
    provider.default = (201, {"sid": "SM123", "status": "queued"})
    assert TwilioSender(twilio(provider)).send(message()) == ASHA["mobile"]
    [request] = provider.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(
        f"{SID}:{TOKEN}".encode()).decode()
    assert request.form == {"To": [ASHA["mobile"]], "From": ["+15005550006"],
                            "Body": [sms_text(message())]}


def test_twilio_with_a_messaging_service(provider: Provider) -> None:
    provider.default = (201, {"sid": "SM123"})
    settings = twilio(provider, twilio_from="", twilio_messaging_service_sid="MG999")
    TwilioSender(settings).send(message())
    assert provider.requests[0].form == {"To": [ASHA["mobile"]],
                                         "MessagingServiceSid": ["MG999"],
                                         "Body": [sms_text(message())]}


def test_a_twilio_4xx_is_a_failed_delivery_with_its_error_code_and_no_retry(
        provider: Provider) -> None:
    provider.default = (400, {"code": 21211, "message": f"The 'To' number {ASHA['mobile']} "
                                                        "is not a valid phone number.",
                              "status": 400})
    with pytest.raises(DeliveryFailed) as failure:
        fast(TwilioSender(twilio(provider))).send(message())
    reason = str(failure.value)
    assert "400" in reason and "21211" in reason
    for kept_out in (TOKEN, CODE, ASHA["mobile"]):
        assert kept_out not in reason
    assert len(provider.requests) == 1  # a 4xx is not retried


def test_a_twilio_5xx_is_retried_then_delivered(provider: Provider) -> None:
    provider.answers = [(503, {}), (500, {})]
    provider.default = (201, {"sid": "SM1"})
    assert fast(TwilioSender(twilio(provider, sms_retries=2))).send(message())
    assert len(provider.requests) == 3


def test_a_timeout_is_retried_a_bounded_number_of_times(provider: Provider) -> None:
    provider.default = (0, {})  # never answers
    sender = fast(TwilioSender(twilio(provider, sms_retries=1, sms_timeout_seconds=0.3)))
    with pytest.raises(DeliveryFailed) as failure:
        sender.send(message())
    assert "Timeout" in str(failure.value) and "2 attempts" in str(failure.value)
    assert len(provider.requests) == 2


async def test_a_redemption_code_by_twilio_through_the_bot(world: World, provider: Provider,
                                                           caplog: pytest.LogCaptureFixture
                                                           ) -> None:
    provider.default = (201, {"sid": "SM1"})
    chat = await world.chat(otp_channel="sms", sms_provider="twilio", twilio_account_sid=SID,
                            twilio_auth_token=TOKEN, twilio_from="+15005550006",
                            twilio_api_url=provider.url)
    await chat.link()
    await chat.say("/redeem 500")
    with caplog.at_level(logging.DEBUG):
        replies = await chat.press("Confirm")
    assert "Validation Code Issued by SMS" in replies[-1].text
    body = provider.requests[-1].form["Body"][0]
    code = body.split("validation code is ")[1][:6]
    assert (await chat.say(code))[-1].text.startswith("800 ")
    assert TOKEN not in caplog.text


def test_credentials_never_reach_the_log(provider: Provider,
                                         caplog: pytest.LogCaptureFixture) -> None:
    """httpx logs each request at INFO; a failed delivery is logged by the engine."""
    from bot import logsafe

    settings = twilio(provider, sms_retries=1)
    logsafe.protect(settings)
    provider.answers = [(500, {}), (401, {"code": 20003, "message": "Authenticate"})]
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(DeliveryFailed) as failure:
            fast(make_senders(settings)[0]).send(message())
        logging.getLogger("core.service").warning("not sent: %s", failure.value)
    assert "20003" in caplog.text
    assert TOKEN not in caplog.text
    assert base64.b64encode(f"{SID}:{TOKEN}".encode()).decode() not in caplog.text


# ---------------------------------------------------------------- templated HTTP


def template(provider: Provider, **overrides: Any) -> Any:
    values = {"require_token": False, "otp_channel": "sms", "sms_provider": "http",
              "sms_gateway_url": f"{provider.url}/api/send"}
    return load_bot_settings(**{**values, **overrides})


def test_a_json_template_is_filled_with_escaped_values(provider: Provider) -> None:
    settings = template(
        provider, sms_http_headers='{"authkey": "key-abc-123456", "X-Route": "otp"}',
        sms_http_body='{"sender": "ACME", "mobiles": "{to_digits}", '
                      '"sms": [{"message": "{text}", "to": ["{to}"]}], "flash": 0}')
    odd = message(name='Asha "Q" \\ Rao')  # the text never holds the name, but the code
    text = sms_text(odd)
    assert TemplateSender(settings).send(odd) == ASHA["mobile"]
    [request] = provider.requests
    assert request.method == "POST" and request.path == "/api/send"
    assert request.headers["authkey"] == "key-abc-123456"
    assert request.headers["X-Route"] == "otp"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        "sender": "ACME", "mobiles": ASHA["mobile"].lstrip("+"),
        "sms": [{"message": text, "to": [ASHA["mobile"]]}], "flash": 0}


def test_a_json_template_escapes_quotes_and_backslashes(provider: Provider) -> None:
    settings = template(provider, sms_http_body='{"to": "{to}", "text": "{text}"}')
    sender = TemplateSender(settings)
    tricky = message(code='12"}\\34')  # what a naive string substitution would break on
    _url, body, _headers = sender.request(tricky)
    assert body is not None
    assert json.loads(body) == {"to": ASHA["mobile"], "text": sms_text(tricky)}


def test_a_form_template_is_filled_with_escaped_values(provider: Provider) -> None:
    settings = template(provider, sms_http_format="form",
                        sms_http_body="apikey=k-123456&numbers={to}&message={text}&sender=TXTLCL",
                        sms_gateway_token="bearer-tok-123456")
    tricky = message(code="12&34=5+6")
    assert TemplateSender(settings).send(tricky)
    [request] = provider.requests
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["Authorization"] == "Bearer bearer-tok-123456"
    assert request.form == {"apikey": ["k-123456"], "numbers": [ASHA["mobile"]],
                            "message": [sms_text(tricky)], "sender": ["TXTLCL"]}


def test_a_get_with_the_placeholders_in_the_url(provider: Provider) -> None:
    settings = template(provider, sms_http_method="GET",
                        sms_gateway_url=f"{provider.url}/send?to={{to}}&msg={{text}}&key=k")
    tricky = message(code="1&2#3")
    assert TemplateSender(settings).send(tricky)
    [request] = provider.requests
    assert request.method == "GET" and request.body == b""
    query = parse_qs(urlsplit(request.path).query)
    assert query == {"to": [ASHA["mobile"]], "msg": [sms_text(tricky)], "key": ["k"]}


def test_a_template_4xx_is_not_retried_and_a_5xx_is(provider: Provider) -> None:
    settings = template(provider, sms_http_body='{"to": "{to}", "text": "{text}"}')
    provider.default = (422, {"error": "bad number"})
    with pytest.raises(DeliveryFailed) as failure:
        fast(TemplateSender(settings)).send(message())
    assert "422" in str(failure.value) and len(provider.requests) == 1
    provider.answers, provider.default = [(502, {})], (200, {})
    assert fast(TemplateSender(settings)).send(message())
    assert len(provider.requests) == 3


def test_the_generic_gateway_retries_a_5xx_too(provider: Provider) -> None:
    settings = load_bot_settings(require_token=False, otp_channel="sms",
                                 sms_gateway_url=f"{provider.url}/send")
    provider.answers = [(500, {})]
    assert fast(SmsSender(settings)).send(message()) == ASHA["mobile"]
    assert [json.loads(r.body) for r in provider.requests] == [
        {"to": ASHA["mobile"], "text": sms_text(message())}] * 2


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(("settings", "code", "named"), [
    ({"sms_provider": "twilio", "twilio_auth_token": "t", "twilio_from": "+1"}, 899,
     "TWILIO_ACCOUNT_SID"),
    ({"sms_provider": "twilio", "twilio_account_sid": "AC1", "twilio_from": "+1"}, 899,
     "TWILIO_AUTH_TOKEN"),
    ({"sms_provider": "twilio", "twilio_account_sid": "AC1", "twilio_auth_token": "t"}, 899,
     "TWILIO_FROM"),
    ({"sms_provider": "twilio", "twilio_account_sid": "AC1", "twilio_auth_token": "t",
      "twilio_from": "+1", "twilio_api_url": "ftp://x"}, 899, "TWILIO_API_URL"),
    ({"sms_provider": "http", "sms_gateway_url": "https://sms.example.in/send",
      "sms_http_body": '{"to": "{to}"}'}, 899, "{text}"),
    ({"sms_provider": "http", "sms_gateway_url": "https://sms.example.in/send",
      "sms_http_body": '{"text": "{text}"}'}, 899, "{to}"),
    ({"sms_provider": "http", "sms_gateway_url": "https://sms.example.in/send",
      "sms_http_body": '{"to": {to}, "text": "{text}"}'}, 888, "SMS_HTTP_BODY"),
    ({"sms_provider": "http", "sms_gateway_url": "https://sms.example.in/send",
      "sms_http_format": "form", "sms_http_body": "to={to}&text={text}&&bad"}, 888,
     "SMS_HTTP_BODY"),
    ({"sms_provider": "http", "sms_gateway_url": "https://sms.example.in/send?t={text}&n={to}",
      "sms_http_headers": '["not", "an object"]'}, 888, "SMS_HTTP_HEADERS"),
    ({"sms_provider": "http", "sms_gateway_url": "https://sms.example.in/send?t={text}&n={to}",
      "sms_http_method": "GET", "sms_http_body": '{"a": "b"}'}, 899, "SMS_HTTP_METHOD"),
    ({"sms_provider": "carrier-pigeon"}, 888, "SMS_PROVIDER"),
    ({"sms_gateway_url": "https://sms.example.in/send", "sms_retries": -1}, 899,
     "SMS_RETRIES"),
])
def test_bad_provider_settings_refuse_to_start_naming_the_setting(
        settings: dict[str, Any], code: int, named: str) -> None:
    with pytest.raises(PointsError) as refused:
        load_bot_settings(require_token=False, otp_channel="sms", **settings)
    assert refused.value.code == code
    assert named in str(refused.value)
