"""Candles of API.md: built from every trade, oldest first, refused inputs, kept across restarts."""

from __future__ import annotations

from decimal import Decimal

from tests.e2e.api import Api, D, assert_envelope, assert_error, parse_time


def _trade(api: Api, asset_id: str, seller, buyer, price: str, quantity: int) -> None:
    api.place(seller, asset_id, "limit_sell", quantity, price)
    api.place(buyer, asset_id, "market_buy", quantity)


def _candles(api: Api, asset_id: str, **params) -> dict:
    return assert_envelope(api.get(f"/api/v1/assets/{asset_id}/candles", params=params), 200, True)


def _check_ohlcv(api: Api, asset_id: str) -> None:
    for interval in ("1m", "5m", "1h", "1d"):
        data = _candles(api, asset_id, interval=interval)
        assert data["asset_id"] == asset_id and data["interval"] == interval
        candles = data["candles"]
        assert sum(candle["trade_count"] for candle in candles) == 3, data
        assert sum(D(candle["volume"]) for candle in candles) == 6
        assert D(candles[0]["open"]) == Decimal("10.00") and D(candles[-1]["close"]) == Decimal("10.50")
        assert max(D(candle["high"]) for candle in candles) == Decimal("11.00")
        assert min(D(candle["low"]) for candle in candles) == Decimal("10.00")
        opens = [parse_time(candle["open_time"]) for candle in candles]
        assert opens == sorted(opens)


def test_candles_follow_every_trade_and_refuse_bad_input(api):
    asset_id = api.new_asset()
    seller, buyer = api.new_user(assets={asset_id: 100}), api.new_user(usd=10_000)
    assert _candles(api, asset_id)["candles"] == []
    for price, quantity in (("10.00", 1), ("11.00", 2), ("10.50", 3)):
        _trade(api, asset_id, seller, buyer, price, quantity)
    _check_ohlcv(api, asset_id)
    assert len(_candles(api, asset_id, interval="1d", limit=1)["candles"]) == 1
    for params in ({"interval": "2m"}, {"limit": 0}, {"limit": 1001}):
        assert_error(api.get(f"/api/v1/assets/{asset_id}/candles", params=params), 422, "VALIDATION_ERROR")
    assert_error(api.get("/api/v1/assets/NOPE9/candles"), 404, "ASSET_NOT_FOUND")


def test_candles_are_kept_across_a_restart(service_factory):
    service = service_factory()
    service.start()
    api = Api(service.base_url, service.admin_token)
    try:
        asset_id = api.new_asset()
        seller, buyer = api.new_user(assets={asset_id: 100}), api.new_user(usd=10_000)
        for price, quantity in (("10.00", 1), ("11.00", 2), ("10.50", 3)):
            _trade(api, asset_id, seller, buyer, price, quantity)
        before = _candles(api, asset_id, interval="1m")
        service.terminate()
        service.start()
        assert _candles(api, asset_id, interval="1m") == {**before}
        _check_ohlcv(api, asset_id)
    finally:
        api.close()
