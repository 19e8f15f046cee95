"""A resource server protected by auth-service-client: what a team writes to trust our tokens.

    AUTH_ISSUER=https://auth.example.com AUTH_CLIENT_ID=... AUTH_CLIENT_SECRET=... \
        gunicorn --chdir examples/resource_server app:app

Tokens are verified offline (JWKS), then checked with the introspection endpoint (the client
needs the ``introspect`` scope) so that a sign-out counts within AUTH_INTROSPECTION_CACHE s.
"""

import os

from auth_service_client import ClientCredentials, Verifier
from auth_service_client.flask import TokenAuth
from flask import Flask, g

issuer = os.environ["AUTH_ISSUER"]
client = ClientCredentials(
    f"{issuer}/oauth2/token", os.environ["AUTH_CLIENT_ID"], os.environ["AUTH_CLIENT_SECRET"]
)
verifier = Verifier(
    issuer,
    os.environ.get("AUTH_AUDIENCE", "auth-service"),
    revocation="introspect",
    introspection_client=client,
    introspection_cache_seconds=float(os.environ.get("AUTH_INTROSPECTION_CACHE", "5")),
)
app = Flask(__name__)
auth = TokenAuth(app, verifier=verifier)


@app.get("/")
def index() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/profile")
@auth.require_auth()
def profile() -> dict[str, object]:
    return {"sub": g.auth.subject, "email": g.auth.get("email")}


@app.get("/orders")
@auth.require_auth(scopes=["orders:read"])
def orders() -> dict[str, object]:
    return {"orders": [], "for": g.auth.subject}
