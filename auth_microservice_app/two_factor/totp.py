"""Pure helpers: TOTP secrets and codes (RFC 6238), otpauth URIs, QR codes, backup codes.

Nothing here touches the database, the request or the configuration.
"""

from __future__ import annotations

import base64
import hmac
import io
import secrets

import pyotp
import qrcode
import qrcode.constants
import qrcode.image.svg

#: 32 base32 characters: 160 bits, the HMAC-SHA1 key size RFC 4226 recommends.
SECRET_LENGTH = 32
DIGITS = 6
PERIOD = 30
#: Codes of the previous and next step are accepted too (clock drift, typing time).
VALID_WINDOW = 1

BACKUP_CODE_COUNT = 10
#: Crockford's base32 in lower case: no i, l, o, u; input i/l read as 1 and o as 0, so what a
#: person copies from paper always means one thing. 8 characters: 40 bits per code.
BACKUP_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
BACKUP_CODE_CHARS = 8
_CONFUSABLE = str.maketrans({"i": "1", "l": "1", "o": "0"})

QR_ERROR_CORRECTION = qrcode.constants.ERROR_CORRECT_M
QR_BOX_SIZE = 8
QR_BORDER = 4


def new_secret() -> str:
    return pyotp.random_base32(SECRET_LENGTH)


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    """``otpauth://totp/Issuer:account?secret=...&issuer=...`` for authenticator apps."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD).provisioning_uri(
        name=account, issuer_name=issuer
    )


def time_step(at: float) -> int:
    return int(at // PERIOD)


def code_at_step(secret: str, step: int) -> str:
    return str(pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD).generate_otp(step))


def normalize_totp_code(code: str) -> str | None:
    """The six digits of ``code`` (spaces allowed, as apps display ``123 456``), else None."""
    digits = code.replace(" ", "")
    return digits if len(digits) == DIGITS and digits.isascii() and digits.isdigit() else None


def matching_step(secret: str, code: str, *, at: float, window: int = VALID_WINDOW) -> int | None:
    """The time step whose code ``code`` is, within ``window`` steps of ``at``, else None.

    Every candidate is compared in constant time, and all of them always are, so the time taken
    does not tell which step (if any) matched.
    """
    digits = normalize_totp_code(code)
    if digits is None:
        return None
    current = time_step(at)
    found: int | None = None
    for step in range(current - window, current + window + 1):
        if hmac.compare_digest(code_at_step(secret, step), digits):
            found = step
    return found


def new_backup_codes(count: int = BACKUP_CODE_COUNT) -> list[str]:
    """``count`` distinct random codes shaped ``xxxx-xxxx``."""
    codes: set[str] = set()
    while len(codes) < count:
        raw = "".join(secrets.choice(BACKUP_ALPHABET) for _ in range(BACKUP_CODE_CHARS))
        codes.add(f"{raw[:4]}-{raw[4:]}")
    return sorted(codes)


def normalize_backup_code(code: str) -> str | None:
    """The canonical 8 characters of a backup code (case, dashes, spaces, i/l/o forgiven)."""
    raw = code.strip().lower().replace("-", "").replace(" ", "").translate(_CONFUSABLE)
    if len(raw) != BACKUP_CODE_CHARS or any(char not in BACKUP_ALPHABET for char in raw):
        return None
    return raw


def _qr(data: str, box_size: int = QR_BOX_SIZE) -> qrcode.QRCode:
    qr = qrcode.QRCode(error_correction=QR_ERROR_CORRECTION, box_size=box_size, border=QR_BORDER)
    qr.add_data(data)
    qr.make(fit=True)
    return qr


def qr_png_data_uri(data: str) -> str:
    buffer = io.BytesIO()
    _qr(data).make_image().save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def qr_svg_data_uri(data: str) -> str:
    # The SVG factory draws box_size / 10 mm per module: 10 makes one module one user unit.
    image = _qr(data, box_size=10).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    return "data:image/svg+xml;base64," + base64.b64encode(image.to_string()).decode("ascii")


QR_RENDERERS = {"png": qr_png_data_uri, "svg": qr_svg_data_uri}
