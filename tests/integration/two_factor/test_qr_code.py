"""The QR code from /setup is a real image of the otpauth URI (PNG by default, SVG on request).

No QR decoder is installed, so each test regenerates the module matrix of the returned URI with
the ``qrcode`` library (independently of the app's helper: every error-correction level is
tried) and compares it module by module with what the image shows. A one-character change in
the URI gives a different matrix, so a match proves the image encodes exactly that URI.
"""

from __future__ import annotations

import base64
import io
import re
import xml.etree.ElementTree as ET  # noqa: S405 - parsing our own response in a test

import pytest
import qrcode
import qrcode.constants
from PIL import Image

pytestmark = pytest.mark.integration
LEVELS = (
    qrcode.constants.ERROR_CORRECT_L,
    qrcode.constants.ERROR_CORRECT_M,
    qrcode.constants.ERROR_CORRECT_Q,
    qrcode.constants.ERROR_CORRECT_H,
)


def matrices(data: str) -> list[list[list[bool]]]:
    result = []
    for level in LEVELS:
        qr = qrcode.QRCode(error_correction=level, border=0)
        qr.add_data(data)
        qr.make(fit=True)
        result.append(qr.get_matrix())
    return result


def png_modules(png: bytes) -> tuple[list[list[bool]], int]:
    """The dark/light modules the PNG shows, and the quiet zone width in modules."""
    image = Image.open(io.BytesIO(png)).convert("L")
    width, height = image.size
    assert width == height
    dark = image.point(lambda value: 255 if value < 128 else 0)
    bbox = dark.getbbox()
    assert bbox is not None, "no dark pixel at all"
    left, top, right, bottom = bbox
    # version n has 17 + 4n modules; the finder patterns put dark modules in three corners
    for modules in range(21, 178, 4):
        box = (right - left) / modules
        if box == int(box) and (bottom - top) == right - left:
            break
    else:
        raise AssertionError("the image is not a square grid of QR modules")
    box = int(box)
    grid = [
        [
            image.getpixel((left + x * box + box // 2, top + y * box + box // 2)) < 128
            for x in range(modules)
        ]
        for y in range(modules)
    ]
    return grid, left // box


def svg_modules(svg: bytes) -> list[list[bool]]:
    root = ET.fromstring(svg)  # noqa: S314 - our own response
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    paths = root.findall("{http://www.w3.org/2000/svg}path")
    assert len(paths) == 1
    number = r"(\d+(?:\.\d+)?)"
    found = re.findall(rf"M{number},{number}H{number}", paths[0].get("d", ""))
    assert found
    corners = [(float(x), float(y)) for x, y, _ in found]
    module = float(found[0][2]) - float(found[0][0])  # each square is one module wide
    x0, y0 = min(x for x, _ in corners), min(y for _, y in corners)
    squares = {(round((x - x0) / module), round((y - y0) / module)) for x, y in corners}
    size = max(x for x, _ in squares) + 1
    return [[(x, y) in squares for x in range(size)] for y in range(size)]


def setup(tfa, auth, query: str = "") -> dict:
    access = auth.signup_and_login(verified=True)["access_token"]
    response = tfa.post("/setup" + query, access)
    assert response.status_code == 200, response.json
    return dict(response.json)


def altered(uri: str) -> str:
    secret = re.search(r"secret=([A-Z2-7]+)", uri).group(1)
    swapped = ("B" if secret[0] == "A" else "A") + secret[1:]
    assert swapped != secret
    return uri.replace(secret, swapped)


def test_qr_code_is_a_png_of_the_otpauth_uri(tfa, auth):
    body = setup(tfa, auth)
    prefix = "data:image/png;base64,"
    assert body["qr_code"].startswith(prefix)
    png = base64.b64decode(body["qr_code"][len(prefix) :], validate=True)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert 200 <= image.size[0] <= 1200
    assert image.size[0] == image.size[1]

    grid, quiet_zone = png_modules(png)
    assert quiet_zone >= 4  # scanners need four light modules around the symbol
    assert grid in matrices(body["otpauth_uri"])
    assert grid not in matrices(altered(body["otpauth_uri"]))


def test_qr_code_as_svg_on_request(tfa, auth):
    body = setup(tfa, auth, "?format=svg")
    prefix = "data:image/svg+xml;base64,"
    assert body["qr_code"].startswith(prefix)
    svg = base64.b64decode(body["qr_code"][len(prefix) :], validate=True)
    grid = svg_modules(svg)
    assert grid in matrices(body["otpauth_uri"])
    assert grid not in matrices(altered(body["otpauth_uri"]))


def test_png_is_the_default_and_can_be_asked_for(tfa, auth):
    body = setup(tfa, auth, "?format=png")
    assert body["qr_code"].startswith("data:image/png;base64,")
