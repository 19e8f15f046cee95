"""Request and response shapes of `/api/v1/auth`; load schemas reject unknown fields."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import Schema, fields, validate

from ..web.fields import Email, SafeString, UTCTime
from ..web.schemas import MAX_PASSWORD_INPUT, MAX_TOKEN_LENGTH, StrictSchema


class RegisterSchema(StrictSchema):
    email = Email(required=True)
    password = SafeString(required=True, max_length=MAX_PASSWORD_INPUT)
    name = SafeString(max_length=200, allow_none=True, load_default=None)


class LoginSchema(StrictSchema):
    email = Email(required=True)
    password = SafeString(required=True, max_length=MAX_PASSWORD_INPUT)


class RefreshSchema(StrictSchema):
    refresh_token = SafeString(max_length=MAX_TOKEN_LENGTH, load_default=None)


class LogoutSchema(StrictSchema):
    refresh_token = SafeString(max_length=MAX_TOKEN_LENGTH, load_default=None)


class RevokeSchema(StrictSchema):
    token = SafeString(required=True, min_length=1, max_length=MAX_TOKEN_LENGTH)
    token_type_hint = fields.String(
        load_default=None, validate=lambda v: v in {"access_token", "refresh_token"}
    )


class UpdateMeSchema(StrictSchema):
    name = SafeString(required=True, max_length=200, allow_none=True)


class EmailOnlySchema(StrictSchema):
    email = Email(required=True)


class LinkTokenSchema(StrictSchema):
    token = SafeString(required=True, min_length=1, max_length=512)


class PasswordResetSchema(StrictSchema):
    token = SafeString(required=True, min_length=1, max_length=512)
    password = SafeString(required=True, max_length=MAX_PASSWORD_INPUT)


class PasswordChangeSchema(StrictSchema):
    current_password = SafeString(required=True, max_length=MAX_PASSWORD_INPUT)
    new_password = SafeString(required=True, max_length=MAX_PASSWORD_INPUT)


class EventsQuerySchema(StrictSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class SessionSchema(Schema):
    id = fields.UUID()
    created_at = UTCTime()
    last_used_at = UTCTime()
    user_agent = fields.String(allow_none=True)
    ip = fields.String(allow_none=True)
    current = fields.Boolean()


SESSIONS_PER_PAGE = 50
MAX_SESSIONS_PER_PAGE = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_CURSOR_TEXT = re.compile(r"^([0-9]{1,19})\.([0-9a-f]{32})$")


class SessionCursor(fields.Field[tuple[datetime, uuid.UUID]]):
    """The opaque ``cursor`` of the sessions listing: where the previous page stopped.

    It is the ``(last_used_at, id)`` of that page's last session, as URL-safe base64 of
    ``<microseconds since the epoch>.<uuid hex>``; it loads back into that pair. Anything else
    fails validation (422 ``validation_error``).
    """

    default_error_messages = {"invalid": "Not a valid cursor."}

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        last_used_at, session_id = value
        micros = (last_used_at - _EPOCH) // timedelta(microseconds=1)
        text = f"{micros}.{session_id.hex}".encode("ascii")
        return base64.urlsafe_b64encode(text).rstrip(b"=").decode("ascii")

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> tuple[datetime, uuid.UUID]:
        match = None
        if isinstance(value, str) and _CURSOR.match(value):
            try:
                padded = value + "=" * (-len(value) % 4)
                match = _CURSOR_TEXT.match(base64.urlsafe_b64decode(padded).decode("ascii"))
            except (binascii.Error, UnicodeDecodeError, ValueError):
                match = None
        if match is None:
            raise self.make_error("invalid")
        try:
            last_used_at = _EPOCH + timedelta(microseconds=int(match.group(1)))
        except OverflowError:  # past the year 9999
            raise self.make_error("invalid") from None
        return last_used_at, uuid.UUID(hex=match.group(2))


class SessionsQuerySchema(StrictSchema):
    limit = fields.Integer(
        load_default=SESSIONS_PER_PAGE,
        validate=validate.Range(min=1, max=MAX_SESSIONS_PER_PAGE),
        metadata={"description": f"Sessions per page (default {SESSIONS_PER_PAGE})."},
    )
    after = SessionCursor(
        data_key="cursor",
        load_default=None,
        metadata={
            "description": "The `next_cursor` of the previous page; omit for the first.",
            "pattern": _CURSOR.pattern,
        },
    )


class SessionPageSchema(Schema):
    """One page of the listing; the route adds each session's ``current`` flag."""

    sessions = fields.List(fields.Nested(SessionSchema(exclude=("current",))))
    next_cursor = SessionCursor(allow_none=True)


#: A TOTP code or a backup code (the two_factor blueprint's own limit is the same).
MAX_SECOND_FACTOR_CODE = 32


class EmailChangeSchema(StrictSchema):
    """``password`` is required when the account has one; without one, the fresh token is all."""

    new_email = Email(required=True)
    password = SafeString(max_length=MAX_PASSWORD_INPUT, load_default=None)


class DeleteAccountSchema(StrictSchema):
    """``password`` when the account has one, ``code`` (TOTP or backup code) when 2FA is on."""

    password = SafeString(max_length=MAX_PASSWORD_INPUT, load_default=None)
    code = SafeString(min_length=1, max_length=MAX_SECOND_FACTOR_CODE, load_default=None)
