"""Small HTTP helpers shared by the verifier and the client-credentials client."""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import quote

import requests

#: Seconds to wait for the issuer: (connect, read).
DEFAULT_TIMEOUT = (3.05, 5.0)

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)


def new_session() -> requests.Session:
    """A session of our own, with a recognisable User-Agent."""
    session = requests.Session()
    session.headers["User-Agent"] = "auth-service-client/0.1"
    return session


def max_age(cache_control: str | None, default: int) -> int:
    """Seconds a response may be reused: ``max-age``; 0 for ``no-store``/``no-cache``."""
    if not cache_control:
        return default
    directives = {part.strip().split("=", 1)[0].lower() for part in cache_control.split(",")}
    if directives & {"no-store", "no-cache"}:
        return 0
    match = _MAX_AGE.search(cache_control)
    return int(match.group(1)) if match else default


def basic_auth(client_id: str, client_secret: str) -> str:
    """An ``Authorization`` value for client_secret_basic (RFC 6749 §2.3.1 form-encodes both)."""
    raw = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def json_object(response: requests.Response) -> dict[str, Any] | None:
    """The response body as a JSON object, or None when it is not one."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
