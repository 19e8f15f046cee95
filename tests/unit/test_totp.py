"""Pure two-factor helpers: secrets, the ±1 step window, backup codes, QR data URIs."""

from __future__ import annotations

import base64
import re

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from auth_microservice_app.two_factor import totp

T0 = 1_800_000_000  # a step boundary: 1_800_000_000 / 30 is whole
#: A fixed secret keeps the window tests deterministic (its codes around T0 are all distinct).
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def test_fixed_secret_has_distinct_codes_around_t0():
    codes = [pyotp.TOTP(SECRET).at(T0 + step * 30) for step in range(-3, 4)]
    assert len(set(codes)) == len(codes)


def test_secret_has_160_bits_and_is_random():
    secrets_ = {totp.new_secret() for _ in range(50)}
    assert len(secrets_) == 50
    for secret in secrets_:
        assert re.fullmatch(r"[A-Z2-7]{32}", secret)
        assert len(base64.b32decode(secret)) == 20


def test_provisioning_uri_names_issuer_and_account():
    uri = totp.provisioning_uri(
        "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", account="ada@example.com", issuer="Acme Co"
    )
    assert uri == (
        "otpauth://totp/Acme%20Co:ada%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Acme%20Co"
    )
    parsed = pyotp.parse_uri(uri)
    assert parsed.secret == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    assert parsed.issuer == "Acme Co"


def test_code_matches_rfc_6238_reference_value():
    # RFC 6238 appendix B, SHA-1 seed "12345678901234567890", T = 59 s -> 94287082 (8 digits)
    secret = base64.b32encode(b"12345678901234567890").decode()
    assert totp.code_at_step(secret, 59 // 30) == "287082"


@pytest.mark.parametrize(("offset", "expected"), [(-2, None), (-1, -1), (0, 0), (1, 1), (2, None)])
def test_matching_step_accepts_one_step_either_side(offset, expected):
    secret = SECRET
    at = T0 + 12
    code = pyotp.TOTP(secret).at(at + offset * 30)
    found = totp.matching_step(secret, code, at=at)
    assert found == (None if expected is None else T0 // 30 + expected)


def test_matching_step_follows_step_boundaries():
    secret = SECRET
    last_second = T0 + 29
    assert totp.matching_step(secret, pyotp.TOTP(secret).at(T0 + 30), at=last_second) is not None
    assert totp.matching_step(secret, pyotp.TOTP(secret).at(T0 + 60), at=last_second) is None
    assert totp.matching_step(secret, pyotp.TOTP(secret).at(T0 - 30), at=T0) is not None
    assert totp.matching_step(secret, pyotp.TOTP(secret).at(T0 - 31), at=T0) is None


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12a456", "١٢٣٤٥٦", "abcd-efgh"])
def test_malformed_totp_codes_never_match(code):
    assert totp.matching_step(SECRET, code, at=T0) is None


def test_spaces_inside_a_totp_code_are_allowed():
    secret = SECRET
    code = pyotp.TOTP(secret).at(T0)
    assert totp.matching_step(secret, f"{code[:3]} {code[3:]}", at=T0) == T0 // 30


def test_backup_codes_are_ten_distinct_xxxx_xxxx_without_confusables():
    codes = totp.new_backup_codes()
    assert len(codes) == len(set(codes)) == 10
    for code in codes:
        assert re.fullmatch(r"[0-9a-z]{4}-[0-9a-z]{4}", code)
        assert not set(code) & set("ilou")
    assert len(totp.BACKUP_ALPHABET) == 32  # 5 bits a character, 40 bits a code
    assert len(set(totp.BACKUP_ALPHABET)) == 32


def test_backup_codes_use_the_whole_alphabet():
    seen = set("".join(totp.new_backup_codes(200)).replace("-", ""))
    assert seen == set(totp.BACKUP_ALPHABET)


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("abcd-ef23", "abcdef23"),
        ("ABCD-EF23", "abcdef23"),
        ("abcdef23", "abcdef23"),
        (" ab cd-ef 23 ", "abcdef23"),
        ("oOiI-lL01", "00111101"),  # confusables read as the digits they look like
    ],
)
def test_backup_code_normalisation(typed, canonical):
    assert totp.normalize_backup_code(typed) == canonical


@pytest.mark.parametrize(
    "typed", ["", "abcd-ef2", "abcd-ef234", "abcd-efu3", "abcd_ef23", "123456"]
)
def test_backup_code_normalisation_refuses_other_shapes(typed):
    assert totp.normalize_backup_code(typed) is None


@given(st.lists(st.sampled_from(totp.BACKUP_ALPHABET), min_size=8, max_size=8))
def test_every_generated_shape_normalises_to_itself(chars):
    raw = "".join(chars)
    assert totp.normalize_backup_code(f"{raw[:4]}-{raw[4:]}".upper()) == raw


@given(st.text(max_size=40))
def test_normalisation_never_crashes_and_only_yields_canonical_codes(text):
    result = totp.normalize_backup_code(text)
    assert result is None or (len(result) == 8 and set(result) <= set(totp.BACKUP_ALPHABET))


def test_png_and_svg_data_uris():
    png = totp.qr_png_data_uri("otpauth://totp/x?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    assert png.startswith("data:image/png;base64,")
    assert base64.b64decode(png.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    svg = totp.qr_svg_data_uri("otpauth://totp/x?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    assert svg.startswith("data:image/svg+xml;base64,")
    assert base64.b64decode(svg.split(",", 1)[1]).startswith(b"<svg")
