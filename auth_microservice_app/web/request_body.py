"""Reading JSON bodies safely: media type, malformed JSON, nesting depth, then a schema."""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, request
from marshmallow import Schema

from ..errors import AppError, BadRequest


class UnsupportedMediaType(AppError):
    status_code, code, message = 415, "unsupported_media_type", "Send the body as application/json."


def _depth(value: Any, limit: int) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        if isinstance(node, dict):
            stack.extend((child, level + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, level + 1) for child in node)
    return deepest


def json_body() -> dict[str, Any]:
    """The request's JSON object; an empty body reads as ``{}``.

    :raises UnsupportedMediaType: a body that is not ``application/json``.
    :raises BadRequest: malformed JSON, a top level that is not an object, or nesting too deep.
    """
    raw = request.get_data(cache=True)
    if not raw:
        return {}
    if not request.is_json:
        raise UnsupportedMediaType()
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadRequest("The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object.")
    if _depth(data, current_app.config["JSON_MAX_DEPTH"]) > current_app.config["JSON_MAX_DEPTH"]:
        raise BadRequest("The body is nested too deeply.")
    return data


def load(schema: Schema) -> dict[str, Any]:
    """Parse the body with ``schema`` (marshmallow raises 422 ``validation_error``)."""
    result: dict[str, Any] = schema.load(json_body())
    return result
