"""Order ids reused after a cancel or a fill must not bring a dead queue entry back to life.

The book keeps cancelled entries in its price queues until they reach the front
(or are compacted away); an entry is live only while the id map still holds that
very entry. These streams reuse a handful of ids to hold that against the
reference book.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import BUY, SELL, AssetSpec, OrderBook, RejectReason
from engine.book import SubmitResult
from tests.engine.reference_book import ReferenceBook

spec = AssetSpec.create("X", "1", "1")
cmd = st.one_of(
    st.tuples(st.just("L"), st.integers(1, 6), st.sampled_from(["a", "b", "c"]), st.sampled_from([BUY, SELL]),
              st.integers(99, 101), st.integers(1, 5), st.sampled_from(["gtc", "gtc", "ioc", "fok"]),
              st.booleans(), st.booleans()),
    st.tuples(st.just("M"), st.sampled_from(["a", "b", "c"]), st.sampled_from([BUY, SELL]), st.integers(1, 9),
              st.booleans()),
    st.tuples(st.just("C"), st.integers(1, 6)),
)

@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(cmd, max_size=120))
def test_book_with_reused_order_ids_matches_reference_book(commands):
    book = OrderBook(spec); ref = ReferenceBook(spec.money_per_tick_lot)
    events = []
    fresh = 1000
    for c in commands:
        if c[0] == "L":
            _, oid, user, side, price, qty, tif, post_only, shortcut = c
            post_only = post_only and tif == "gtc"
            if book.is_open(oid):
                assert book.submit_limit(oid, user, side, price, qty) is RejectReason.DUPLICATE_ORDER_ID
                continue
            if shortcut:
                got = book.submit_limit(oid, user, side, price, qty, tif, post_only)
            else:
                got = book.submit(oid, user, side, qty, price=price, time_in_force=tif, post_only=post_only)
            exp = ref.submit(oid, user, side, qty, price=price, time_in_force=tif, post_only=post_only)
        elif c[0] == "M":
            _, user, side, qty, shortcut = c
            fresh += 1
            got = book.submit_market(fresh, user, side, qty) if shortcut else book.submit(fresh, user, side, qty, time_in_force="ioc")
            exp = ref.submit(fresh, user, side, qty, time_in_force="ioc")
        else:
            got = book.cancel(c[1]); exp = ref.cancel(c[1])
            assert (got is RejectReason.ORDER_NOT_OPEN) == (exp is None)
            if exp is not None: events.append(got)
            got = None
        if got is not None:
            assert isinstance(got, SubmitResult)
            assert (got.status, got.reason, got.filled_quantity) == (exp.status, exp.reason, exp.filled_quantity)
            assert [(t.price, t.quantity, t.maker_order_id, t.maker_owner) for t in got.trades] == \
                   [(t.price, t.quantity, t.maker_order_id, t.maker_owner) for t in exp.trades]
            events.extend(got.events)
        for side in (BUY, SELL):
            assert [(o.order_id, o.owner, o.price, o.remaining) for o in book.orders_in_priority(side)] == \
                   [(o.order_id, o.owner, o.price, o.remaining) for o in ref.orders_in_priority(side)]
        assert book.open_order_count() == len(ref.orders)
        d = book.depth(50)
        for rows, side in zip(d, (BUY, SELL)):
            assert sum(q for _, q, _ in rows) == sum(o.remaining for o in ref.orders_in_priority(side))
            assert sum(n for _, _, n in rows) == len(ref.orders_in_priority(side))
    rebuilt = OrderBook(spec)
    for e in events:
        rebuilt.apply(e)
    assert rebuilt.to_state() == book.to_state()
    assert OrderBook.from_state(book.to_state()).to_state() == book.to_state()
    for o in book.orders_in_priority(BUY) + book.orders_in_priority(SELL):
        r = book.resting(o.order_id)
        assert (r.order_id, r.owner, r.side, r.price, r.remaining) == (o.order_id, o.owner, o.side, o.price, o.remaining)

def test_level_compaction_with_reused_order_id_keeps_live_orders_in_time_priority():
    book = OrderBook(spec)
    book.submit_limit(1, "a", SELL, 100, 1)
    for i in range(200):
        book.submit_limit(2, "a", SELL, 100, 1)
        book.cancel(2)
    book.submit_limit(2, "b", SELL, 100, 3)
    lvl = book._asks[100]
    assert lvl.count == 2 and lvl.quantity == 4 and len(lvl.orders) < 100
    r = book.submit_limit(3, "c", BUY, 100, 10)
    assert [(t.maker_order_id, t.quantity) for t in r.trades] == [(1, 1), (2, 3)]
