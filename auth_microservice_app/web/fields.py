"""Marshmallow fields that refuse hostile input before any database or hash work."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError, fields

from ..utils.addresses import MAX_EMAIL_LENGTH, normalize_email


class SafeString(fields.String):
    """A bounded string with no NUL characters and no lone surrogates (both break PostgreSQL)."""

    def __init__(self, *, max_length: int, min_length: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length
        self.min_length = min_length

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > self.max_length:
            raise ValidationError(f"Longer than maximum length {self.max_length}.")
        if len(text) < self.min_length:
            raise ValidationError(
                "Must not be empty." if self.min_length == 1 else f"Shorter than {self.min_length}."
            )
        if "\x00" in text:
            raise ValidationError("Must not contain null characters.")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("Must be valid unicode.") from None
        return text


class Email(SafeString):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=MAX_EMAIL_LENGTH, min_length=1, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        try:
            return normalize_email(super()._deserialize(value, attr, data, **kwargs))
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class UTCTime(fields.Field):
    """``2026-12-01T10:00:00Z``: ISO-8601, UTC, whole seconds."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        assert isinstance(value, datetime)  # noqa: S101 - the models only hold datetimes
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
