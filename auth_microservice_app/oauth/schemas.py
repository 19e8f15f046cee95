"""Request and response shapes of `/api/v1/oauth`; body schemas reject unknown fields."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from ..auth.schemas import StrictSchema
from ..utils.fields import SafeString, UTCTime

MAX_URI_LENGTH = 2048
MAX_TOKEN_LENGTH = 8192
MAX_CODE_LENGTH = 2048
MAX_STATE_LENGTH = 512
#: RFC 7636 4.1: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
CODE_VERIFIER = validate.Regexp(r"^[A-Za-z0-9\-._~]{43,128}$", error="Not a valid PKCE verifier.")


class AuthorizeQuerySchema(Schema):
    """``?redirect_uri=`` (checked against the allow-list by the service) and the client's state."""

    class Meta:
        unknown = EXCLUDE  # browsers and proxies add tracking parameters

    redirect_uri = SafeString(max_length=MAX_URI_LENGTH, load_default=None)
    state = SafeString(max_length=MAX_STATE_LENGTH, load_default=None)


class LinkSchema(StrictSchema):
    redirect_uri = SafeString(max_length=MAX_URI_LENGTH, load_default=None)
    state = SafeString(max_length=MAX_STATE_LENGTH, load_default=None)


class LinkConfirmSchema(StrictSchema):
    """The ``link_code`` the callback of a link flow sent to the client."""

    code = SafeString(required=True, min_length=1, max_length=MAX_STATE_LENGTH)


class ExchangeSchema(StrictSchema):
    code = SafeString(required=True, min_length=1, max_length=MAX_STATE_LENGTH)


class NativeTokenSchema(StrictSchema):
    """Either ``id_token`` (optionally with ``nonce``), or ``code`` + ``code_verifier`` +
    ``redirect_uri``; ``name`` is used only when the account is created (Apple)."""

    id_token = SafeString(max_length=MAX_TOKEN_LENGTH, min_length=1, load_default=None)
    nonce = SafeString(max_length=MAX_STATE_LENGTH, min_length=1, load_default=None)
    code = SafeString(max_length=MAX_CODE_LENGTH, min_length=1, load_default=None)
    code_verifier = fields.String(validate=CODE_VERIFIER, load_default=None)
    redirect_uri = SafeString(max_length=MAX_URI_LENGTH, min_length=1, load_default=None)
    name = SafeString(max_length=200, load_default=None)

    @validates_schema
    def _one_grant(self, data: dict[str, Any], **_kwargs: Any) -> None:
        pkce = ("code", "code_verifier", "redirect_uri")
        if data.get("id_token"):
            extra = [field for field in pkce if data.get(field)]
            if extra:
                raise ValidationError({field: ["Not allowed with id_token."] for field in extra})
            return
        missing = [field for field in pkce if not data.get(field)]
        if len(missing) == len(pkce):
            raise ValidationError(
                "Send id_token, or code with code_verifier and redirect_uri.", "_schema"
            )
        if missing:
            raise ValidationError(
                {field: ["Missing data for required field."] for field in missing}
            )


class ProviderSchema(Schema):
    name = fields.String()
    display_name = fields.String()


class OAuthAccountSchema(Schema):
    provider = fields.String()
    email = fields.String(allow_none=True)
    email_verified = fields.Boolean()
    linked_at = UTCTime(attribute="created_at")
    last_login_at = UTCTime(allow_none=True)


class LinkedAccountSchema(Schema):
    """``/link/confirm``'s answer: the account just linked."""

    account = fields.Nested(OAuthAccountSchema)
