"""Finding 4: per-account limits key on the address as accounts are matched, not as typed.

The attack: accounts are found by the normalised address (email-validator, UTS-46, any letter
case), so ``victim@ｅxample.com`` (a full-width letter), ``victim@example。com`` (an ideographic
full stop) and ``VICTIM@Example.com`` all reach one mailbox. If each spelling got its own
budget, one mailbox would receive many more reset mails than ``RATELIMIT_EMAIL`` allows and the
per-account login limit would not hold.
"""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD

pytestmark = [
    pytest.mark.integration,
    pytest.mark.config(
        RATELIMIT_ENABLED=True,
        RATELIMIT_EMAIL="3/hour",
        RATELIMIT_LOGIN="3/minute",
        RATELIMIT_DEFAULT="1000/minute",
        LOGIN_THROTTLE_ENABLED=False,
        TRUSTED_PROXIES=1,
    ),
]
API = "/api/v1/auth"
SPELLINGS = [
    "victim@example.com",
    "victim@ｅxample.com",
    "victim@example。com",
    "VICTIM@Example.COM",
    " Victim@EXAMPLE.com ",
    "victim@ＥＸＡＭＰＬＥ.com",
]


@pytest.fixture
def limited(configured_client, mailbox):
    """The module's configuration, its mail in ``mailbox``, one account registered."""
    client = configured_client
    response = client.post(f"{API}/register", json={"email": SPELLINGS[0], "password": PASSWORD})
    assert response.status_code == 201
    return client


def from_ip(n: int) -> dict[str, str]:
    return {"X-Forwarded-For": f"203.0.113.{n}"}  # a fresh per-IP budget for every request


def test_reset_mails_to_one_mailbox_stay_within_the_limit_whatever_the_spelling(limited, mailbox):
    answers = [
        limited.post(f"{API}/password/forgot", json={"email": email}, headers=from_ip(n))
        for n, email in enumerate(SPELLINGS)
    ]
    # a spent budget answers like an unknown address (202), and sends nothing
    assert [a.status_code for a in answers] == [202] * len(SPELLINGS)
    resets = [m for m in mailbox.to("victim@example.com") if "reset" in m["Subject"].lower()]
    assert len(resets) == 3


def test_per_account_login_limit_holds_across_spellings_and_ips(limited):
    answers = [
        limited.post(
            f"{API}/login", json={"email": email, "password": "wrong guess"}, headers=from_ip(n)
        )
        for n, email in enumerate(SPELLINGS)
    ]
    assert [a.status_code for a in answers] == [401, 401, 401, 429, 429, 429]


def test_an_address_that_does_not_normalise_spends_no_account_budget(limited):
    bad = ["not an address", "Not An Address ", "NOT AN ADDRESS"]
    answers = [
        limited.post(f"{API}/login", json={"email": email, "password": "x"}, headers=from_ip(n))
        for n, email in enumerate(bad * 2)
    ]
    assert [a.status_code for a in answers] == [422] * 6  # refused before any budget is spent
    # a name that is not a string is keyed on the client IP, and nothing crashes
    odd = limited.post(f"{API}/login", json={"email": ["x"]}, headers=from_ip(99))
    assert odd.status_code == 422
