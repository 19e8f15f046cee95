"""HTTP layer of `/api/v1/2fa`: parse, call a service, serialise."""

from __future__ import annotations

from flask import Response, request

from ..web.auth import current_claims, require_token
from ..web.request_body import load
from ..web.responses import client_info, no_store, tokens
from . import services
from .blueprint import bp
from .schemas import (
    BackupCodesSchema,
    CodeSchema,
    DisableSchema,
    SetupQuerySchema,
    SetupSchema,
    StatusSchema,
    VerifySchema,
)


@bp.get("/status")
@require_token
def status() -> tuple[Response, int]:
    return no_store(StatusSchema().dump(services.status(current_claims()["sub"])))


@bp.post("/setup")
# fresh: a stolen, refreshed token must not enrol the thief's authenticator; enrollment: a user
# whose role requires 2FA has no session until one is enrolled (REQUIRE_2FA_FOR_ROLES)
@require_token(fresh=True, enrollment=True)
def setup() -> tuple[Response, int]:
    qr_format = SetupQuerySchema().load(request.args)["format"]
    return no_store(
        SetupSchema().dump(services.begin_setup(current_claims()["sub"], qr_format=qr_format))
    )


@bp.post("/enable")
@require_token(fresh=True, enrollment=True)
def enable() -> tuple[Response, int]:
    codes = services.enable(current_claims()["sub"], load(CodeSchema())["code"])
    return no_store(BackupCodesSchema().dump({"backup_codes": codes}))


@bp.post("/disable")
@require_token
def disable() -> tuple[Response, int]:
    data, claims = load(DisableSchema()), current_claims()
    services.disable(
        claims["sub"], claims["sid"], data["password"], data["code"], fresh=bool(claims["fresh"])
    )
    return no_store({"message": "Two-factor authentication is disabled."})


@bp.post("/backup-codes")
@require_token
def backup_codes() -> tuple[Response, int]:
    codes = services.regenerate_backup_codes(current_claims()["sub"], load(CodeSchema())["code"])
    return no_store(BackupCodesSchema().dump({"backup_codes": codes}))


@bp.post("/verify")
def verify() -> tuple[Response, int]:
    data = load(VerifySchema())
    return tokens(services.verify(data["mfa_token"], data["code"], client_info()))
