import orjson

from engine import (
    FundsHeld, OrderAccepted, OrderClosed, OrderRested, SettlementApplied, TradeExecuted,
    decode_event, encode_event,
)


def test_events_round_trip_through_json_encoding():
    events = [
        OrderAccepted(1, "b", "X", "limit_buy", "gtc", False, 10, 5000, "c-1", None, 17),
        FundsHeld(1, "b", "USD", 500),
        SettlementApplied("X", 3, (
            TradeExecuted(9, 100, 2, "buy", 1, "b", 2, "a", 18),
            OrderRested(1, "b", "buy", 5000, 8, 18),
            OrderClosed(4, "c", "cancelled", "user_cancelled", 19),
        )),
    ]
    decoded = [decode_event(orjson.loads(orjson.dumps(encode_event(e)))) for e in events]
    assert decoded == events
    assert [type(e) for e in decoded] == [type(e) for e in events]
