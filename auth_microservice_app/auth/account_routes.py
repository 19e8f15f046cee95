"""HTTP layer of the account's life in `/api/v1/auth`: changing its address, exporting its data,
deleting it. Parse, call the kernel (identity/email_change, export, deletion), serialise."""

from __future__ import annotations

import json
import uuid

from flask import Response

from ..errors import AppError
from ..identity import deletion, email_change, export
from ..web.auth import bearer_token, current_claims, require_token, verify_request
from ..web.request_body import load
from ..web.responses import no_store, user_body
from .blueprint import bp
from .schemas import DeleteAccountSchema, EmailChangeSchema, LinkTokenSchema

EMAIL_CHANGE_ACCEPTED = {
    "message": "A confirmation link is on its way to the new address; it changes once followed."
}


@bp.post("/me/email")
@require_token(fresh=True)
def change_email() -> tuple[Response, int]:
    data = load(EmailChangeSchema())
    email_change.request_email_change(current_claims()["sub"], data["new_email"], data["password"])
    return no_store(EMAIL_CHANGE_ACCEPTED, 202)


@bp.post("/me/email/confirm")
def confirm_email_change() -> tuple[Response, int]:
    token = load(LinkTokenSchema())["token"]
    return user_body(email_change.confirm_email_change(token, keep_session=_own_session()))


def _own_session() -> uuid.UUID | None:
    """The session of the request's access token, if it carries a valid one: it survives the
    change (the others are revoked). The link alone is enough to confirm."""
    if bearer_token() is None:
        return None
    try:
        return uuid.UUID(str(verify_request()["sid"]))
    except (AppError, ValueError, KeyError):
        return None


@bp.get("/me/export")
@require_token
def export_me() -> tuple[Response, int]:
    body = export.export_account(current_claims()["sub"])
    response = Response(json.dumps(body, indent=2, ensure_ascii=False), mimetype="application/json")
    response.headers["Content-Disposition"] = 'attachment; filename="account-export.json"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response, 200


@bp.delete("/me")
@require_token(fresh=True)
def delete_me() -> tuple[str, int]:
    data = load(DeleteAccountSchema())
    deletion.delete_own_account(
        current_claims()["sub"], password=data["password"], code=data["code"]
    )
    return "", 204
