"""The SMS seam: E.164 validation, the console backend, and Twilio's REST call against a fake
server that checks the request the real code sends."""

from __future__ import annotations

import base64
import logging
from typing import Any
from urllib.parse import parse_qs

import pytest
from flask import Flask
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from auth_microservice_app.utils import sms

SID = "AC" + "0" * 32
TOKEN = "twilio-auth-token"


def app_with(**config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(config)
    return app


def twilio(httpserver: HTTPServer, **extra: Any) -> Flask:
    return app_with(
        SMS_BACKEND="twilio",
        TWILIO_ACCOUNT_SID=SID,
        TWILIO_AUTH_TOKEN=TOKEN,
        TWILIO_FROM_NUMBER="+15005550006",
        TWILIO_API_URL=httpserver.url_for("/"),
        SMS_TIMEOUT=2.0,
        **extra,
    )


@pytest.mark.parametrize("number", ["+14155552671", "+442071838750", "+12", "+123456789012345"])
def test_e164_numbers_are_accepted(number):
    assert sms.validate_e164(number) == number


@pytest.mark.parametrize(
    "number",
    [
        "14155552671",
        "+04155552671",
        "+1 415 555 2671",
        "+1-415-555-2671",
        "+1234567890123456",
        "+",
        "",
        "+1415555267a",
        "+14155552671\n",
    ],
)
def test_other_numbers_are_refused(number):
    with pytest.raises(sms.InvalidPhoneNumber):
        sms.validate_e164(number)


def test_twilio_backend_posts_the_documented_request(httpserver: HTTPServer):
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response(
            '{"sid": "SM123", "status": "queued"}', status=201, content_type="application/json"
        )

    httpserver.expect_oneshot_request(
        f"/2010-04-01/Accounts/{SID}/Messages.json", method="POST"
    ).respond_with_handler(handler)
    with twilio(httpserver).app_context():
        sms.send_sms("+14155552671", "Your sign-in notice: hello")
    httpserver.check_assertions()
    [request] = seen
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    expected_auth = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected_auth}"
    form = parse_qs(request.get_data(as_text=True), strict_parsing=True)
    assert form == {
        "To": ["+14155552671"],
        "From": ["+15005550006"],
        "Body": ["Your sign-in notice: hello"],
    }


@pytest.mark.parametrize("status", [400, 401, 429, 500])
def test_twilio_refusal_is_an_upstream_error_without_the_answer_body(httpserver, status):
    httpserver.expect_oneshot_request(
        f"/2010-04-01/Accounts/{SID}/Messages.json", method="POST"
    ).respond_with_json({"message": "The 'To' number +14155552671 is not valid"}, status=status)
    with twilio(httpserver).app_context(), pytest.raises(sms.SmsDeliveryError) as error:
        sms.send_sms("+14155552671", "hello")
    assert error.value.status_code == 502
    assert error.value.code == "upstream_error"
    assert str(status) in error.value.message
    assert "+14155552671" not in error.value.message


def test_unreachable_twilio_is_an_upstream_error():
    app = app_with(
        SMS_BACKEND="twilio",
        TWILIO_ACCOUNT_SID=SID,
        TWILIO_AUTH_TOKEN=TOKEN,
        TWILIO_FROM_NUMBER="+15005550006",
        TWILIO_API_URL="http://127.0.0.1:9",  # discard port: connection refused
        SMS_TIMEOUT=1.0,
    )
    with app.app_context(), pytest.raises(sms.SmsDeliveryError, match="could not be reached"):
        sms.send_sms("+14155552671", "hello")


def test_invalid_number_never_reaches_the_provider(httpserver: HTTPServer):
    with twilio(httpserver).app_context(), pytest.raises(sms.InvalidPhoneNumber):
        sms.send_sms("555-2671", "hello")
    assert httpserver.log == []


@pytest.mark.parametrize("body", ["", "x" * 1601])
def test_empty_or_oversized_bodies_are_refused(body):
    with app_with(SMS_BACKEND="console").app_context(), pytest.raises(ValueError):
        sms.send_sms("+14155552671", body)


def test_console_backend_logs_a_masked_number(caplog):
    caplog.set_level(logging.INFO, logger="auth_microservice_app.utils.sms")
    with app_with().app_context():  # SMS_BACKEND unset: console
        sms.send_sms("+14155552671", "hello there")
    [record] = caplog.records
    assert record.sms_body == "hello there"
    assert record.sms_to == "+141******71"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"SMS_BACKEND": "twilio"}, "TWILIO_ACCOUNT_SID"),
        ({"SMS_BACKEND": "twilio", "TWILIO_ACCOUNT_SID": SID}, "TWILIO_AUTH_TOKEN"),
        ({"SMS_BACKEND": "pigeon"}, "SMS_BACKEND"),
    ],
)
def test_misconfiguration_names_the_variable(config, message):
    with app_with(**config).app_context(), pytest.raises(sms.SmsConfigurationError, match=message):
        sms.send_sms("+14155552671", "hello")
