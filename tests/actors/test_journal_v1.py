"""Data directories written by an older revision still recover: the `journal_v1` fixture.

`tests/fixtures/journal_v1` was written by the actors of commit 3596753: positional journal
records (version 1) and shards that kept every order and transaction in memory and in their
snapshots (see `tests/fixtures/make_journal_v1.py`). `expected.json` is what that revision's
`verify` reported; `expected_history.json` every order and transaction it rebuilt.

Today's code reads the records through each actor's codec (upcasting them) and keeps history
on disk: offline, `verify` rebuilds the same books, registry and totals without writing
anything; started, each shard moves its history to disk once, and every order and
transaction of that revision is found by the read routes' queries, before and after a
restart.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from actors.book_actor import AssetBookActor
from actors.offline import layout_config, verify
from actors.registry_actor import RegistryActor
from engine import state_digest
from engine import OrderView, Transaction
from tests.actors.service import RunningService, run

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "journal_v1"


@pytest.fixture
def data_dir(tmp_path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(FIXTURE, copy)
    return copy


def test_journal_v1_replays_offline_to_what_its_own_revision_reported(data_dir):
    expected = json.loads((FIXTURE / "expected.json").read_text())
    before = {path: path.read_bytes() for path in data_dir.rglob("data.mdb")}
    report = verify(data_dir)
    assert report["problems"] == []
    streams = {entry["stream"]: entry for entry in report["streams"]}
    streams_expected = {entry["stream"]: entry["state_digest"] for entry in expected["streams"]}
    for entry in expected["streams"]:
        now = streams[entry["stream"]]
        assert (now["events"], now["snapshot_sequence"]) == (entry["events"], entry["snapshot_sequence"])
    # A book's state gained its candles since (rebuilt from the journal) and its waiting stops
    # (none in a journal from before stops); the rest is as it was.
    # A shard's state no longer holds history (see the test below for where history went).
    # The registry's gained key ids, statuses and the audit log's last id: its users and their
    # keys, in the form of that revision, and its assets are as they were.
    config = layout_config(data_dir)
    registry = RegistryActor(config, offline=True)
    try:
        state = registry._snapshot_state()
        users = [[name, registry.user_keys.keys[registry.users[name].key_ids[0]].key_hash, created]
                 for name, created, suspended in state["users"]]
        assert all(not suspended for _, _, suspended in state["users"])
        assert all(len(registry.users[name].key_ids) == 1 for name, _, _ in users)
        assert state_digest({"users": users, "assets": state["assets"]}) == streams_expected["registry"]
    finally:
        registry.store.close()
    for index in range(config.book_actor_count):
        book = AssetBookActor(config, index)
        try:
            state = {key: value for key, value in book._snapshot_state().items() if key != "candles"}
            for book_state in state["books"]:
                assert (book_state.pop("stops"), book_state.pop("stop_placements")) == ([], 0)
        finally:
            book.store.close()
        assert state_digest(state) == streams_expected[f"book-{index}"], index
    for key in ("totals", "net_deposits", "open_orders", "resting_orders", "users",
                "recovered_settlements", "aborted_orders"):
        assert report[key] == expected[key], key
    assert {path: path.read_bytes() for path in data_dir.rglob("data.mdb")} == before  # nothing written


def test_verify_command_passes_on_journal_v1(data_dir):
    result = subprocess.run([sys.executable, "-m", "gateway", "verify", "--data-dir", str(data_dir)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "OK:" in result.stderr


@pytest.mark.usefixtures("ray_cluster")
def test_journal_v1_moves_its_history_to_disk_once_and_every_order_and_fill_is_found(data_dir):
    history = json.loads((FIXTURE / "expected_history.json").read_text())
    orders = [OrderView(*record) for record in history["orders"]]
    transactions = [Transaction(*item) for item in history["transactions"]]

    async def everything(client) -> tuple[dict, dict, dict]:
        found, listed, fills = {}, {}, {}
        for order in orders:
            found[order.order_id] = await client.get_order(order.username, order.order_id)
        for username in {order.username for order in orders}:
            page = await client.list_orders(username, _no_filters(), 100, 0)
            listed[username] = (page.total_count, [view.order_id for view in page.items])
            for asset_id in {order.asset_id for order in orders}:
                page = await client.transactions(username, asset_id, _no_filters(transactions=True), 100, 0)
                fills[(username, asset_id)] = sorted(page.items)
        return found, listed, fills

    async def scenario():
        service = RunningService(data_dir)
        client = await service.start()
        first = await everything(client)
        await client.flush()
        client = await service.restart()
        second = await everything(client)
        report = await client.audit()
        await service.stop()
        return first, second, report

    first, second, report = run(scenario())
    assert report["problems"] == []
    assert first == second
    found, listed, fills = first
    # The order orphaned by the crash is failed by recovery: offline at its creation time, live now.
    found = {order_id: view._replace(updated_at=0) if view.reason == "recovery_aborted" else view
             for order_id, view in found.items()}
    assert found == {order.order_id: order._replace(updated_at=0) if order.reason == "recovery_aborted" else order
                     for order in orders}
    expected_lists: dict = defaultdict(list)
    for order in sorted(orders, key=lambda view: (view.created_at, view.order_id), reverse=True):
        expected_lists[order.username].append(order.order_id)
    assert listed == {username: (len(ids), ids) for username, ids in expected_lists.items()}
    expected_fills: dict = defaultdict(list)
    for item in transactions:
        expected_fills[(item.username, item.asset_id)].append(item)
    assert {key: items for key, items in fills.items() if items} == {
        key: sorted(items) for key, items in expected_fills.items()}

    report = verify(data_dir)
    assert report["problems"] == []
    assert all(entry["checked_against_journal"] for entry in report["history"])
    assert sum(entry["closed_orders_on_disk"] for entry in report["history"]) == sum(
        1 for order in orders if order.status in ("completed", "cancelled", "failed"))


def _no_filters(transactions: bool = False) -> dict:
    if transactions:
        return {"transaction_type": None, "start": None, "end": None}
    return {"order_type": None, "status": None, "asset_id": None, "start": None, "end": None}
