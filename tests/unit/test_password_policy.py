from __future__ import annotations

import pytest

from auth_microservice_app.identity.passwords import (
    PolicyViolation,
    check_password_policy,
    common_passwords,
    normalize_password,
)
from auth_microservice_app.utils.addresses import normalize_email


def check(password: str, email: str = "alice@example.com") -> None:
    check_password_policy(password, email=email, min_length=8, max_length=128)


def test_bundled_list_has_at_least_ten_thousand_entries():
    assert len(common_passwords()) >= 10_000
    assert "password" in common_passwords()


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "too_short"),
        ("x" * 129, "too_long"),
        ("password1", "common"),
        ("QWERTYUIOP", "common"),
        ("my-alice-password-99", "contains_email"),
        ("ALICE-in-wonderland-42", "contains_email"),
    ],
)
def test_weak_passwords_are_refused_with_a_reason(password, reason):
    with pytest.raises(PolicyViolation) as info:
        check(password)
    assert info.value.reason == reason


def test_no_composition_rules_lowercase_passphrase_is_fine():
    check("correct horse battery staple")


def test_length_counts_code_points_not_bytes():
    check("ééééééééé")  # 9 code points, 18 UTF-8 bytes
    with pytest.raises(PolicyViolation):
        check("éééé" * 33)  # 132 code points


def test_128_characters_are_accepted_and_nfkc_applies_before_counting():
    check("a1b2c3d4" * 16)
    # U+FB01 (the "fi" ligature) becomes two letters under NFKC
    assert normalize_password("\ufb01") == "fi"


def test_short_local_parts_do_not_block_every_password():
    check("correct horse battery staple", email="al@example.com")


def test_email_is_trimmed_and_domain_lowercased():
    assert normalize_email("  Alice@EXAMPLE.com ") == "Alice@example.com"


@pytest.mark.parametrize("bad", ["", "no-at-sign", "a@", "@b.co", "a@b@c.co", "x" * 330 + "@b.co"])
def test_invalid_emails_are_refused(bad):
    with pytest.raises(ValueError, match="valid email"):
        normalize_email(bad)
