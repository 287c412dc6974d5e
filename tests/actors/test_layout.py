"""How a service is split across actors: chosen once per data directory, then kept."""

from __future__ import annotations

import json

import pytest

from actors.config import check_layout
from gateway.settings import Settings


def test_a_new_data_directory_gets_one_shard_and_one_book_actor_per_two_cores(tmp_path, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    config = Settings.from_environment({"ORDER_SERVICE_DATA_DIR": str(tmp_path)}).service_config()
    assert (config.shard_count, config.book_actor_count) == (3, 3)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    config = Settings.from_environment({"ORDER_SERVICE_DATA_DIR": str(tmp_path)}).service_config()
    assert (config.shard_count, config.book_actor_count) == (1, 1)


def test_an_existing_data_directory_keeps_its_layout_unless_another_is_asked_for(tmp_path):
    created = Settings.from_environment({"ORDER_SERVICE_DATA_DIR": str(tmp_path), "ORDER_SERVICE_SHARDS": "3",
                                         "ORDER_SERVICE_BOOK_ACTORS": "2"}).service_config()
    check_layout(created)
    assert json.loads((tmp_path / "layout.json").read_text()) == {"shard_count": 3, "book_actor_count": 2}

    reopened = Settings.from_environment({"ORDER_SERVICE_DATA_DIR": str(tmp_path)}).service_config()
    assert (reopened.shard_count, reopened.book_actor_count) == (3, 2)
    check_layout(reopened)

    different = Settings.from_environment({"ORDER_SERVICE_DATA_DIR": str(tmp_path),
                                           "ORDER_SERVICE_SHARDS": "4"}).service_config()
    with pytest.raises(ValueError, match="was created with"):
        check_layout(different)
