"""HTTP layer of `/api/v1/2fa`: parse, call a service, serialise."""

from __future__ import annotations

from flask import Response, request
from flask_jwt_extended import get_jwt, jwt_required

from ..auth.http import client_info, no_store, tokens
from ..utils.request_body import load
from . import bp, services
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
@jwt_required()
def status() -> tuple[Response, int]:
    return no_store(StatusSchema().dump(services.status(get_jwt()["sub"])))


@bp.post("/setup")
@jwt_required(fresh=True)  # a stolen, refreshed token must not enrol the thief's authenticator
def setup() -> tuple[Response, int]:
    qr_format = SetupQuerySchema().load(request.args)["format"]
    return no_store(SetupSchema().dump(services.begin_setup(get_jwt()["sub"], qr_format=qr_format)))


@bp.post("/enable")
@jwt_required(fresh=True)
def enable() -> tuple[Response, int]:
    codes = services.enable(get_jwt()["sub"], load(CodeSchema())["code"])
    return no_store(BackupCodesSchema().dump({"backup_codes": codes}))


@bp.post("/disable")
@jwt_required()
def disable() -> tuple[Response, int]:
    data, claims = load(DisableSchema()), get_jwt()
    services.disable(
        claims["sub"], claims["sid"], data["password"], data["code"], fresh=bool(claims["fresh"])
    )
    return no_store({"message": "Two-factor authentication is disabled."})


@bp.post("/backup-codes")
@jwt_required()
def backup_codes() -> tuple[Response, int]:
    codes = services.regenerate_backup_codes(get_jwt()["sub"], load(CodeSchema())["code"])
    return no_store(BackupCodesSchema().dump({"backup_codes": codes}))


@bp.post("/verify")
def verify() -> tuple[Response, int]:
    data = load(VerifySchema())
    return tokens(services.verify(data["mfa_token"], data["code"], client_info()))
