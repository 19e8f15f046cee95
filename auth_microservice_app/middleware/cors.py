"""CORS for browser clients: only listed origins, credentials allowed, preflight cached."""

from __future__ import annotations

from flask import Flask
from flask_cors import CORS

ALLOWED_HEADERS = ["Authorization", "Content-Type", "X-Request-ID"]
EXPOSED_HEADERS = [
    "X-Request-ID",
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
]
METHODS = ["GET", "POST", "PATCH", "DELETE", "OPTIONS"]


def init_app(app: Flask) -> None:
    CORS(
        app,
        resources={r"/api/*": {}, r"/.well-known/*": {}},
        origins=app.config["CORS_ORIGINS"],
        supports_credentials=True,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        methods=METHODS,
        max_age=app.config["CORS_MAX_AGE"],
    )
