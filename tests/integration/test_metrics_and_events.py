"""`/metrics` parses and its counters move on the right events; the security event log."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PASSWORD, make_app

pytestmark = pytest.mark.integration


def scrape(client, **headers) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metered(app, signing_key_pem):
    return make_app(signing_key_pem).test_client()  # a fresh registry: counts start at zero


def test_auth_counters_move_on_the_right_events(metered, auth):
    auth.client = metered
    tokens = auth.signup_and_login()
    metered.post(
        "/api/v1/auth/login", json={"email": "alice@example.com", "password": "wrong one here"}
    )
    refreshed = metered.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    ).json
    metered.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})  # reuse
    again = auth.login()
    metered.post("/api/v1/auth/logout", headers=auth.bearer(again["access_token"]))
    assert refreshed

    samples = scrape(metered)
    assert value(samples, "auth_registrations_total", via="password") == 1
    assert value(samples, "auth_logins_total", result="success") == 2
    assert value(samples, "auth_logins_total", result="invalid_credentials") == 1
    assert value(samples, "auth_token_refreshes_total", result="success") == 1
    assert value(samples, "auth_token_refreshes_total", result="reuse") == 1
    assert value(samples, "auth_refresh_token_reuse_detections_total") == 1
    assert value(samples, "auth_revocations_total", kind="session") >= 1
    assert value(samples, "auth_emails_total", status="queued") == 1
    assert value(samples, "auth_emails_total", status="sent") == 1
    assert value(samples, "auth_password_hash_duration_seconds_count", operation="hash") == 1
    assert value(samples, "auth_password_hash_duration_seconds_count", operation="verify") == 3
    requests = value(samples, "flask_http_request_total", method="POST", status="200")
    assert requests >= 4


def test_request_metrics_are_labelled_by_endpoint_not_by_path(metered, auth):
    auth.client = metered
    tokens = auth.signup_and_login()
    for n in range(3):
        metered.delete(
            f"/api/v1/auth/sessions/00000000-0000-0000-0000-00000000000{n}",
            headers=auth.bearer(tokens["access_token"]),
        )
    text = metered.get("/metrics").get_data(as_text=True)
    assert "00000000-0000-0000-0000" not in text
    assert 'path="/api/v1/auth/sessions/<session_id>"' in text or "auth.delete_session" in text


def test_no_email_or_user_id_ever_becomes_a_label(metered, auth):
    auth.client = metered
    user = auth.register("label-check@example.com")
    auth.login("label-check@example.com")
    text = metered.get("/metrics").get_data(as_text=True)
    assert "label-check" not in text
    assert user["id"] not in text


@pytest.mark.config(METRICS_TOKEN="scrape-secret")
def test_metrics_token_closes_the_endpoint(configured_client):
    client = configured_client
    denied = client.get("/metrics")
    assert denied.status_code == 401
    assert denied.json["error"]["code"] == "authorization_required"
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert scrape(client, Authorization="Bearer scrape-secret") is not None


def test_events_lists_the_callers_own_events_newest_first(auth, client):
    tokens = auth.signup_and_login("alice@example.com")
    client.post(
        "/api/v1/auth/login", json={"email": "alice@example.com", "password": "not the password"}
    )
    auth.signup_and_login("bob@example.com")
    response = client.get(
        "/api/v1/auth/events",
        headers={**auth.bearer(tokens["access_token"]), "X-Request-ID": "ev-1"},
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    names = [event["event"] for event in body["events"]]
    assert names[:2] == ["login_failed", "login_succeeded"]
    assert "user_registered" in names
    assert body["total"] == len(names)
    failed = body["events"][0]
    assert failed["data"] == {"reason": "invalid_credentials"}
    assert failed["ip"] == "127.0.0.1"
    assert failed["request_id"]
    assert failed["occurred_at"].endswith("Z")
    success = body["events"][1]
    assert success["session_id"] and success["user_agent"] == "pytest-browser"
    assert all("bob" not in str(event) for event in body["events"])
    assert PASSWORD not in response.get_data(as_text=True)


def test_events_are_paginated(auth, client):
    tokens = auth.signup_and_login()
    for _ in range(4):
        auth.login()
    headers = auth.bearer(tokens["access_token"])
    first = client.get("/api/v1/auth/events?per_page=2&page=1", headers=headers).json
    second = client.get("/api/v1/auth/events?per_page=2&page=2", headers=headers).json
    assert len(first["events"]) == len(second["events"]) == 2
    assert {e["id"] for e in first["events"]}.isdisjoint({e["id"] for e in second["events"]})
    assert first["total"] >= 6
    assert client.get("/api/v1/auth/events?per_page=1000", headers=headers).status_code == 422


def test_app_starts_when_the_multiprocess_directory_does_not_exist_yet(
    signing_key_pem, tmp_path, monkeypatch
):
    """A migration job or CLI command shares the server's environment but not gunicorn's hook."""
    missing = tmp_path / "not-yet" / "prometheus"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(missing))
    app = make_app(signing_key_pem)
    assert missing.is_dir()
    assert app.test_client().get("/health/live").status_code == 200
