"""Request and response shapes of `/api/v1/admin`; load schemas reject unknown fields."""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..identity.accounts import MAX_ROLES, ROLE_PATTERN
from ..identity.directory import STATUSES
from ..web.fields import SafeString, UTCTime
from ..web.schemas import SecurityEventSchema, StrictSchema, UserSchema

PER_PAGE = 50
MAX_PER_PAGE = 200
_CURSOR = re.compile(r"^[A-Za-z0-9_-]{1,700}$")


@dataclass(frozen=True)
class CursorKind:
    """How one listing's key becomes a JSON array and back."""

    parse: Callable[[list[Any]], Any]
    dump: Callable[[Any], list[Any]]


class Cursor(fields.Field):
    """An opaque ``cursor``: where the previous page stopped (its last row's sort key).

    URL-safe base64 of a JSON array; ``parse`` turns the array back into the key the kernel
    takes (and raises on anything else, which answers 422 ``validation_error``).
    """

    default_error_messages = {"invalid": "Not a valid cursor."}

    def __init__(self, kind: CursorKind, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.parse, self.dump = kind.parse, kind.dump

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        text = json.dumps(self.dump(value), separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(text).rstrip(b"=").decode("ascii")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str) or not _CURSOR.match(value):
            raise self.make_error("invalid")
        try:
            parts = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
            key = self.parse(parts) if isinstance(parts, list) else None
        except (binascii.Error, ValueError, TypeError, IndexError):
            key = None
        if key is None:
            raise self.make_error("invalid")
        return key


def _user_key(parts: list[Any]) -> tuple[str, uuid.UUID]:
    email, user_id = parts
    if not isinstance(email, str) or len(email) > 320:
        raise ValueError
    return email, uuid.UUID(user_id)


def _session_key(parts: list[Any]) -> tuple[datetime, uuid.UUID]:
    used, session_id = parts
    return datetime.fromisoformat(used).astimezone(UTC), uuid.UUID(session_id)


def _event_key(parts: list[Any]) -> int:
    (event_id,) = parts
    if not isinstance(event_id, int) or isinstance(event_id, bool) or event_id < 1:
        raise ValueError
    return event_id


USER_CURSOR = CursorKind(_user_key, lambda key: [key[0], str(key[1])])
SESSION_CURSOR = CursorKind(_session_key, lambda key: [key[0].isoformat(), str(key[1])])
EVENT_CURSOR = CursorKind(_event_key, lambda key: [key])
CURSOR_DOC = {"description": "The `next_cursor` of the previous page; omit for the first."}


def _limit() -> fields.Integer:
    return fields.Integer(
        load_default=PER_PAGE,
        validate=validate.Range(min=1, max=MAX_PER_PAGE),
        metadata={"description": f"Items per page (default {PER_PAGE}, at most {MAX_PER_PAGE})."},
    )


def _role(**kwargs: Any) -> fields.String:
    return fields.String(
        validate=validate.Regexp(ROLE_PATTERN, error="Not a valid role."), **kwargs
    )


class UsersQuerySchema(StrictSchema):
    limit = _limit()
    after = Cursor(data_key="cursor", load_default=None, metadata=CURSOR_DOC, kind=USER_CURSOR)
    query = SafeString(
        min_length=1,
        max_length=320,
        load_default=None,
        metadata={"description": "A case-insensitive prefix of the email or of the name."},
    )
    role = _role(load_default=None, metadata={"description": "Users holding this role."})
    status = fields.String(
        load_default=None,
        validate=validate.OneOf(STATUSES),
        metadata={
            "description": "`active` (enabled, email verified), `disabled`, or `unverified` "
            "(enabled, email not verified)."
        },
    )


class AdminUserSchema(UserSchema):
    """The user object, and whether the account is disabled."""

    disabled = fields.Boolean()


class UserDetailsSchema(AdminUserSchema):
    last_login_at = UTCTime(allow_none=True)
    providers = fields.List(fields.String())
    passkeys = fields.List(fields.Dict())
    active_sessions = fields.Integer()


class AdminUserResultSchema(Schema):
    user = fields.Nested(UserDetailsSchema)


class AdminUserPageSchema(Schema):
    items = fields.List(fields.Nested(AdminUserSchema), attribute="users")
    next_cursor = Cursor(allow_none=True, kind=USER_CURSOR)


class UserPatchSchema(StrictSchema):
    roles = fields.List(_role(), validate=validate.Length(max=MAX_ROLES))
    disabled = fields.Boolean()
    email_verified = fields.Boolean()
    name = SafeString(max_length=200, allow_none=True)

    @validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError(
                "Send at least one of roles, disabled, email_verified, name.", "_schema"
            )


class AdminSessionsQuerySchema(StrictSchema):
    limit = _limit()
    after = Cursor(data_key="cursor", load_default=None, metadata=CURSOR_DOC, kind=SESSION_CURSOR)


class AdminSessionSchema(Schema):
    id = fields.UUID()
    created_at = UTCTime()
    last_used_at = UTCTime()
    expires_at = UTCTime()
    user_agent = fields.String(allow_none=True)
    ip = fields.String(allow_none=True)
    amr = fields.List(fields.String())


class AdminSessionPageSchema(Schema):
    items = fields.List(fields.Nested(AdminSessionSchema), attribute="sessions")
    next_cursor = Cursor(allow_none=True, kind=SESSION_CURSOR)


class AdminEventsQuerySchema(StrictSchema):
    limit = _limit()
    after = Cursor(data_key="cursor", load_default=None, metadata=CURSOR_DOC, kind=EVENT_CURSOR)
    user_id = fields.UUID(load_default=None, metadata={"description": "One user's events."})
    event_type = fields.String(
        data_key="type",
        load_default=None,
        validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,63}$", error="Not a valid event type."),
        metadata={"description": "One event type (`login_succeeded`, `roles_changed`, ...)."},
    )
    since = fields.AwareDateTime(
        load_default=None,
        default_timezone=UTC,
        metadata={"description": "Events at or after this time (ISO-8601)."},
    )


class AdminEventSchema(SecurityEventSchema):
    user_id = fields.UUID(allow_none=True)


class AdminEventPageSchema(Schema):
    items = fields.List(fields.Nested(AdminEventSchema), attribute="events")
    next_cursor = Cursor(allow_none=True, kind=EVENT_CURSOR)


class ClientSchema(Schema):
    client_id = fields.String()
    name = fields.String()
    scopes = fields.List(fields.String())
    created_at = UTCTime()
    rotated_at = UTCTime(allow_none=True)
    last_used_at = UTCTime(allow_none=True)
    disabled = fields.Boolean()


class ClientListSchema(Schema):
    """Every client, on one page (``next_cursor`` is always null: clients are few)."""

    items = fields.List(fields.Nested(ClientSchema))
    next_cursor = fields.String(allow_none=True)


class NewClientSchema(ClientSchema):
    client_secret = fields.String(metadata={"description": "Shown this once; only a hash is kept."})


class ClientCreateSchema(StrictSchema):
    name = SafeString(required=True, min_length=1, max_length=200)
    scopes = fields.List(
        SafeString(min_length=1, max_length=64), load_default=list, validate=validate.Length(max=50)
    )
