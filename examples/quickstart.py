"""A first session with the Order Service from Python, against `make run`'s service.

As the admin: list an asset and create two users with money; as the users: a resting sell,
a buy that takes it; then stream the book (what is left of the sell) and print the buyer's
portfolio.

    python examples/quickstart.py --url http://127.0.0.1:8000 --admin-token "$(cat data/admin_token)"
"""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid

from order_service_client import AsyncClient, Client, LimitOrderRequest, LocalBook, MarketOrderRequest


def run(url: str, admin_token: str) -> dict:
    """Set up a market, trade once, and return the buyer's portfolio (as printed)."""
    suffix = uuid.uuid4().hex[:6]
    asset_id = f"DEMO{suffix.upper()}"[:10]
    with Client(url, admin_token) as admin:
        admin.create_asset(asset_id, "Demo coin", tick_size="0.01", lot_size="0.1")
        seller = admin.create_user(f"seller_{suffix}")
        buyer = admin.create_user(f"buyer_{suffix}")
        admin.deposit(seller.username, asset_id, "10")
        admin.deposit(buyer.username, "USD", "1000")

    with Client(url, seller.api_key) as alice, Client(url, buyer.api_key) as bob:
        ask = alice.place_order(LimitOrderRequest(asset_id=asset_id, order_type="limit_sell",
                                                  quantity="2.5", price="100.00"))
        print(f"{seller.username} offers {ask.quantity} {asset_id} at {ask.price}: {ask.status}")
        fill = bob.place_order(MarketOrderRequest(asset_id=asset_id, order_type="market_buy", quantity="1.5"))
        print(f"{buyer.username} buys {fill.filled_quantity} at {fill.average_price}: {fill.status}")
        portfolio = bob.get_portfolio()
    book = asyncio.run(first_book(url, asset_id))
    bids, asks = book.levels(depth=5)
    print(f"{asset_id} book at sequence {book.sequence}: "
          f"bids {[(str(level.price), str(level.quantity)) for level in bids]}, "
          f"asks {[(str(level.price), str(level.quantity)) for level in asks]}")
    print(f"{buyer.username}'s portfolio: {portfolio.usd_balance} USD, "
          f"total {portfolio.total_portfolio_value} USD")
    for holding in portfolio.assets:
        print(f"  {holding.asset_id}: {holding.quantity} at {holding.current_price} "
              f"= {holding.market_value} USD ({holding.percentage}%)")
    return portfolio.model_dump(mode="json")


async def first_book(url: str, asset_id: str) -> LocalBook:
    """The book as the stream's first frame (its snapshot) has it; later frames update it."""
    async with AsyncClient(url) as client:
        stream = client.stream_book(asset_id)
        book = await anext(stream)
        await stream.aclose()
    return book


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("ORDER_SERVICE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--admin-token", default=os.environ.get("ORDER_SERVICE_ADMIN_TOKEN"),
                        help="else the data/admin_token file that `make run` wrote")
    arguments = parser.parse_args()
    token = arguments.admin_token
    if not token:
        with open(os.path.join(os.environ.get("ORDER_SERVICE_DATA_DIR", "data"), "admin_token")) as file:
            token = file.read().strip()
    run(arguments.url, token)


if __name__ == "__main__":
    main()
