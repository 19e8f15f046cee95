"""Setup, enable, status, backup-code regeneration and disable through the HTTP API."""

from __future__ import annotations

import base64
import re
from urllib.parse import parse_qs, unquote, urlparse

import pyotp
import pytest

from tests.conftest import PASSWORD, AuthActions

from .conftest import BASE, ME, WRONG_CODE, assert_error

pytestmark = pytest.mark.integration
CODE_SHAPE = re.compile(r"^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$")


def test_every_endpoint_but_verify_needs_an_access_token(client):
    assert_error(client.get(BASE + "/status"), 401, "authorization_required")
    for path in ("/setup", "/enable", "/disable", "/backup-codes"):
        assert_error(client.post(BASE + path, json={}), 401, "authorization_required")


def test_setup_returns_a_160_bit_secret_and_an_otpauth_uri(tfa, auth):
    tokens = auth.signup_and_login(verified=True)
    response = tfa.post("/setup", tokens["access_token"])
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert set(body) == {"secret", "otpauth_uri", "qr_code"}
    secret = body["secret"]
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert len(base64.b32decode(secret)) * 8 == 160
    uri = urlparse(body["otpauth_uri"])
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert unquote(uri.path) == "/Auth Service:alice@example.com"
    query = parse_qs(uri.query)
    assert query["secret"] == [secret]
    assert query["issuer"] == ["Auth Service"]
    assert body["qr_code"].startswith("data:image/png;base64,")


@pytest.mark.config(TOTP_ISSUER="Example Corp")
def test_issuer_comes_from_configuration(configured_client):
    client = configured_client
    tokens = AuthActions(client).signup_and_login(verified=True)
    response = client.post(BASE + "/setup", headers=AuthActions.bearer(tokens["access_token"]))
    assert "issuer=Example%20Corp" in response.json["otpauth_uri"]
    assert unquote(urlparse(response.json["otpauth_uri"]).path).startswith("/Example Corp:")


def test_setup_is_pending_until_enabled(tfa, auth, client):
    access = auth.signup_and_login(verified=True)["access_token"]
    tfa.setup(access)
    assert tfa.status(access) == {"enabled": False, "backup_codes_remaining": 0}
    assert client.get(ME, headers=auth.bearer(access)).json["user"]["two_factor_enabled"] is False
    login = client.post(
        "/api/v1/auth/login", json={"email": "alice@example.com", "password": PASSWORD}
    )
    assert "access_token" in login.json  # a pending secret is not a second factor


def test_setup_again_replaces_the_pending_secret(tfa, auth):
    access = auth.signup_and_login(verified=True)["access_token"]
    old = tfa.setup(access)["secret"]
    new = tfa.setup(access)["secret"]
    assert old != new
    assert_error(tfa.post("/enable", access, json={"code": tfa.now(old)}), 401, "invalid_mfa_code")
    assert tfa.status(access)["enabled"] is False
    assert tfa.post("/enable", access, json={"code": tfa.now(new)}).status_code == 200


def test_setup_when_enabled_is_a_conflict(tfa):
    enrolled = tfa.enroll()
    assert_error(tfa.post("/setup", enrolled.access_token), 409, "conflict")
    # and the enrolled secret is untouched
    assert tfa.verify(tfa.challenge(), tfa.next_code(enrolled.secret)).status_code == 200


def test_setup_with_an_unknown_qr_format_is_refused(tfa, auth):
    access = auth.signup_and_login(verified=True)["access_token"]
    response = tfa.post("/setup?format=gif", access)
    assert_error(response, 422, "validation_error")
    assert "format" in response.json["error"]["details"]


def test_enable_with_a_wrong_code_leaves_2fa_off(tfa, auth, client):
    access = auth.signup_and_login(verified=True)["access_token"]
    secret = tfa.safe_secret(access)
    assert_error(tfa.post("/enable", access, json={"code": WRONG_CODE}), 401, "invalid_mfa_code")
    assert_error(tfa.post("/enable", access, json={"code": "abcd-efgh"}), 401, "invalid_mfa_code")
    assert tfa.status(access) == {"enabled": False, "backup_codes_remaining": 0}
    assert client.get(ME, headers=auth.bearer(access)).json["user"]["two_factor_enabled"] is False
    # the right code still works afterwards
    assert tfa.post("/enable", access, json={"code": tfa.now(secret)}).status_code == 200


def test_enable_without_setup_or_twice_is_a_conflict(tfa, auth):
    access = auth.signup_and_login(verified=True)["access_token"]
    assert_error(tfa.post("/enable", access, json={"code": "123456"}), 409, "conflict")
    enrolled = tfa.enroll("bob@example.com")
    again = tfa.post(
        "/enable", enrolled.access_token, json={"code": tfa.next_code(enrolled.secret)}
    )
    assert_error(again, 409, "conflict")


def test_enable_returns_ten_distinct_human_friendly_backup_codes(tfa):
    codes = tfa.enroll().backup_codes
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert all(CODE_SHAPE.match(code) for code in codes), codes


def test_enable_sends_the_two_factor_enabled_notice(tfa, caplog):
    caplog.set_level("INFO", logger="auth_microservice_app.security")
    tfa.enroll()
    notices = [r for r in caplog.records if r.getMessage() == "notice_two_factor_enabled"]
    assert len(notices) == 1


def test_status_counts_remaining_backup_codes(tfa):
    enrolled = tfa.enroll()
    assert tfa.status(enrolled.access_token) == {"enabled": True, "backup_codes_remaining": 10}
    for used, code in enumerate(enrolled.backup_codes[:3], start=1):
        assert tfa.verify(tfa.challenge(), code).status_code == 200
        assert tfa.status(enrolled.access_token)["backup_codes_remaining"] == 10 - used


def test_regenerating_backup_codes_voids_the_old_ones(tfa):
    enrolled = tfa.enroll()
    assert tfa.verify(tfa.challenge(), enrolled.backup_codes[0]).status_code == 200
    response = tfa.post(
        "/backup-codes", enrolled.access_token, json={"code": tfa.next_code(enrolled.secret)}
    )
    assert response.status_code == 200, response.json
    assert response.headers["Cache-Control"] == "no-store"
    new_codes = response.json["backup_codes"]
    assert len(new_codes) == 10
    assert not set(new_codes) & set(enrolled.backup_codes)
    assert tfa.status(enrolled.access_token)["backup_codes_remaining"] == 10
    for old in enrolled.backup_codes[1:3]:
        assert_error(tfa.verify(tfa.challenge(), old), 401, "invalid_mfa_code")
    assert tfa.verify(tfa.challenge(), new_codes[0]).status_code == 200


def test_regenerating_backup_codes_accepts_a_backup_code_and_spends_it(tfa):
    enrolled = tfa.enroll()
    code = enrolled.backup_codes[0]
    response = tfa.post("/backup-codes", enrolled.access_token, json={"code": code})
    assert response.status_code == 200
    again = tfa.post("/backup-codes", enrolled.access_token, json={"code": code})
    assert_error(again, 401, "invalid_mfa_code")


def test_regenerating_backup_codes_needs_a_valid_code(tfa):
    enrolled = tfa.enroll()
    wrong = tfa.post("/backup-codes", enrolled.access_token, json={"code": WRONG_CODE})
    assert_error(wrong, 401, "invalid_mfa_code")
    assert tfa.verify(tfa.challenge(), enrolled.backup_codes[0]).status_code == 200


def test_regenerating_backup_codes_without_2fa_is_a_conflict(tfa, auth):
    access = auth.signup_and_login(verified=True)["access_token"]
    assert_error(tfa.post("/backup-codes", access, json={"code": "123456"}), 409, "conflict")


# --- disable ---------------------------------------------------------------------------------


def test_disable_needs_the_password_and_a_code(tfa, client, auth):
    enrolled = tfa.enroll()
    access = enrolled.access_token
    code = tfa.next_code(enrolled.secret)
    missing = tfa.post("/disable", access, json={"code": code})
    assert_error(missing, 422, "validation_error")
    assert "password" in missing.json["error"]["details"]
    missing = tfa.post("/disable", access, json={"password": PASSWORD})
    assert_error(missing, 422, "validation_error")
    wrong_password = tfa.post("/disable", access, json={"password": "nope nope", "code": code})
    assert_error(wrong_password, 401, "invalid_credentials")
    wrong_code = tfa.post("/disable", access, json={"password": PASSWORD, "code": WRONG_CODE})
    assert_error(wrong_code, 401, "invalid_mfa_code")
    assert tfa.status(access)["enabled"] is True
    # the code was not spent by the refused attempts
    done = tfa.post("/disable", access, json={"password": PASSWORD, "code": code})
    assert done.status_code == 200, done.json
    assert tfa.status(access) == {"enabled": False, "backup_codes_remaining": 0}
    assert client.get(ME, headers=auth.bearer(access)).json["user"]["two_factor_enabled"] is False
    login = client.post("/api/v1/auth/login", json={"email": enrolled.email, "password": PASSWORD})
    assert "access_token" in login.json


def test_disable_with_a_backup_code(tfa):
    enrolled = tfa.enroll()
    response = tfa.post(
        "/disable",
        enrolled.access_token,
        json={"password": PASSWORD, "code": enrolled.backup_codes[4].upper()},
    )
    assert response.status_code == 200, response.json
    assert tfa.status(enrolled.access_token)["enabled"] is False


def test_disable_revokes_other_sessions_and_keeps_this_one(tfa, client, auth):
    enrolled = tfa.enroll()
    other = tfa.verify(tfa.challenge(), tfa.next_code(enrolled.secret)).json
    response = tfa.post(
        "/disable",
        enrolled.access_token,
        json={"password": PASSWORD, "code": tfa.next_code(enrolled.secret)},
    )
    assert response.status_code == 200
    assert client.get(ME, headers=auth.bearer(enrolled.access_token)).status_code == 200
    assert_error(client.get(ME, headers=auth.bearer(other["access_token"])), 401, "token_revoked")
    refresh = client.post("/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert_error(refresh, 401, "token_revoked")
    mine = client.post("/api/v1/auth/refresh", json={"refresh_token": enrolled.refresh_token})
    assert mine.status_code == 200


def test_disable_sends_the_two_factor_disabled_notice(tfa, caplog):
    enrolled = tfa.enroll()
    caplog.set_level("INFO", logger="auth_microservice_app.security")
    tfa.post(
        "/disable",
        enrolled.access_token,
        json={"password": PASSWORD, "code": tfa.next_code(enrolled.secret)},
    )
    notices = [r for r in caplog.records if r.getMessage() == "notice_two_factor_disabled"]
    assert len(notices) == 1


def test_disable_when_not_enabled_is_a_conflict(tfa, auth):
    access = auth.signup_and_login(verified=True)["access_token"]
    response = tfa.post("/disable", access, json={"password": PASSWORD, "code": "123456"})
    assert_error(response, 409, "conflict")


def test_after_disable_old_backup_codes_and_secret_are_gone_and_setup_starts_over(tfa):
    enrolled = tfa.enroll()
    tfa.post(
        "/disable",
        enrolled.access_token,
        json={"password": PASSWORD, "code": tfa.next_code(enrolled.secret)},
    )
    secret = tfa.setup(enrolled.access_token)["secret"]
    assert secret != enrolled.secret
    enabled = tfa.post("/enable", enrolled.access_token, json={"code": tfa.next_code(secret)})
    assert enabled.status_code == 200
    assert_error(tfa.verify(tfa.challenge(), enrolled.backup_codes[0]), 401, "invalid_mfa_code")
    assert tfa.status(enrolled.access_token)["backup_codes_remaining"] == 10


def test_totp_code_from_pyotp_default_settings_matches(tfa, auth):
    """An authenticator app uses SHA-1, 6 digits, 30 s: what pyotp does by default."""
    access = auth.signup_and_login(verified=True)["access_token"]
    setup = tfa.setup(access)
    parsed = pyotp.parse_uri(setup["otpauth_uri"])
    assert isinstance(parsed, pyotp.TOTP)
    assert tfa.post("/enable", access, json={"code": parsed.now()}).status_code == 200
