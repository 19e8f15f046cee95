"""Service clients: creation, secrets and their rotation, lookup for the OAuth 2.0 endpoints.

A client secret is 256 random bits shown once; only its SHA-256 digest is stored, compared in
constant time. A rotation keeps the previous secret valid for ``CLIENT_SECRET_ROTATION_OVERLAP``
seconds, so a fleet can roll the new one out without a gap.

The token and introspection endpoints look clients up on every call: :func:`find_usable`
keeps what it read for ``SERVICE_CLIENT_CACHE_SECONDS`` per process, so the hot path of
introspection asks the database nothing (a disabled or deleted client keeps calling for at
most that long; the tokens it already holds are revoked at once, see :mod:`.revocation`).
"""

from __future__ import annotations

import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select

from .. import audit
from ..audit import Event
from ..errors import NotFound, ValidationFailed
from ..extensions import db
from ..models import ServiceClient
from ..models.base import utcnow
from ..utils.security import sha256_hex
from . import revocation

#: The scope that lets a client call the introspection endpoint.
INTROSPECT = "introspect"
#: RFC 6749 scope tokens, narrowed to what is safe in logs, URLs and shells.
SCOPE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9:._/-]{0,63}$")
CLIENT_ID_PREFIX = "svc_"
#: Past this, last_used_at is written again (at most one write a minute per client).
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class ClientRecord:
    """What the OAuth endpoints need of a client, detached from the database session."""

    client_id: str
    name: str
    scopes: frozenset[str]
    secret_hash: str
    previous_secret_hash: str | None
    previous_secret_expires_at: datetime | None
    last_used_at: datetime | None

    def check_secret(self, secret: str) -> bool:
        digest = sha256_hex(secret)
        if hmac.compare_digest(digest, self.secret_hash):
            return True
        return bool(
            self.previous_secret_hash
            and self.previous_secret_expires_at
            and self.previous_secret_expires_at > utcnow()
            and hmac.compare_digest(digest, self.previous_secret_hash)
        )


def parse_scopes(scopes: list[str] | tuple[str, ...] | str) -> list[str]:
    """Sorted, unique scope tokens; a space-separated string is split.

    :raises ValidationFailed: a token that is not a lowercase slug (``orders:read``).
    """
    items = scopes.split() if isinstance(scopes, str) else list(scopes)
    bad = [item for item in items if not SCOPE_PATTERN.fullmatch(item)]
    if bad:
        raise ValidationFailed(
            "Scopes are lowercase slugs: letters, digits and : . _ / - (at most 64).",
            details={"scope": [f"Not a valid scope: {item[:64]!r}" for item in bad]},
        )
    return sorted(set(items))


def _new_secret() -> tuple[str, str]:
    secret = secrets.token_urlsafe(32)
    return secret, sha256_hex(secret)


def _actor(actor_id: str | None) -> dict[str, Any]:
    """The admin behind a change (API), for its security event; nothing from the CLI."""
    return {"actor_id": actor_id} if actor_id else {}


def create_client(
    name: str, scopes: list[str] | tuple[str, ...], *, actor_id: str | None = None
) -> tuple[ServiceClient, str]:
    """A new client and its secret (shown this once, never stored); ``actor_id``: the admin
    who asked (the security event names them)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationFailed("A client needs a name of 1 to 200 characters.")
    secret, digest = _new_secret()
    client = ServiceClient(
        client_id=CLIENT_ID_PREFIX + secrets.token_urlsafe(18),
        name=name,
        secret_hash=digest,
        scopes=parse_scopes(scopes),
    )
    db.session.add(client)
    db.session.commit()
    audit.record(
        Event.CLIENT_CREATED, client_id=client.client_id, scopes=client.scopes, **_actor(actor_id)
    )
    return client, secret


def list_clients() -> list[ServiceClient]:
    """Every client that is not deleted, oldest first."""
    query = (
        select(ServiceClient)
        .where(ServiceClient.deleted_at.is_(None))
        .order_by(ServiceClient.created_at)
    )
    return list(db.session.execute(query).scalars())


def get_client(client_id: str) -> ServiceClient:
    """:raises NotFound: no such client (or deleted)."""
    client = db.session.execute(
        select(ServiceClient).where(ServiceClient.client_id == client_id)
    ).scalar_one_or_none()
    if client is None or client.deleted_at is not None:
        raise NotFound("No such client.")
    return client


def rotate_secret(client_id: str) -> str:
    """A new secret; the current one stays valid for ``CLIENT_SECRET_ROTATION_OVERLAP`` s."""
    client = get_client(client_id)
    secret, digest = _new_secret()
    now = utcnow()
    overlap = int(current_app.config["CLIENT_SECRET_ROTATION_OVERLAP"])
    client.previous_secret_hash = client.secret_hash if overlap > 0 else None
    client.previous_secret_expires_at = now + timedelta(seconds=overlap) if overlap > 0 else None
    client.secret_hash = digest
    client.rotated_at = now
    db.session.commit()
    forget(client_id)
    audit.record(Event.CLIENT_SECRET_ROTATED, client_id=client_id, overlap_seconds=overlap)
    return secret


def set_disabled(client_id: str, disabled: bool) -> None:
    """Disable a client (every token it holds is revoked at once) or enable it again."""
    client = get_client(client_id)
    if disabled and client.disabled_at is None:
        client.disabled_at = client.tokens_revoked_at = utcnow()
        db.session.commit()
        revocation.publish(clients=[(client_id, client.tokens_revoked_at)])
    elif not disabled and client.disabled_at is not None:
        client.disabled_at = None  # the tokens it held before stay revoked
        db.session.commit()
    forget(client_id)


def delete_client(client_id: str, *, actor_id: str | None = None) -> None:
    """Delete a client: its tokens are revoked at once; a tombstone stays until they expire.

    :raises NotFound: no such client (or deleted already).
    """
    client = get_client(client_id)
    now = utcnow()
    client.deleted_at = client.tokens_revoked_at = now
    client.disabled_at = client.disabled_at or now
    db.session.commit()
    revocation.publish(clients=[(client_id, now)])
    forget(client_id)
    audit.record(Event.CLIENT_DELETED, client_id=client_id, **_actor(actor_id))


def purge_tombstones() -> int:
    """Remove deleted clients whose tokens can no longer be presented."""
    horizon = utcnow() - revocation.service_token_horizon()
    rows = db.session.execute(
        select(ServiceClient).where(ServiceClient.deleted_at < horizon)
    ).scalars()
    count = 0
    for row in rows:
        db.session.delete(row)
        count += 1
    db.session.commit()
    return count


# --- lookups for the OAuth endpoints, cached per process ---------------------------------------

_cache: dict[str, tuple[float, ClientRecord | None]] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 10_000


def forget(client_id: str | None = None) -> None:
    """Drop cached lookups (one client, or all): after a change, and between tests."""
    with _cache_lock:
        if client_id is None:
            _cache.clear()
        else:
            _cache.pop(client_id, None)


def find_usable(client_id: str) -> ClientRecord | None:
    """The client if it exists and is neither disabled nor deleted (cached a few seconds)."""
    if not client_id or len(client_id) > 64:
        return None
    ttl = float(current_app.config["SERVICE_CLIENT_CACHE_SECONDS"])
    now = time.monotonic()
    cached = _cache.get(client_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    row = db.session.execute(
        select(ServiceClient).where(ServiceClient.client_id == client_id)
    ).scalar_one_or_none()
    record = None
    if row is not None and row.is_usable:
        record = ClientRecord(
            client_id=row.client_id,
            name=row.name,
            scopes=frozenset(row.scopes),
            secret_hash=row.secret_hash,
            previous_secret_hash=row.previous_secret_hash,
            previous_secret_expires_at=row.previous_secret_expires_at,
            last_used_at=row.last_used_at,
        )
    if ttl > 0:
        with _cache_lock:
            if len(_cache) >= _CACHE_MAX:
                _cache.clear()  # unknown ids cost a query each; never unbounded memory
            _cache[client_id] = (now + ttl, record)
    return record


def touch(record: ClientRecord) -> None:
    """Note that the client was used (at most one write a minute)."""
    now = utcnow()
    if record.last_used_at is not None and now - record.last_used_at < LAST_USED_RESOLUTION:
        return
    db.session.execute(
        ServiceClient.__table__.update()
        .where(ServiceClient.client_id == record.client_id)
        .values(last_used_at=now)
    )
    db.session.commit()
    with _cache_lock:
        cached = _cache.get(record.client_id)
        if cached is not None and cached[1] is not None:
            refreshed = ClientRecord(**{**cached[1].__dict__, "last_used_at": now})
            _cache[record.client_id] = (cached[0], refreshed)
