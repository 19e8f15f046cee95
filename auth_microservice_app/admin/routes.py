"""HTTP layer of `/api/v1/admin`: parse, call the kernel, serialise. Who may call is checked
once for every route, in :mod:`.blueprint`."""

from __future__ import annotations

from flask import Response, request

from ..identity import accounts, clients, directory
from ..identity import sessions as session_rules
from ..web.auth import current_claims
from ..web.request_body import load
from ..web.responses import no_store
from .blueprint import bp
from .schemas import (
    AdminEventPageSchema,
    AdminEventsQuerySchema,
    AdminSessionPageSchema,
    AdminSessionsQuerySchema,
    AdminUserPageSchema,
    AdminUserResultSchema,
    ClientCreateSchema,
    ClientListSchema,
    NewClientSchema,
    UserPatchSchema,
    UsersQuerySchema,
)


def _actor() -> str:
    return str(current_claims()["sub"])


def _details(user_id: str) -> tuple[Response, int]:
    return no_store(AdminUserResultSchema().dump({"user": directory.user_details(user_id)}))


@bp.get("/users")
def list_users() -> tuple[Response, int]:
    query = UsersQuerySchema().load(request.args.to_dict())
    return no_store(AdminUserPageSchema().dump(directory.list_users(**query)))


@bp.get("/users/<user_id>")
def get_user(user_id: str) -> tuple[Response, int]:
    return _details(user_id)


@bp.patch("/users/<user_id>")
def update_user(user_id: str) -> tuple[Response, int]:
    changes = load(UserPatchSchema())
    accounts.update_user(_actor(), user_id, changes)
    return _details(user_id)


@bp.delete("/users/<user_id>")
def delete_user(user_id: str) -> tuple[str, int]:
    accounts.delete_user(_actor(), user_id)
    return "", 204


@bp.get("/users/<user_id>/sessions")
def list_sessions(user_id: str) -> tuple[Response, int]:
    query = AdminSessionsQuerySchema().load(request.args.to_dict())
    owner = str(directory.get_user(user_id).id)
    return no_store(AdminSessionPageSchema().dump(session_rules.list_sessions(owner, **query)))


@bp.delete("/users/<user_id>/sessions")
def revoke_sessions(user_id: str) -> tuple[str, int]:
    accounts.revoke_sessions(_actor(), user_id)
    return "", 204


@bp.post("/users/<user_id>/2fa/reset")
def reset_two_factor(user_id: str) -> tuple[str, int]:
    accounts.reset_two_factor(_actor(), user_id)
    return "", 204


@bp.get("/events")
def list_events() -> tuple[Response, int]:
    query = AdminEventsQuerySchema().load(request.args.to_dict())
    return no_store(AdminEventPageSchema().dump(directory.list_events(**query)))


@bp.get("/clients")
def list_clients() -> tuple[Response, int]:
    return no_store(ClientListSchema().dump({"items": clients.list_clients(), "next_cursor": None}))


@bp.post("/clients")
def create_client() -> tuple[Response, int]:
    data = load(ClientCreateSchema())
    client, secret = clients.create_client(data["name"], data["scopes"], actor_id=_actor())
    body = NewClientSchema().dump(client)
    body["client_secret"] = secret
    return no_store(body, 201)


@bp.delete("/clients/<client_id>")
def delete_client(client_id: str) -> tuple[str, int]:
    clients.delete_client(client_id, actor_id=_actor())
    return "", 204
