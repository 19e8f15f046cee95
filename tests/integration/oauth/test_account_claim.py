"""Finding 1 (issue 14), through a provider: a provider that vouches for the address is the
first proof of an unverified account's mailbox, and one that does not vouches for nothing."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select

from auth_microservice_app.extensions import db
from auth_microservice_app.models import OAuthAccount, User
from tests.integration.oauth.conftest import GoogleFlow, access_claims
from tests.squatter import Squatter

pytestmark = pytest.mark.integration


def users(app: Flask) -> int:
    with app.app_context():
        return int(db.session.execute(select(func.count()).select_from(User)).scalar_one())


def test_a_provider_that_vouches_for_the_address_hands_a_squatted_account_over_clean(
    google_flow: GoogleFlow, google_app: Flask
):
    squatter = Squatter(google_flow.client, google_app, "vera@example.com")
    squatter.attach_everything()

    pair = google_flow.sign_in("verified")  # the owner, whose Google vouches for vera@

    assert "access_token" in pair  # signed in, and no second factor of his in her way
    claims = access_claims(pair)
    assert claims["email"] == "vera@example.com" and claims["email_verified"] is True
    assert squatter.what_is_left() == {
        "provider_links": 1,  # hers: the Google identity she signed in with
        "two_factor": 0,
        "backup_codes": 0,
        "challenges": 0,
        "has_password": 0,
    }
    with google_app.app_context():
        providers = set(db.session.execute(select(OAuthAccount.provider)).scalars())
    assert providers == {"google"}  # his GitHub link is gone
    squatter.assert_locked_out()
    assert users(google_app) == 1


def test_a_provider_email_that_is_not_verified_creates_no_account(
    google_flow: GoogleFlow, google_app: Flask
):
    assert google_flow.client_redirect("unverified") == {"error": "oauth_email_unverified"}
    assert users(google_app) == 0
