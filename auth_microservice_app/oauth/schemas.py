"""Request and response shapes of `/api/v1/oauth`; body schemas reject unknown fields."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from ..web.fields import SafeString, UTCTime
from ..web.schemas import StrictSchema

MAX_URI_LENGTH = 2048
MAX_TOKEN_LENGTH = 8192
MAX_CODE_LENGTH = 2048
MAX_STATE_LENGTH = 512
#: RFC 7636 4.1: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
CODE_VERIFIER = validate.Regexp(r"^[A-Za-z0-9\-._~]{43,128}$", error="Not a valid PKCE verifier.")
#: RFC 7636 4.2: BASE64URL(SHA256(verifier)) without padding, always 43 characters.
CODE_CHALLENGE = validate.Regexp(r"^[A-Za-z0-9_-]{43}$", error="Not a valid S256 code challenge.")


class AuthorizeQuerySchema(Schema):
    """``?redirect_uri=`` (checked against the allow-list by the service), the client's state,
    and the client's PKCE challenge for the one-time code (``S256`` only)."""

    class Meta:
        unknown = EXCLUDE  # browsers and proxies add tracking parameters

    redirect_uri = SafeString(max_length=MAX_URI_LENGTH, load_default=None)
    state = SafeString(max_length=MAX_STATE_LENGTH, load_default=None)
    code_challenge = fields.String(
        validate=CODE_CHALLENGE,
        load_default=None,
        metadata={"description": "BASE64URL(SHA256(code_verifier)); `/exchange` then needs it."},
    )
    code_challenge_method = fields.String(
        validate=validate.OneOf(["S256"]),
        load_default=None,
        metadata={"description": "`S256` (required with `code_challenge`; `plain` is refused)."},
    )

    @validates_schema
    def _s256_pair(self, data: dict[str, Any], **_kwargs: Any) -> None:
        challenge, method = data.get("code_challenge"), data.get("code_challenge_method")
        if challenge and not method:
            # RFC 7636 4.3: a challenge without a method means "plain", which we do not accept.
            raise ValidationError(
                {"code_challenge_method": ["Send code_challenge_method=S256 with code_challenge."]}
            )
        if method and not challenge:
            raise ValidationError({"code_challenge": ["Missing data for required field."]})


class LinkSchema(StrictSchema):
    redirect_uri = SafeString(max_length=MAX_URI_LENGTH, load_default=None)
    state = SafeString(max_length=MAX_STATE_LENGTH, load_default=None)


class LinkConfirmSchema(StrictSchema):
    """The ``link_code`` the callback of a link flow sent to the client."""

    code = SafeString(required=True, min_length=1, max_length=MAX_STATE_LENGTH)


class ExchangeSchema(StrictSchema):
    code = SafeString(required=True, min_length=1, max_length=MAX_STATE_LENGTH)
    code_verifier = fields.String(
        validate=CODE_VERIFIER,
        load_default=None,
        metadata={"description": "Required when `/authorize` was given a `code_challenge`."},
    )


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
