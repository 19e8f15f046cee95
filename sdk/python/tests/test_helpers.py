"""The small parsers: Cache-Control max-age, client_secret_basic, the bearer header."""

from __future__ import annotations

import base64

import pytest
from auth_service_client._authz import bearer_token
from auth_service_client._http import basic_auth, max_age


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, 300),
        ("", 300),
        ("public, max-age=120", 120),
        ("max-age=60, public", 60),
        ('max-age="45"', 45),
        ("MAX-AGE=10", 10),
        ("public", 300),
        ("no-cache", 0),
        ("public, max-age=600, no-store", 0),
        ("s-maxage=5", 300),
    ],
)
def test_max_age(header: str | None, expected: int) -> None:
    assert max_age(header, 300) == expected


def test_basic_auth_form_encodes_id_and_secret() -> None:
    value = basic_auth("my client", "p:ss/wörd")
    assert value.startswith("Basic ")
    assert base64.b64decode(value[6:]).decode() == "my%20client:p%3Ass%2Fw%C3%B6rd"


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("Basic abc", None),
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc", "abc"),
        ("  Bearer  abc  ", "abc"),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token
