"""Pure OAuth helpers: claim parsing, GitHub's email choice, Apple's name, redirects, schemas."""

from __future__ import annotations

import hashlib

import pytest
from marshmallow import ValidationError

from auth_microservice_app.oauth.flows import client_redirect
from auth_microservice_app.oauth.providers.apple import name_from_user_field
from auth_microservice_app.oauth.providers.base import claim_is_true
from auth_microservice_app.oauth.providers.github import primary_verified_email
from auth_microservice_app.oauth.schemas import NativeTokenSchema
from auth_microservice_app.oauth.store import storage_key

VERIFIER = "v" * 43


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), ("true", True), ("TRUE", True), (False, False), ("false", False),
     (None, False), (1, False), ("yes", False)],
)  # fmt: skip
def test_claim_is_true(value, expected):
    assert claim_is_true(value) is expected


@pytest.mark.parametrize(
    ("emails", "expected"),
    [
        ([{"email": "a@x.io", "primary": True, "verified": True}], "a@x.io"),
        (
            [
                {"email": "b@x.io", "primary": False, "verified": True},
                {"email": "a@x.io", "primary": True, "verified": True},
            ],
            "a@x.io",
        ),
        ([{"email": "a@x.io", "primary": True, "verified": False}], None),
        ([{"email": "b@x.io", "primary": False, "verified": True}], None),
        ([{"email": "a@x.io", "primary": "true", "verified": "true"}], None),
        ([{"primary": True, "verified": True}], None),
        ([], None),
        ({"message": "Not Found"}, None),
        (None, None),
    ],
)
def test_primary_verified_email(emails, expected):
    assert primary_verified_email(emails) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"name": {"firstName": "Ada", "lastName": "Lovelace"}}', "Ada Lovelace"),
        ('{"name": {"firstName": " Ada "}, "email": "x@y.z"}', "Ada"),
        ('{"name": {"firstName": "", "lastName": ""}}', None),
        ('{"name": "Ada"}', None),
        ('{"email": "x@y.z"}', None),
        ("[1, 2]", None),
        ("{not json", None),
        ("", None),
        (None, None),
        ('{"name": {"firstName": "' + "A" * 300 + '"}}', "A" * 200),
    ],
)
def test_name_from_apple_user_field(raw, expected):
    assert name_from_user_field(raw) == expected


def test_client_redirect_adds_parameters_and_keeps_the_clients():
    url = client_redirect("https://app.example.com/cb?tenant=a", {"code": "c1"}, "s 1")
    assert url == "https://app.example.com/cb?tenant=a&code=c1&state=s+1"


def test_client_redirect_without_client_state():
    assert client_redirect("myapp://cb", {"error": "access_denied"}, None) == (
        "myapp://cb?error=access_denied"
    )


def test_storage_key_is_a_hash_of_the_secret():
    key = storage_key("code", "secret-value")
    assert key == "code:" + hashlib.sha256(b"secret-value").hexdigest()
    assert "secret-value" not in key
    assert storage_key("state", "secret-value") != key


@pytest.mark.parametrize(
    "body",
    [
        {"id_token": "t"},
        {"id_token": "t", "nonce": "n", "name": "Ada"},
        {"code": "c", "code_verifier": VERIFIER, "redirect_uri": "myapp://cb"},
        {"code": "c", "code_verifier": "A-._~" * 25 + "abc", "redirect_uri": "x"},
    ],
)
def test_native_token_schema_accepts_one_grant(body):
    assert NativeTokenSchema().load(body)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "_schema"),
        ({"code": "c"}, "code_verifier"),
        ({"code": "c", "code_verifier": VERIFIER}, "redirect_uri"),
        ({"id_token": "t", "code": "c"}, "code"),
        ({"code": "c", "code_verifier": "v" * 42, "redirect_uri": "x"}, "code_verifier"),
        ({"code": "c", "code_verifier": "v" * 129, "redirect_uri": "x"}, "code_verifier"),
        ({"code": "c", "code_verifier": "v" * 42 + "+", "redirect_uri": "x"}, "code_verifier"),
        ({"id_token": "t", "unexpected": 1}, "unexpected"),
        ({"id_token": "t\x00"}, "id_token"),
    ],
)
def test_native_token_schema_refuses(body, field):
    with pytest.raises(ValidationError) as caught:
        NativeTokenSchema().load(body)
    assert field in caught.value.messages
