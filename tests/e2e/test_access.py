"""Keys, suspension and the audit log over the real service (API.md "Keys, suspension, limits, audit").

What API.md leaves asynchronous ("within 1 s everywhere") is awaited with `eventually`, never
timed. Every key this module makes is kept, and the last test greps the service's log for them.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from tests.e2e.api import D, Api, User, assert_envelope, assert_error, eventually, unique_suffix
from tests.e2e.streams import op, open_stream, receive_until

SECRETS: list[str] = []  # every key made here: none may reach the log, the audit log or an error


def _user(api, usd: str | None = None) -> tuple[User, str]:
    username = f"acc{unique_suffix()}"
    data = assert_envelope(api.admin_post("/api/v1/admin/users", {"username": username}), 201, True)
    assert isinstance(data["key_id"], str) and 0 < len(data["key_id"]) <= 16
    SECRETS.append(data["api_key"])
    user = User(username, data["api_key"])
    if usd is not None:
        api.deposit(user, "USD", usd)
    return user, data["key_id"]


def _new_key(api, username: str) -> tuple[User, str]:
    data = assert_envelope(api.admin_post(f"/api/v1/admin/users/{username}/keys", {}), 201, True)
    assert data["username"] == username and 0 < len(data["key_id"]) <= 16
    SECRETS.append(data["api_key"])
    return User(username, data["api_key"]), data["key_id"]


def _revoke(api, username: str, key_id: str):
    return api.http.delete(f"/api/v1/admin/users/{username}/keys/{key_id}", headers=api.admin_headers)


def _admin_user(api, username: str):
    return api.http.get(f"/api/v1/admin/users/{username}", headers=api.admin_headers)


def _suspend(api, username: str, action: str = "suspend"):
    return api.http.post(f"/api/v1/admin/users/{username}/{action}", headers=api.admin_headers)


def _audit(api, **params) -> dict:
    return assert_envelope(api.http.get("/api/v1/admin/audit-log", params=params, headers=api.admin_headers),
                           200, True)


def _refused(api, user: User, status: int = 401):
    """Wait until a read and an order of `user` are both refused with `status`."""
    eventually(lambda: api.get("/api/v1/balances", user).status_code, lambda code: code == status,
               what=f"reads answered {status}")
    eventually(lambda: api.submit(user, "NOPE", "market_buy", 1).status_code, lambda code: code == status,
               what=f"orders answered {status}")


@pytest.fixture(scope="module")
def asset(api) -> str:
    return api.new_asset(tick_size="0.01", lot_size="1")


# ---- keys ----------------------------------------------------------------------

def test_user_keys_are_listed_with_ids_and_times_and_never_a_key_or_hash(api):
    user, first = _user(api)
    second_user, second = _new_key(api, user.username)
    assert assert_envelope(api.get("/api/v1/balances", second_user), 200, True)["username"] == user.username
    response = _admin_user(api, user.username)
    data = assert_envelope(response, 200, True)
    assert data["username"] == user.username and data["status"] == "active"
    assert [key["key_id"] for key in data["keys"]] == [first, second]
    assert all(key["revoked_at"] is None for key in data["keys"])
    for secret in (user.api_key, second_user.api_key):
        assert secret not in response.text
        assert hashlib.sha256(secret.encode()).hexdigest() not in response.text
    eventually(lambda: assert_envelope(_admin_user(api, user.username), 200, True)["keys"][1]["last_used_at"],
               lambda used: used is not None, what="last_used_at of the used key")


def test_an_eleventh_live_key_is_refused_409_and_a_revoked_one_frees_a_place(api):
    user, first = _user(api)
    for _ in range(9):
        _new_key(api, user.username)
    assert_error(api.admin_post(f"/api/v1/admin/users/{user.username}/keys", {}), 409, "TOO_MANY_KEYS")
    assert_envelope(_revoke(api, user.username, first), 200, True)
    _new_key(api, user.username)


def test_key_routes_of_an_unknown_user_answer_404(api):
    name = f"ghost{unique_suffix()}"
    assert_error(api.admin_post(f"/api/v1/admin/users/{name}/keys", {}), 404, "USER_NOT_FOUND")
    assert_error(_revoke(api, name, "kabc"), 404, "USER_NOT_FOUND")
    assert_error(_admin_user(api, name), 404, "USER_NOT_FOUND")
    assert_error(_suspend(api, name), 404, "USER_NOT_FOUND")
    assert_error(_suspend(api, "NOT A NAME"), 404, "USER_NOT_FOUND")


def test_revoking_another_users_key_answers_404_and_leaves_it_working(api):
    alice, _ = _user(api)
    bob, bob_key = _user(api)
    assert_error(_revoke(api, alice.username, bob_key), 404, "KEY_NOT_FOUND")
    assert_error(_revoke(api, alice.username, "k" + "0" * 40), 404, "KEY_NOT_FOUND")
    assert_envelope(api.get("/api/v1/balances", bob), 200, True)


def test_key_routes_need_the_admin_token(api):
    user, key_id = _user(api)
    assert api.http.get(f"/api/v1/admin/users/{user.username}").status_code == 401
    assert_error(api.http.get(f"/api/v1/admin/users/{user.username}", headers=user.headers), 403, "FORBIDDEN")
    assert_error(api.http.delete(f"/api/v1/admin/users/{user.username}/keys/{key_id}", headers=user.headers),
                 403, "FORBIDDEN")
    assert_error(api.http.get("/api/v1/admin/audit-log", headers=user.headers), 403, "FORBIDDEN")


def test_a_revoked_key_is_refused_on_rest_the_direct_order_path_and_its_websocket(api, service, asset):
    user, key_id = _user(api, usd="1000")
    other, _ = _new_key(api, user.username)
    # Warm this process's cache of known keys: the direct order path serves this key from it.
    for _ in range(3):
        api.place(user, asset, "limit_buy", 1, "1.00")
    stream = open_stream(service.base_url, user.api_key)
    assert op(stream, {"op": "subscribe", "channel": "orders"})["success"] is True
    assert_envelope(_revoke(api, user.username, key_id), 200, True)
    _refused(api, user)
    assert_error(api.post("/api/v1/orders/batch", user, json={"orders": [
        {"asset_id": asset, "order_type": "limit_buy", "quantity": "1", "price": "1.00"}]}), 401, "UNAUTHORIZED")
    assert_error(api.delete("/api/v1/orders/1", user), 401, "UNAUTHORIZED")
    with pytest.raises(ConnectionClosed) as closed:
        receive_until(stream, lambda frame: False)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    fresh = open_stream(service.base_url)
    answer = op(fresh, {"op": "auth", "token": user.api_key})
    assert answer["success"] is False and answer["error"]["code"] == "UNAUTHORIZED"
    fresh.close()
    # Revoking again answers 200; the user's other key still works.
    revoked = assert_envelope(_revoke(api, user.username, key_id), 200, True)
    assert [key["revoked_at"] is not None for key in revoked["keys"]] == [True, False]
    assert len(api.orders(other)["orders"]) == 3


def test_a_key_revoked_while_a_batch_is_in_flight_leaves_nothing_half_done(api, asset):
    user, key_id = _user(api, usd="100000")
    watcher, _ = _new_key(api, user.username)
    orders = [{"asset_id": asset, "order_type": "limit_buy", "quantity": "1", "price": "1.00"}] * 100
    answers: list = []

    def send_batches():
        for _ in range(5):
            answers.append(api.post("/api/v1/orders/batch", user, json={"orders": orders}))

    sender = threading.Thread(target=send_batches)
    sender.start()
    eventually(lambda: len(answers), lambda count: count >= 1, what="a first batch")
    assert_envelope(_revoke(api, user.username, key_id), 200, True)
    sender.join()
    placed = 0
    for response in answers:
        if response.status_code == 401:
            assert_error(response, 401, "UNAUTHORIZED")
            continue
        results = assert_envelope(response, 200, True)["results"]
        assert all(item["success"] for item in results)
        placed += len(results)
    assert answers[0].status_code == 200
    _refused(api, user)
    # Exactly the answered orders exist, and the hold is theirs.
    assert api.orders(watcher, limit=1)["total_count"] == placed
    balance = assert_envelope(api.get("/api/v1/balances/USD", watcher), 200, True)
    assert D(balance["locked"]) == Decimal(placed)


def test_rotating_answers_a_new_key_and_revokes_the_calling_one(api):
    user, key_id = _user(api)
    response = api.post("/api/v1/keys/rotate", user)
    data = assert_envelope(response, 201, True)
    SECRETS.append(data["api_key"])
    assert data["key_id"] != key_id and data["api_key"] != user.api_key
    rotated = User(user.username, data["api_key"])
    assert_envelope(api.get("/api/v1/balances", rotated), 200, True)
    _refused(api, user)
    assert_error(api.post("/api/v1/keys/rotate", user), 401, "UNAUTHORIZED")
    assert_error(api.http.post("/api/v1/keys/rotate", headers=api.admin_headers), 401, "UNAUTHORIZED")
    assert_error(api.http.post("/api/v1/keys/rotate"), 401, "UNAUTHORIZED")
    keys = assert_envelope(_admin_user(api, user.username), 200, True)["keys"]
    assert [(key["key_id"], key["revoked_at"] is None) for key in keys] == [(key_id, False), (data["key_id"], True)]


# ---- suspension ----------------------------------------------------------------

def test_suspending_cancels_open_orders_releases_holds_and_refuses_every_route(api, service, asset):
    user, _ = _user(api, usd="1000")
    seller = api.new_user(assets={asset: "5"})
    resting = [api.place(user, asset, "limit_buy", 2, "10.00") for _ in range(3)]
    partly = api.place(seller, asset, "limit_sell", 1, "10.00")  # fills one lot of the first buy
    assert partly["status"] == "completed"
    stream = open_stream(service.base_url, user.api_key)
    assert op(stream, {"op": "subscribe", "channel": "orders"})["success"] is True
    response = _suspend(api, user.username)
    assert assert_envelope(response, 200, True)["status"] == "suspended"
    _refused(api, user, 403)
    assert_error(api.get("/api/v1/portfolio", user), 403, "USER_SUSPENDED")
    assert_error(api.get(f"/api/v1/orders/{resting[0]['order_id']}", user), 403, "USER_SUSPENDED")
    with pytest.raises(ConnectionClosed) as closed:
        receive_until(stream, lambda frame: False)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    # Deposits and withdrawals still work; suspending again answers 200.
    api.deposit(user, "USD", "5")
    api.withdraw(user, "USD", "1")
    assert assert_envelope(_suspend(api, user.username), 200, True)["status"] == "suspended"
    assert assert_envelope(_suspend(api, user.username, "resume"), 200, True)["status"] == "active"
    eventually(lambda: api.get("/api/v1/balances", user).status_code, lambda code: code == 200, what="resumed")
    orders = {order["order_id"]: order for order in api.orders(user)["orders"]}
    for order in resting:
        closed_order = orders[order["order_id"]]
        assert closed_order["status"] == "cancelled" and closed_order["reason"] == "user_suspended", closed_order
    usd = assert_envelope(api.get("/api/v1/balances/USD", user), 200, True)
    assert D(usd["locked"]) == 0 and D(usd["available"]) == Decimal("1000") - Decimal("10") + 4
    assert assert_envelope(_suspend(api, user.username, "resume"), 200, True)["status"] == "active"


def test_a_suspended_user_is_refused_on_every_route_kind(api, service, asset):
    user, _ = _user(api, usd="100")
    assert_envelope(_suspend(api, user.username), 200, True)
    assert_error(api.submit(user, asset, "limit_buy", 1, "1.00"), 403, "USER_SUSPENDED")
    assert_error(api.post("/api/v1/orders/batch", user, json={"orders": [
        {"asset_id": asset, "order_type": "limit_buy", "quantity": "1", "price": "1.00"}]}), 403, "USER_SUSPENDED")
    assert_error(api.post("/api/v1/keys/rotate", user), 403, "USER_SUSPENDED")
    stream = open_stream(service.base_url)
    answer = op(stream, {"op": "auth", "token": user.api_key})
    assert answer["success"] is False and answer["error"]["code"] == "USER_SUSPENDED"
    stream.close()


# ---- audit log -----------------------------------------------------------------

def test_the_audit_log_records_every_admin_action_and_rotation_newest_first(api):
    user, key_id = _user(api)
    _, second = _new_key(api, user.username)
    assert_envelope(_revoke(api, user.username, second), 200, True)
    rotated = assert_envelope(api.post("/api/v1/keys/rotate", user), 201, True)
    SECRETS.append(rotated["api_key"])
    api.deposit(user, "USD", "12.5")
    api.withdraw(user, "USD", "2")
    assert_envelope(_suspend(api, user.username), 200, True)
    assert_envelope(_suspend(api, user.username, "resume"), 200, True)
    assert_error(api.admin_post("/api/v1/admin/users", {"username": user.username}), 409, "USER_EXISTS")
    page = _audit(api, username=user.username, limit=100)
    actions = [(entry["action"], entry["actor"], entry["target"]) for entry in page["entries"]]
    assert actions == [
        ("user_resumed", "admin", user.username), ("user_suspended", "admin", user.username),
        ("withdrawal", "admin", user.username), ("deposit", "admin", user.username),
        ("key_rotated", user.username, key_id), ("key_revoked", "admin", second),
        ("key_created", "admin", second), ("key_created", "admin", key_id), ("user_created", "admin", user.username),
    ]
    assert page["total_count"] == 9 and page["has_more"] is False
    ids = [entry["id"] for entry in page["entries"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    assert page["entries"][3]["details"] == {"asset_id": "USD", "amount": "12.5"}
    assert page["entries"][4]["details"]["new_key_id"] == rotated["key_id"]
    rotations = _audit(api, username=user.username, action="key_rotated")
    assert [entry["id"] for entry in rotations["entries"]] == [ids[4]] and rotations["total_count"] == 1
    second_page = _audit(api, username=user.username, limit=3, offset=3)
    assert [entry["id"] for entry in second_page["entries"]] == ids[3:6] and second_page["has_more"] is True
    latest = _audit(api, limit=1)
    assert latest["total_count"] >= 9 and latest["has_more"] is True


def test_the_audit_log_refuses_an_unknown_action_and_a_bad_limit(api):
    for params in ({"action": "drop_table"}, {"limit": 0}, {"limit": 101}, {"offset": -1}):
        assert_error(api.http.get("/api/v1/admin/audit-log", params=params, headers=api.admin_headers),
                     422, "VALIDATION_ERROR")
    assert api.http.get("/api/v1/admin/audit-log").status_code == 401


def test_asset_creation_is_audited_with_its_sizes(api):
    asset_id = api.new_asset(tick_size="0.05", lot_size="0.1")
    entries = _audit(api, action="asset_created", limit=100)["entries"]
    entry = next(entry for entry in entries if entry["target"] == asset_id)
    assert entry["actor"] == "admin" and entry["details"]["tick_size"] == "0.05"
    assert entry["details"]["lot_size"] == "0.1"


# ---- secrets -------------------------------------------------------------------

def test_no_key_hash_or_token_is_in_the_log_the_audit_log_or_an_error(api, service):
    assert SECRETS, "run with the tests above"
    bad = assert_error(api.http.get("/api/v1/balances", headers={"Authorization": f"Bearer {SECRETS[0]}x"}),
                       401, "UNAUTHORIZED")
    audit_text = api.http.get("/api/v1/admin/audit-log", params={"limit": 100},
                              headers=api.admin_headers).text
    log = service.logs()
    for secret in [*SECRETS, service.admin_token]:
        hashed = hashlib.sha256(secret.encode()).hexdigest()
        for text in (log, audit_text, str(bad)):
            assert secret not in text and hashed not in text


# ---- across restarts -----------------------------------------------------------

def test_revocations_suspensions_and_the_audit_log_survive_kill_9(service_factory):
    process = service_factory()
    process.start()
    api = Api(process.base_url, process.admin_token)
    try:
        user, first = _user(api, usd="100")
        kept, _ = _new_key(api, user.username)
        assert_envelope(_revoke(api, user.username, first), 200, True)
        assert_envelope(_suspend(api, user.username), 200, True)
        before = _audit(api, limit=100)
        process.kill_group()
        process.start()
        assert_error(api.get("/api/v1/balances", user), 401, "UNAUTHORIZED")
        assert_error(api.get("/api/v1/balances", kept), 403, "USER_SUSPENDED")
        assert _audit(api, limit=100) == before
        assert_envelope(_suspend(api, user.username, "resume"), 200, True)
        assert_envelope(api.get("/api/v1/balances", kept), 200, True)
        assert _audit(api, limit=1)["entries"][0]["id"] == before["entries"][0]["id"] + 1
    finally:
        api.close()


def test_a_data_directory_from_before_keys_had_ids_keeps_each_users_key_under_an_id(service_factory, tmp_path):
    data_dir = tmp_path / "v1"
    shutil.copytree(Path(__file__).resolve().parents[1] / "fixtures" / "journal_v1", data_dir)
    process = service_factory(data_dir=data_dir)
    process.start()
    api = Api(process.base_url, process.admin_token)
    try:
        for username in ("alice", "bob00", "carol", "dave1"):
            user = assert_envelope(_admin_user(api, username), 200, True)
            assert user["status"] == "active" and len(user["keys"]) == 1
            assert 0 < len(user["keys"][0]["key_id"]) <= 16 and user["keys"][0]["revoked_at"] is None
        # A new key works beside the old one, and the audit log starts empty for the old users.
        key, _ = _new_key(api, "alice")
        assert assert_envelope(api.get("/api/v1/balances", key), 200, True)["username"] == "alice"
        assert [entry["action"] for entry in _audit(api, username="alice")["entries"]] == ["key_created"]
    finally:
        api.close()


def test_suspending_cancels_waiting_stops_and_releases_their_holds(api):
    asset_id = api.new_asset(tick_size="0.01", lot_size="1")  # no trade yet: no stop triggers at placement
    user, _ = _user(api, usd="1000")
    stop = assert_envelope(api.submit(user, asset_id, "limit_buy", 2, "21.00", stop_price="20.00",
                                      stop_kind="stop_loss"), 201, True)
    assert stop["status"] == "pending" and stop["triggered_at"] is None
    assert D(assert_envelope(api.get("/api/v1/balances/USD", user), 200, True)["locked"]) == 42
    assert assert_envelope(_suspend(api, user.username), 200, True)["status"] == "suspended"
    assert assert_envelope(_suspend(api, user.username, "resume"), 200, True)["status"] == "active"
    eventually(lambda: api.get("/api/v1/balances", user).status_code, lambda code: code == 200, what="resumed")
    order = api.order(user, stop["order_id"])
    assert (order["status"], order["reason"]) == ("cancelled", "user_suspended"), order
    usd = assert_envelope(api.get("/api/v1/balances/USD", user), 200, True)
    assert (D(usd["locked"]), D(usd["available"])) == (0, 1000)
