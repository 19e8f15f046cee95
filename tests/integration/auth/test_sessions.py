"""No single user's sessions degrade the service: the listing is paged, open sessions are
capped per user, and the hourly purge deletes the sessions no token check needs any more."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta
from typing import Any

import jwt
import pytest
from flask import Flask
from sqlalchemy import select, update

from auth_microservice_app.extensions import db
from auth_microservice_app.identity import sessions as services
from auth_microservice_app.identity.revocation import access_token_horizon, rebuild_blocklist
from auth_microservice_app.models import User, UserSession
from auth_microservice_app.models.base import utcnow
from auth_microservice_app.tasks.maintenance import purge_expired
from auth_microservice_app.utils.redis_client import BLOCKLIST_WARM_KEY, REVOKED_SID_PREFIX
from tests.conftest import AuthActions

pytestmark = pytest.mark.integration
SESSIONS = "/api/v1/auth/sessions"
ME = "/api/v1/auth/me"
REFRESH = "/api/v1/auth/refresh"
#: API.md: {"sessions": [{"id","created_at","last_used_at","user_agent","ip","current"}]}
ITEM_FIELDS = {"id", "created_at", "last_used_at", "user_agent", "ip", "current"}


def listing(client, token: str, **params: Any) -> Any:
    return client.get(SESSIONS, query_string=params, headers=AuthActions.bearer(token))


def every_page(client, token: str, limit: int) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    while True:
        response = listing(client, token, limit=limit, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.json
        assert response.headers["Cache-Control"] == "no-store"
        assert set(response.json) == {"sessions", "next_cursor"}
        pages.append(response.json["sessions"])
        cursor = response.json["next_cursor"]
        if cursor is None:
            return pages
        assert len(response.json["sessions"]) == limit


def user_id(app: Flask, email: str = "alice@example.com") -> uuid.UUID:
    with app.app_context():
        return db.session.execute(select(User.id).where(User.email == email)).scalar_one()


def add_sessions(app: Flask, owner: uuid.UUID, count: int, **columns: Any) -> list[uuid.UUID]:
    """``count`` sessions of ``owner`` straight into the table, the oldest used first, an hour
    apart (and older than any a test signs in)."""
    now = utcnow()
    rows = [
        UserSession(
            id=uuid.uuid4(),
            user_id=owner,
            created_at=now - timedelta(days=2),
            last_used_at=now - timedelta(hours=count - n),
            expires_at=now + timedelta(days=30),
            user_agent="pytest-browser",
            ip="203.0.113.9",
            amr=["pwd"],
            refresh_jti=uuid.uuid4().hex,
            access_jti=uuid.uuid4().hex,
            issued_at=now - timedelta(hours=count - n),
            **columns,
        )
        for n in range(count)
    ]
    ids = [row.id for row in rows]
    with app.app_context():
        db.session.add_all(rows)
        db.session.commit()
    return ids


def sid(tokens: dict[str, Any]) -> uuid.UUID:
    return uuid.UUID(jwt.decode(tokens["access_token"], options={"verify_signature": False})["sid"])


def used_in_order(app: Flask, *sessions: dict[str, Any]) -> None:
    """Make ``sessions`` (token pairs) last used in this order, an hour apart, the last an hour
    ago: times are whole seconds, so sessions signed in together would tie."""
    now = utcnow()
    with app.app_context():
        for age, tokens in enumerate(reversed(sessions), start=1):
            db.session.execute(
                update(UserSession)
                .where(UserSession.id == sid(tokens))
                .values(last_used_at=now - timedelta(hours=age))
            )
        db.session.commit()


def open_session_ids(app: Flask, owner: uuid.UUID) -> set[uuid.UUID]:
    with app.app_context():
        return set(
            db.session.execute(
                select(UserSession.id).where(
                    UserSession.user_id == owner, UserSession.revoked_at.is_(None)
                )
            ).scalars()
        )


# --- the listing, a page at a time -----------------------------------------------------------


def test_sessions_are_listed_a_page_at_a_time_most_recently_used_first(app, auth, client):
    mine = auth.signup_and_login()  # the oldest: the current session is on the last page
    others = [auth.login() for _ in range(4)]
    used_in_order(app, mine, *others)
    pages = every_page(client, mine["access_token"], limit=2)
    assert [len(page) for page in pages] == [2, 2, 1]
    rows = [row for page in pages for row in page]
    assert all(set(row) == ITEM_FIELDS for row in rows)
    assert len({row["id"] for row in rows}) == 5
    assert [row["current"] for row in rows] == [False, False, False, False, True]
    used = [row["last_used_at"] for row in rows]
    assert used == sorted(used, reverse=True)
    assert [uuid.UUID(row["id"]) for row in rows] == [sid(t) for t in [*reversed(others), mine]]
    # the same sessions as one page
    single = listing(client, others[0]["access_token"]).json
    assert single["next_cursor"] is None
    assert [row["id"] for row in single["sessions"]] == [row["id"] for row in rows]
    assert [row["current"] for row in single["sessions"]] == [False, False, False, True, False]


def test_a_sign_in_while_paging_neither_repeats_nor_skips_a_session(app, auth, client):
    tokens = auth.signup_and_login()
    used_in_order(app, tokens, *[auth.login() for _ in range(4)])
    first = listing(client, tokens["access_token"], limit=3).json
    newcomer = auth.login()
    rest = listing(client, tokens["access_token"], limit=3, cursor=first["next_cursor"]).json
    assert rest["next_cursor"] is None
    seen = [row["id"] for row in first["sessions"] + rest["sessions"]]
    assert len(seen) == len(set(seen)) == 5
    top = listing(client, newcomer["access_token"], limit=1).json["sessions"][0]
    assert top["current"] and top["id"] not in seen  # the newcomer heads page one


def test_the_default_page_is_50_and_a_page_holds_at_most_200(app, auth, client):
    tokens = auth.signup_and_login()
    add_sessions(app, user_id(app), 250)
    page = listing(client, tokens["access_token"]).json
    assert len(page["sessions"]) == 50 and page["next_cursor"]
    pages = every_page(client, tokens["access_token"], limit=200)
    assert [len(p) for p in pages] == [200, 51]
    assert len({row["id"] for p in pages for row in p}) == 251
    assert sum(row["current"] for p in pages for row in p) == 1


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not a cursor!"}, "cursor"),
        ({"cursor": ""}, "cursor"),
        ({"cursor": "A" * 129}, "cursor"),
        ({"cursor": _cursor("hello")}, "cursor"),
        ({"cursor": _cursor("123.not-a-uuid")}, "cursor"),
        ({"cursor": _cursor(f"{'9' * 19}.{uuid.uuid4().hex}")}, "cursor"),  # past year 9999
        ({"cursor": "%%%"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"page": 2}, "page"),
    ],
)
def test_an_invalid_cursor_or_limit_is_422(auth, client, params, field):
    tokens = auth.signup_and_login()
    response = listing(client, tokens["access_token"], **params)
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "validation_error"
    assert field in response.json["error"]["details"]


def test_a_cursor_is_opaque_and_only_positions_the_page(auth, client):
    alice = auth.signup_and_login("alice@example.com")
    auth.login("alice@example.com")
    bob = auth.signup_and_login("bob@example.com")
    cursor = listing(client, alice["access_token"], limit=1).json["next_cursor"]
    # Another user's cursor shows that user nothing of Alice's: it is a position, not a grant.
    mine = listing(client, bob["access_token"]).json["sessions"]
    theirs = listing(client, bob["access_token"], cursor=cursor).json["sessions"]
    assert {row["id"] for row in theirs} <= {row["id"] for row in mine}


def test_listing_reads_one_page_however_many_sessions_a_user_has(app, auth, client):
    tokens = auth.signup_and_login()
    add_sessions(app, user_id(app), 1000)
    response = listing(client, tokens["access_token"])
    assert len(response.json["sessions"]) == 50
    assert len(response.get_data()) < 15_000
    owner = str(user_id(app))
    with app.app_context():
        page = services.list_sessions(owner, limit=10)
        last = page.sessions[-1]
        assert len(page.sessions) == 10
        assert page.next_cursor == (last.last_used_at, last.id)


# --- at most SESSION_MAX_PER_USER open sessions ----------------------------------------------


@pytest.fixture
def capped(configured_app, auth):
    """The app of a test marked ``config(SESSION_MAX_PER_USER=3)``; ``auth`` signs in there."""
    auth.client = configured_app.test_client()
    return configured_app


def assert_revoked(client, token: str) -> None:
    response = client.get(ME, headers=AuthActions.bearer(token))
    assert response.status_code == 401
    assert response.json["error"]["code"] == "token_revoked"


@pytest.mark.config(SESSION_MAX_PER_USER=3)
def test_a_sign_in_beyond_the_limit_revokes_the_least_recently_used_session_at_once(
    capped, auth, redis_client
):
    client = auth.client
    first, second, third = auth.signup_and_login(), auth.login(), auth.login()
    used_in_order(capped, first, second, third)
    refreshed = client.post(REFRESH, json={"refresh_token": first["refresh_token"]}).json
    # `first` is now the most recently used; `second` the least
    second_sid = str(sid(second))

    fourth = auth.login()

    assert_revoked(client, second["access_token"])  # at once: published to Redis
    assert redis_client.exists(REVOKED_SID_PREFIX + second_sid)
    assert client.post(REFRESH, json={"refresh_token": second["refresh_token"]}).status_code == 401
    for tokens in (refreshed, third, fourth):
        assert client.get(ME, headers=auth.bearer(tokens["access_token"])).status_code == 200
    rows = listing(client, fourth["access_token"]).json["sessions"]
    assert len(rows) == 3 and second_sid not in {row["id"] for row in rows}
    events = client.get("/api/v1/auth/events", headers=auth.bearer(fourth["access_token"]))
    revoked = [e for e in events.json["events"] if e["event"] == "session_revoked"]
    assert [(e["session_id"], e["data"]["reason"]) for e in revoked] == [
        (second_sid, "session_limit")
    ]
    with capped.app_context():
        reason = db.session.execute(
            select(UserSession.revoked_reason).where(UserSession.id == uuid.UUID(second_sid))
        ).scalar_one()
    assert reason == "session_limit"


@pytest.mark.config(SESSION_MAX_PER_USER=3)
def test_sessions_piled_up_before_the_limit_go_at_the_next_sign_in(capped, auth):
    auth.register()
    owner = user_id(capped)
    piled = add_sessions(capped, owner, 40)
    tokens = auth.login()
    kept = open_session_ids(capped, owner)
    assert len(kept) == 3
    [newest] = listing(auth.client, tokens["access_token"], limit=1).json["sessions"]
    assert kept - set(piled) == {uuid.UUID(newest["id"])}
    assert kept & set(piled) == set(piled[-2:])  # the two most recently used of the pile


@pytest.mark.config(SESSION_MAX_PER_USER=3)
def test_a_pile_is_brought_down_to_the_limit_a_batch_per_sign_in(capped, auth, monkeypatch):
    monkeypatch.setattr(services, "RETIRE_AT_ONCE", 5)
    auth.register()
    owner = user_id(capped)
    add_sessions(capped, owner, 12)
    counts = []
    for _ in range(4):
        auth.login()
        counts.append(len(open_session_ids(capped, owner)))
    # 12 + 1 open, 5 retired: 8; 8 + 1 - 5: 4; 4 + 1 - 2 (down to the limit): 3; then 3 again
    assert counts == [8, 4, 3, 3]


@pytest.mark.config(SESSION_MAX_PER_USER=3)
def test_expired_and_revoked_sessions_do_not_count_toward_the_limit(capped, auth):
    auth.register()
    owner = user_id(capped)
    add_sessions(capped, owner, 5, revoked_at=utcnow(), revoked_reason="logout")
    expired = add_sessions(capped, owner, 5)
    with capped.app_context():
        db.session.execute(
            update(UserSession)
            .where(UserSession.id.in_(expired))
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
        db.session.commit()
    sessions = [auth.login() for _ in range(3)]
    for tokens in sessions:
        assert auth.client.get(ME, headers=auth.bearer(tokens["access_token"])).status_code == 200
    assert len(open_session_ids(capped, owner)) == 3 + 5  # the expired ones stay as they were


@pytest.mark.config(SESSION_MAX_PER_USER=0)
def test_a_limit_of_zero_is_no_limit(configured_app, auth):
    app = configured_app
    auth.client = app.test_client()
    auth.register()
    owner = user_id(app)
    add_sessions(app, owner, 120)
    auth.login()
    assert len(open_session_ids(app, owner)) == 121


def test_the_default_limit_is_100(app):
    assert app.config["SESSION_MAX_PER_USER"] == 100


# --- the hourly purge ------------------------------------------------------------------------


def test_the_purge_deletes_only_sessions_no_token_check_needs(app, auth):
    auth.register()
    owner = user_id(app)
    now = utcnow()
    with app.app_context():
        horizon = access_token_horizon()
    assert horizon == timedelta(seconds=app.config["JWT_ACCESS_TOKEN_EXPIRES"] + 1)  # no leeway
    refresh_lifetime = timedelta(seconds=app.config["JWT_REFRESH_TOKEN_EXPIRES"])
    minute = timedelta(minutes=1)
    kept = {
        "open": {},
        "expired within the horizon": {"expires_at": now - horizon + minute},
        "revoked within the horizon": {"revoked_at": now - horizon + minute},
        "revoked a day ago": {"revoked_at": now - timedelta(days=1)},
    }
    gone = {
        "expired beyond the horizon": {"expires_at": now - horizon - minute},
        "revoked beyond the refresh lifetime": {"revoked_at": now - refresh_lifetime - minute},
    }
    ids = {}
    for name, columns in {**kept, **gone}.items():
        [ids[name]] = add_sessions(app, owner, 1)
        if columns:
            with app.app_context():
                db.session.execute(
                    update(UserSession).where(UserSession.id == ids[name]).values(**columns)
                )
                db.session.commit()
    with app.app_context():
        removed = purge_expired()
        left = set(db.session.execute(select(UserSession.id)).scalars())
    assert removed["sessions"] == 2
    assert left == {ids[name] for name in kept}


def test_a_live_token_of_an_expired_session_survives_the_purge_with_redis_cold(
    app, auth, client, redis_client
):
    live = auth.signup_and_login()
    revoked = auth.login()
    client.post("/api/v1/auth/logout", headers=auth.bearer(revoked["access_token"]))
    with app.app_context():  # `live` reached its absolute end a moment ago; its access token lives
        db.session.execute(
            update(UserSession)
            .where(UserSession.revoked_at.is_(None))
            .values(expires_at=utcnow() - timedelta(seconds=5))
        )
        db.session.commit()
        assert purge_expired()["sessions"] == 0
    redis_client.flushdb()  # the database answers until the blocklist is rebuilt
    assert client.get(ME, headers=auth.bearer(live["access_token"])).status_code == 200
    assert_revoked(client, revoked["access_token"])
    with app.app_context():
        rebuild_blocklist()
    assert redis_client.exists(BLOCKLIST_WARM_KEY)
    assert client.get(ME, headers=auth.bearer(live["access_token"])).status_code == 200
    assert_revoked(client, revoked["access_token"])
