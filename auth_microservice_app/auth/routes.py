"""HTTP layer of `/api/v1/auth`: parse, call a service, serialise."""

from __future__ import annotations

import uuid

from flask import Response, request

from .. import audit
from ..errors import AuthorizationRequired, NotFound
from ..identity import rotation, users
from ..identity import sessions as session_rules
from ..web.auth import bearer_token, current_claims, require_token
from ..web.request_body import load
from ..web.responses import client_info, no_store, sign_in_body, tokens, user_body
from ..web.schemas import SecurityEventSchema
from . import email_flows, flows
from .blueprint import bp
from .schemas import (
    EmailOnlySchema,
    EventsQuerySchema,
    LinkTokenSchema,
    LoginSchema,
    LogoutSchema,
    PasswordChangeSchema,
    PasswordResetSchema,
    RefreshSchema,
    RegisterSchema,
    RevokeSchema,
    SessionPageSchema,
    SessionsQuerySchema,
    UpdateMeSchema,
)


@bp.post("/register")
def register() -> tuple[Response, int]:
    data = load(RegisterSchema())
    return user_body(flows.register_user(**data), 201)


@bp.post("/login")
def login() -> tuple[Response, int]:
    data = load(LoginSchema())
    return sign_in_body(flows.login(data["email"], data["password"], client_info()))


@bp.post("/refresh")
def refresh() -> tuple[Response, int]:
    token = load(RefreshSchema())["refresh_token"] or bearer_token()
    if not token:
        raise AuthorizationRequired("A refresh token is required.")
    return tokens(rotation.refresh(token))


@bp.post("/logout")
@require_token
def logout() -> tuple[Response, int]:
    session_rules.logout(current_claims(), load(LogoutSchema())["refresh_token"])
    return no_store({"message": "Signed out."})


@bp.post("/logout-all")
@require_token
def logout_all() -> tuple[Response, int]:
    count = session_rules.logout_all(current_claims()["sub"])
    return no_store({"message": "Signed out everywhere.", "sessions_revoked": count})


@bp.post("/revoke")
@require_token
def revoke() -> tuple[Response, int]:
    session_rules.revoke_token(current_claims()["sub"], load(RevokeSchema())["token"])
    return no_store({"message": "Token revoked."})


@bp.get("/me")
@require_token
def me() -> tuple[Response, int]:
    return user_body(users.get_profile(current_claims()["sub"]))


@bp.patch("/me")
@require_token
def update_me() -> tuple[Response, int]:
    data = load(UpdateMeSchema())
    return user_body(users.update_profile(current_claims()["sub"], data["name"]))


@bp.get("/sessions")
@require_token
def sessions() -> tuple[Response, int]:
    query = SessionsQuerySchema().load(request.args.to_dict())
    claims = current_claims()
    body = SessionPageSchema().dump(session_rules.list_sessions(claims["sub"], **query))
    for row in body["sessions"]:
        row["current"] = row["id"] == claims["sid"]
    return no_store(body)


@bp.delete("/sessions/<session_id>")
@require_token
def delete_session(session_id: str) -> tuple[str, int]:
    try:
        sid = uuid.UUID(session_id)
    except ValueError:
        raise NotFound("No such session.") from None
    session_rules.delete_session(current_claims()["sub"], sid)
    return "", 204


ACCEPTED = {"message": "If the address belongs to an account, an email is on its way."}


@bp.post("/verify-email")
def verify_email() -> tuple[Response, int]:
    # POST only: mail scanners follow the links in an email, so a GET must spend nothing. The
    # link opens the client's page (FRONTEND_URL), which posts the token it carries.
    return user_body(email_flows.verify_email(load(LinkTokenSchema())["token"]))


@bp.post("/verify-email/resend")
def verify_email_resend() -> tuple[Response, int]:
    email_flows.request_verification(load(EmailOnlySchema())["email"])
    return no_store(ACCEPTED, 202)


@bp.post("/password/forgot")
def password_forgot() -> tuple[Response, int]:
    email_flows.request_password_reset(load(EmailOnlySchema())["email"])
    return no_store(ACCEPTED, 202)


@bp.post("/password/reset")
def password_reset() -> tuple[Response, int]:
    data = load(PasswordResetSchema())
    email_flows.reset_password(data["token"], data["password"])
    return no_store({"message": "Password updated. Every session was signed out."})


@bp.post("/password/change")
@require_token
def password_change() -> tuple[Response, int]:
    data = load(PasswordChangeSchema())
    claims = current_claims()
    pair = email_flows.change_password(
        claims["sub"], claims["sid"], data["current_password"], data["new_password"], client_info()
    )
    return tokens(pair)


@bp.post("/magic-link")
def magic_link() -> tuple[Response, int]:
    email_flows.request_magic_link(load(EmailOnlySchema())["email"])
    return no_store(ACCEPTED, 202)


@bp.post("/magic-link/verify")
def magic_link_verify() -> tuple[Response, int]:
    token = load(LinkTokenSchema())["token"]
    return sign_in_body(email_flows.sign_in_with_magic_link(token, client_info()))


@bp.get("/events")
@require_token
def security_events() -> tuple[Response, int]:
    query = EventsQuerySchema().load(request.args.to_dict())
    rows, total = audit.list_events(current_claims()["sub"], **query)
    events = SecurityEventSchema(many=True).dump(rows)
    return no_store(
        {"events": events, "page": query["page"], "per_page": query["per_page"], "total": total}
    )
