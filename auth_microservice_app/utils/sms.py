"""Sending an SMS: one function, :func:`send_sms`, and a backend chosen by ``SMS_BACKEND``.

This is a seam, not a sign-in factor: NIST SP 800-63B treats SMS one-time codes as a
*restricted* authenticator (SIM swap, number porting, interception), so two-factor sign-in here
is TOTP plus backup codes. Use it for notices, or for an opt-in factor added later with its
risks spelled out.

Backends:
- ``console`` (default): logs the message; development only.
- ``twilio``: Twilio's Programmable Messaging REST API (``POST
  {TWILIO_API_URL}/2010-04-01/Accounts/{sid}/Messages.json``, form body ``To``, ``From``,
  ``Body``, HTTP basic auth with the account SID and auth token).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import requests
from flask import current_app

from ..errors import UpstreamError

logger = logging.getLogger(__name__)

#: ITU-T E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
#: Twilio refuses longer bodies (10 segments).
MAX_BODY_LENGTH = 1600


class InvalidPhoneNumber(ValueError):
    """Not an E.164 number (``+`` and up to 15 digits, no spaces or punctuation)."""


class SmsConfigurationError(RuntimeError):
    """``SMS_BACKEND`` is unknown or its provider settings are missing; names the variable."""


class SmsDeliveryError(UpstreamError):
    """The provider could not be reached or refused the message (502 ``upstream_error``)."""

    message = "The SMS could not be sent."


class SmsBackend(Protocol):
    def send(self, to: str, body: str) -> None: ...


def validate_e164(number: str) -> str:
    """``number`` if it is E.164.

    :raises InvalidPhoneNumber: anything else (formatting is the caller's job, not a guess here).
    """
    if not E164.fullmatch(number):
        raise InvalidPhoneNumber("The phone number must be in E.164 format, e.g. +14155552671.")
    return number


def masked(number: str) -> str:
    return number[:4] + "*" * max(0, len(number) - 6) + number[-2:]


class ConsoleSmsBackend:
    """Writes the message to the log instead of sending it (development)."""

    def send(self, to: str, body: str) -> None:
        logger.info("sms (console backend)", extra={"sms_to": masked(to), "sms_body": body})


@dataclass(frozen=True)
class TwilioSmsBackend:
    account_sid: str
    auth_token: str
    from_number: str
    api_url: str = "https://api.twilio.com"
    timeout: float = 5.0

    @property
    def messages_url(self) -> str:
        sid = quote(self.account_sid, safe="")
        return f"{self.api_url.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"

    def send(self, to: str, body: str) -> None:
        """Post one message; Twilio answers 201 with the queued message.

        :raises SmsDeliveryError: network failure or any non-2xx answer (the body of the error
            answer is not repeated: it may echo the number or the message).
        """
        try:
            response = requests.post(
                self.messages_url,
                data={"To": to, "From": self.from_number, "Body": body},
                auth=(self.account_sid, self.auth_token),
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise SmsDeliveryError("The SMS provider could not be reached.") from exc
        if not 200 <= response.status_code < 300:
            raise SmsDeliveryError(
                f"The SMS provider refused the message (HTTP {response.status_code})."
            )


def backend_from_config(config: Mapping[str, Any]) -> SmsBackend:
    """The backend ``SMS_BACKEND`` names, built from the configuration.

    :raises SmsConfigurationError: unknown backend, or a Twilio setting missing.
    """
    name = config.get("SMS_BACKEND") or "console"
    if name == "console":
        return ConsoleSmsBackend()
    if name == "twilio":
        settings = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER")
        missing = [setting for setting in settings if not config.get(setting)]
        if missing:
            raise SmsConfigurationError(f"{missing[0]} must be set when SMS_BACKEND=twilio")
        return TwilioSmsBackend(
            account_sid=config["TWILIO_ACCOUNT_SID"],
            auth_token=config["TWILIO_AUTH_TOKEN"],
            from_number=config["TWILIO_FROM_NUMBER"],
            api_url=config.get("TWILIO_API_URL") or "https://api.twilio.com",
            timeout=float(config.get("SMS_TIMEOUT", 5.0)),
        )
    raise SmsConfigurationError(f"SMS_BACKEND must be console or twilio, got {name!r}")


def send_sms(to_e164: str, body: str) -> None:
    """Send ``body`` to ``to_e164`` through the configured backend (needs an app context).

    :raises InvalidPhoneNumber: ``to_e164`` is not E.164.
    :raises ValueError: an empty body, or one over 1600 characters.
    :raises SmsConfigurationError: see :func:`backend_from_config`.
    :raises SmsDeliveryError: the provider failed.
    """
    number = validate_e164(to_e164)
    if not body or len(body) > MAX_BODY_LENGTH:
        raise ValueError(f"an SMS body must have 1 to {MAX_BODY_LENGTH} characters")
    backend_from_config(current_app.config).send(number, body)
