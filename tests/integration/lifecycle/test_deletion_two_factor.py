"""DELETE /me with 2FA on: a code is required, a wrong or replayed one refused."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.integration.two_factor.conftest import WRONG_CODE, TwoFactor, clock  # noqa: F401

from .helpers import ME

pytestmark = pytest.mark.integration


@pytest.fixture
def tfa(client, auth, clock):  # noqa: F811 - the two_factor tests' frozen clock
    return TwoFactor(client, auth, clock)


def test_deletion_with_two_factor_needs_a_valid_code(client, auth, tfa):
    enrolled = tfa.enroll()
    headers = auth.bearer(enrolled.access_token)
    missing = client.delete(ME, json={"password": PASSWORD}, headers=headers)
    assert missing.status_code == 422 and "code" in missing.json["error"]["details"]
    wrong = client.delete(ME, json={"password": PASSWORD, "code": WRONG_CODE}, headers=headers)
    assert wrong.status_code == 401 and wrong.json["error"]["code"] == "invalid_mfa_code"
    code = tfa.next_code(enrolled.secret)
    assert client.get(ME, headers=headers).status_code == 200
    done = client.delete(ME, json={"password": PASSWORD, "code": code}, headers=headers)
    assert done.status_code == 204, done.json


def test_a_backup_code_also_allows_deletion(client, auth, tfa):
    enrolled = tfa.enroll()
    body = {"password": PASSWORD, "code": enrolled.backup_codes[0]}
    response = client.delete(ME, json=body, headers=auth.bearer(enrolled.access_token))
    assert response.status_code == 204, response.json
